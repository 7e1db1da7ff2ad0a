# frozen_string_literal: true

require "openssl"
require "time"

module Spiffe
  # An X.509-SVID: a SPIFFE ID, its certificate chain (leaf first) and private
  # key. Immutable; `inspect` never shows the key. OpenSSL objects are built on
  # first use and reused.
  class X509SVID
    # @return [ID]
    attr_reader :spiffe_id
    # @return [Array<String>] DER certificates, leaf first
    attr_reader :cert_chain_der
    # @return [String] the operator-chosen hint of the registration entry ("" if none)
    attr_reader :hint
    # @return [Time] the leaf certificate's notAfter
    attr_reader :expires_at
    # @return [X509Bundle, nil] the bundle of the SVID's trust domain, from the same update
    attr_reader :bundle

    # Parses an X.509-SVID from PEM or DER, with the checks the Workload API
    # client makes (one URI SAN, not a CA, key usage, signing certificates are
    # CAs, the key matches the leaf).
    # @param certificates [String] PEM (one or more certificates, leaf first) or concatenated DER
    # @param private_key [String] PEM or DER (PKCS#8, SEC1 or PKCS#1)
    # @param bundle [X509Bundle, nil] the trust domain's bundle, if known
    # @return [X509SVID]
    # @raise [SVIDError]
    def self.parse(certificates, private_key, bundle: nil)
      chain = if certificates.include?("-----BEGIN")
                certificates.scan(/-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----/m)
                            .map { |pem| OpenSSL::X509::Certificate.new(pem).to_der }.join
              else
                certificates
              end
      key = begin
        OpenSSL::PKey.read(private_key).private_to_der
      rescue OpenSSL::PKey::PKeyError, ArgumentError => e
        raise SVIDError, "x509svid: cannot parse private key: #{e.message}"
      end
      id, ders, key_der, _hint, expires_at = Native.parse_x509_svid(chain.b, key.b)
      new(spiffe_id: id, cert_chain_der: ders, private_key_der: key_der, expires_at: Time.at(expires_at).utc,
          bundle: bundle)
    rescue OpenSSL::X509::CertificateError => e
      raise SVIDError, "x509svid: cannot parse certificate: #{e.message}"
    end

    # Loads an X.509-SVID from PEM (or DER) files, as spiffe-helper writes them.
    # @param cert_path [String]
    # @param key_path [String]
    # @return [X509SVID]
    def self.load(cert_path, key_path, bundle: nil)
      parse(File.binread(cert_path), File.binread(key_path), bundle: bundle)
    rescue SystemCallError => e
      raise SVIDError, "x509svid: cannot read #{e.message}"
    end

    # Verifies a peer's chain the go-spiffe way (`x509svid.Verify`): against
    # the bundle of the leaf's own trust domain only, with path validation
    # (signatures, validity, path length) and the X.509-SVID leaf rules.
    # @param chain [Array<OpenSSL::X509::Certificate>] leaf first
    # @param bundle_source [#x509_bundle_for]
    # @param at [Time] the time to verify at
    # @return [Array(ID, Array<OpenSSL::X509::Certificate>)] the SPIFFE ID and the verified chain, leaf to root
    # @raise [SVIDError] saying why it failed
    def self.verify(chain, bundle_source, at: Time.now)
      leaf, *intermediates = chain
      raise SVIDError, "x509svid: empty certificate chain" unless leaf

      id = TLS.spiffe_id_of(leaf) || raise(SVIDError, "x509svid: the leaf certificate has no single SPIFFE ID URI SAN")
      raise SVIDError, "x509svid: the leaf certificate must not be a CA or sign certificates" unless TLS.svid_leaf?(leaf)

      bundle = bundle_source.x509_bundle_for(id.trust_domain) ||
               raise(SVIDError, "x509svid: no X.509 bundle for trust domain #{id.trust_domain.name.inspect}")
      store = bundle.cert_store
      store.time = at
      context = OpenSSL::X509::StoreContext.new(store, leaf, intermediates)
      unless context.verify
        raise SVIDError, "x509svid: could not verify leaf certificate: #{context.error_string}"
      end

      [id, context.chain]
    end

    # Verifies this SVID's chain against `bundle_source` (see {.verify}).
    # @return [Array(ID, Array<OpenSSL::X509::Certificate>)]
    def verify(bundle_source, at: Time.now)
      self.class.verify(cert_chain, bundle_source, at: at)
    end

    # @param spiffe_id [ID]
    # @param cert_chain_der [Array<String>]
    # @param private_key_der [String] PKCS#8 DER
    # @param hint [String]
    # @param expires_at [Time]
    # @param bundle [X509Bundle, nil]
    def initialize(spiffe_id:, cert_chain_der:, private_key_der:, hint: "", expires_at:, bundle: nil)
      @spiffe_id = ID.parse(spiffe_id)
      @cert_chain_der = cert_chain_der.map { |der| der.frozen? ? der : der.dup.freeze }.freeze
      @private_key_der = private_key_der.frozen? ? private_key_der : private_key_der.dup.freeze
      @hint = hint.frozen? ? hint : hint.dup.freeze
      @expires_at = expires_at
      @bundle = bundle
      @memo = {}
      freeze
    end

    # @return [Array<OpenSSL::X509::Certificate>] leaf first (frozen)
    def cert_chain
      @memo[:chain] ||= @cert_chain_der.map { |der| OpenSSL::X509::Certificate.new(der).freeze }.freeze
    end

    # @return [OpenSSL::X509::Certificate]
    def leaf_certificate
      cert_chain.first
    end

    # @return [OpenSSL::PKey::PKey] the private key matching the leaf
    def private_key
      @memo[:key] ||= OpenSSL::PKey.read(@private_key_der).freeze
    end

    # Contexts that {TLS} built from this SVID, reused while it is current:
    # a fresh OpenSSL 3 context costs over 100 µs (SSL_CTX_new alone).
    # Bounded, so per-request authorizers cannot grow it.
    # @api private
    def tls_context_memo(key)
      cache = (@memo[:tls] ||= {})
      cache.fetch(key) do
        cache.clear if cache.size >= 16
        cache[key] = yield
      end
    end

    # @return [String] the private key as unencrypted PKCS#8 DER. Handle with care.
    def private_key_der
      @private_key_der
    end

    # @param now [Time]
    # @return [Boolean] whether the leaf certificate has expired
    def expired?(now = Time.now)
      now >= @expires_at
    end

    # Part of the SVID-source duck type: a static SVID is its own source.
    # @return [X509SVID] self
    def x509_svid
      self
    end

    # Part of the bundle-source duck type: a static SVID trusts its own bundle.
    # @return [X509Bundle, nil]
    def x509_bundle_for(trust_domain)
      @bundle&.x509_bundle_for(trust_domain)
    end

    # @return [X509BundleSet] its own trust domain's bundle
    def x509_bundles
      X509BundleSet.new([@bundle].compact)
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(X509SVID) && other.spiffe_id == @spiffe_id && other.cert_chain_der == @cert_chain_der &&
        other.hint == @hint
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [X509SVID, @spiffe_id, @cert_chain_der, @hint].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      hint = @hint.empty? ? "" : " hint=#{@hint.inspect}"
      "#<Spiffe::X509SVID #{@spiffe_id}#{hint} expires_at=#{@expires_at.utc.iso8601} " \
        "chain=#{@cert_chain_der.size} private_key=[REDACTED]>"
    end
    alias to_s inspect

    # Never expose the key through `pp`/`instance_variables` dumps.
    def pretty_print(printer)
      printer.text(inspect)
    end
  end

  # SVIDs and bundles from one Workload API update: a consistent snapshot.
  class X509Context
    # @return [Array<X509SVID>] the first is the default
    attr_reader :svids
    # @return [X509BundleSet] own and federated trust domains
    attr_reader :bundles

    # @param svids [Array<X509SVID>]
    # @param bundles [X509BundleSet]
    def initialize(svids, bundles)
      @svids = svids.freeze
      @bundles = bundles
      freeze
    end

    # @return [X509SVID] the default SVID (the agent's first)
    def default_svid
      @svids.first
    end
    alias x509_svid default_svid

    # @return [X509BundleSet]
    alias x509_bundles bundles

    # @return [X509Bundle, nil]
    def x509_bundle_for(trust_domain)
      @bundles[trust_domain]
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(X509Context) && other.svids == @svids && other.bundles == @bundles
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [X509Context, @svids, @bundles].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::X509Context svids=#{@svids.map { |s| s.spiffe_id.to_s }} bundles=#{@bundles.trust_domains.map(&:name)}>"
    end
  end
end
