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

    def ==(other)
      other.is_a?(X509SVID) && other.spiffe_id == @spiffe_id && other.cert_chain_der == @cert_chain_der &&
        other.hint == @hint
    end
    alias eql? ==

    def hash
      [X509SVID, @spiffe_id, @cert_chain_der, @hint].hash
    end

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

    def ==(other)
      other.is_a?(X509Context) && other.svids == @svids && other.bundles == @bundles
    end
    alias eql? ==

    def hash
      [X509Context, @svids, @bundles].hash
    end

    def inspect
      "#<Spiffe::X509Context svids=#{@svids.map { |s| s.spiffe_id.to_s }} bundles=#{@bundles.trust_domains.map(&:name)}>"
    end
  end
end
