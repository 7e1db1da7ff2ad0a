# frozen_string_literal: true

require "openssl"

module Spiffe
  # The X.509 authorities (root CA certificates) of one trust domain. Immutable.
  class X509Bundle
    # @return [TrustDomain]
    attr_reader :trust_domain
    # @return [Array<String>] DER of each authority (frozen binary strings)
    attr_reader :authorities_der

    # Parses root certificates from PEM (any number of CERTIFICATE blocks) or
    # concatenated DER, as go-spiffe's `x509bundle.Parse` / `ParseRaw`.
    # @param trust_domain [TrustDomain, String]
    # @param certificates [String] PEM or DER
    # @return [X509Bundle]
    # @raise [BundleError] if a certificate cannot be parsed
    def self.parse(trust_domain, certificates)
      data = String(certificates).b
      ders = if data.include?("-----BEGIN")
               data.scan(/-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----/m)
                   .map { |pem| OpenSSL::X509::Certificate.new(pem).to_der }
             else
               Native.split_der(data)
             end
      new(trust_domain, ders)
    rescue OpenSSL::X509::CertificateError => e
      raise BundleError, "x509bundle: cannot parse certificate: #{e.message}"
    end

    # @param trust_domain [TrustDomain, String]
    # @param path [String] a PEM (or DER) file of root certificates
    # @return [X509Bundle]
    # @raise [BundleError]
    def self.load(trust_domain, path)
      parse(trust_domain, Files.read(path, "X.509 bundle", BundleError))
    end

    # @param trust_domain [TrustDomain, String]
    # @param authorities_der [Array<String>] DER certificates
    def initialize(trust_domain, authorities_der)
      @trust_domain = TrustDomain.parse(trust_domain)
      @authorities_der = authorities_der.map { |der| der.frozen? ? der : der.dup.freeze }.freeze
      @memo = {}
      freeze
    end

    # @return [Array<OpenSSL::X509::Certificate>] the authorities (built once, frozen)
    def x509_authorities
      @memo[:authorities] ||= @authorities_der.map { |der| OpenSSL::X509::Certificate.new(der).freeze }.freeze
    end

    # @return [OpenSSL::X509::Store] a store trusting exactly these authorities
    def cert_store
      store = OpenSSL::X509::Store.new
      x509_authorities.each { |cert| store.add_cert(cert) }
      store
    end

    # @return [String] the authorities as PEM, as `bundle.pem` files hold them
    def marshal
      x509_authorities.map(&:to_pem).join
    end
    alias to_pem marshal

    # Writes {#marshal} atomically.
    # @param path [String]
    # @raise [BundleError]
    def save(path)
      Files.write(path, marshal, error: BundleError)
    end

    # @return [Boolean]
    def empty?
      @authorities_der.empty?
    end

    # Part of the bundle-source duck type.
    # @return [X509Bundle, nil] self if it is for that trust domain
    def x509_bundle_for(trust_domain)
      self if TrustDomain.parse(trust_domain) == @trust_domain
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(X509Bundle) && other.trust_domain == @trust_domain && other.authorities_der == @authorities_der
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [X509Bundle, @trust_domain, @authorities_der].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::X509Bundle #{@trust_domain.name} authorities=#{@authorities_der.size}>"
    end
  end
end
