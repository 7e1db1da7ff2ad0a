# frozen_string_literal: true

require "openssl"

module Spiffe
  # The JWT authorities (signing public keys by key ID) of one trust domain. Immutable.
  class JWTBundle
    # @return [TrustDomain]
    attr_reader :trust_domain
    # @return [String] the JWKS document as the agent sent it
    attr_reader :jwks

    # Parses a JWKS document (every key needs a `kid`).
    # @param trust_domain [TrustDomain, String]
    # @param jwks [String] JWKS JSON
    # @return [JWTBundle]
    # @raise [BundleError] saying which key is wrong
    def self.parse(trust_domain, jwks)
      td = TrustDomain.parse(trust_domain)
      new(td, jwks, Native.parse_jwks(td.name, String(jwks).b))
    end

    # @param trust_domain [TrustDomain, String]
    # @param path [String] a JWKS file
    # @return [JWTBundle]
    # @raise [BundleError]
    def self.load(trust_domain, path)
      parse(trust_domain, Files.read(path, "JWT bundle", BundleError))
    end

    # @param trust_domain [TrustDomain, String]
    # @param jwks [String] JWKS JSON
    # @param keys_der [Array<Array(String, String)>] `[kid, SubjectPublicKeyInfo DER]` pairs
    def initialize(trust_domain, jwks, keys_der)
      @trust_domain = TrustDomain.parse(trust_domain)
      @jwks = jwks.frozen? ? jwks : jwks.dup.freeze
      @keys_der = keys_der.to_h { |kid, der| [kid.dup.freeze, der.dup.freeze] }.freeze
      @memo = {}
      freeze
    end

    # @return [Array<String>] the key IDs
    def key_ids
      @keys_der.keys
    end

    # @return [Hash{String => OpenSSL::PKey::PKey}] public keys by key ID (built once)
    def jwt_authorities
      @memo[:authorities] ||= @keys_der.transform_values { |der| OpenSSL::PKey.read(der).freeze }.freeze
    end

    # @param key_id [String]
    # @return [OpenSSL::PKey::PKey, nil]
    def find_jwt_authority(key_id)
      jwt_authorities[key_id]
    end

    # @param key_id [String]
    # @return [String, nil] the key's SubjectPublicKeyInfo DER
    def key_der(key_id)
      @keys_der[key_id]
    end

    # Part of the bundle-source duck type.
    # @return [JWTBundle, nil] self if it is for that trust domain
    def jwt_bundle_for(trust_domain)
      self if TrustDomain.parse(trust_domain) == @trust_domain
    end

    # @return [String] a JWKS document of the keys (with `kid`)
    def marshal
      Native.marshal_jwks(key_ids, @keys_der.values.join.b)
    end

    # Writes {#marshal} atomically.
    # @param path [String]
    # @raise [BundleError]
    def save(path)
      Files.write(path, marshal, error: BundleError)
    end

    # @return [Boolean]
    def empty?
      @keys_der.empty?
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(JWTBundle) && other.trust_domain == @trust_domain && other.keys_der == @keys_der
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [JWTBundle, @trust_domain, @keys_der].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::JWTBundle #{@trust_domain.name} key_ids=#{key_ids.inspect}>"
    end

    protected

    attr_reader :keys_der
  end
end
