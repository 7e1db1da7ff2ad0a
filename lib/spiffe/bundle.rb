# frozen_string_literal: true

module Spiffe
  # A SPIFFE bundle: one trust domain's X.509 and JWT authorities in the SPIFFE
  # bundle format (a JWK Set with `use: x509-svid` entries carrying `x5c` and
  # `use: jwt-svid` entries carrying `kid`, plus `spiffe_sequence` and
  # `spiffe_refresh_hint`). This is what SPIRE's federation endpoint serves and
  # what `spire-server bundle show -format spiffe` prints. Immutable; a bundle
  # source for both kinds of SVID.
  #
  # @example Trust a partner's trust domain from a file
  #   partner = Spiffe::Bundle.load("partner.example", "/etc/spiffe/partner.json")
  #   Spiffe::TLS.mtls_client_context(source, authorize: Spiffe::Authorize.member_of("partner.example"),
  #                                   bundle_source: partner)
  class Bundle
    # @return [TrustDomain]
    attr_reader :trust_domain
    # @return [X509Bundle] the `x509-svid` authorities
    attr_reader :x509_bundle
    # @return [JWTBundle] the `jwt-svid` authorities
    attr_reader :jwt_bundle
    # @return [Integer, nil] `spiffe_sequence`, if set
    attr_reader :sequence_number
    # @return [Integer, nil] `spiffe_refresh_hint` in seconds, if set
    attr_reader :refresh_hint

    # Parses a SPIFFE bundle document. As the standard requires, entries with a
    # missing or unknown `use` or key type, and `x509-svid` entries without
    # `x5c`, are ignored; a malformed entry of a known kind is an error.
    # @param trust_domain [TrustDomain, String] whose bundle it is (the document does not say)
    # @param document [String] the JSON document
    # @return [Bundle]
    # @raise [BundleError] saying which entry is wrong
    def self.parse(trust_domain, document)
      td = TrustDomain.parse(trust_domain)
      ders, keys, sequence_number, refresh_hint = Native.parse_spiffe_bundle(td.name, String(document).b)
      new(td, x509_authorities: ders, jwt_authorities: keys,
              sequence_number: sequence_number, refresh_hint: refresh_hint)
    end

    # @param trust_domain [TrustDomain, String]
    # @param path [String] a SPIFFE bundle (JSON) file
    # @return [Bundle]
    # @raise [BundleError] if the file cannot be read or parsed
    def self.load(trust_domain, path)
      parse(trust_domain, Files.read(path, "SPIFFE bundle", BundleError))
    end

    # Combines X.509 and JWT bundles of one trust domain into a SPIFFE bundle.
    # @param x509_bundle [X509Bundle, nil]
    # @param jwt_bundle [JWTBundle, nil]
    # @return [Bundle]
    # @raise [ArgumentError] if neither is given or their trust domains differ
    def self.from(x509_bundle: nil, jwt_bundle: nil, sequence_number: nil, refresh_hint: nil)
      domains = [x509_bundle, jwt_bundle].compact.map(&:trust_domain).uniq
      raise ArgumentError, "give an X.509 bundle, a JWT bundle, or both of one trust domain" unless domains.size == 1

      new(domains.first, x509_authorities: x509_bundle&.authorities_der || [],
                         jwt_authorities: jwt_bundle ? jwt_bundle.key_ids.map { |kid| [kid, jwt_bundle.key_der(kid)] } : [],
                         sequence_number: sequence_number, refresh_hint: refresh_hint)
    end

    # @param trust_domain [TrustDomain, String]
    # @param x509_authorities [Array<String>] DER root certificates
    # @param jwt_authorities [Array<Array(String, String)>] `[kid, SubjectPublicKeyInfo DER]` pairs
    # @param sequence_number [Integer, nil]
    # @param refresh_hint [Integer, nil] seconds
    def initialize(trust_domain, x509_authorities: [], jwt_authorities: [], sequence_number: nil, refresh_hint: nil)
      @trust_domain = TrustDomain.parse(trust_domain)
      @x509_bundle = X509Bundle.new(@trust_domain, x509_authorities)
      keys = jwt_authorities.to_a
      @jwt_bundle = JWTBundle.new(@trust_domain, Native.marshal_jwks(keys.map(&:first), keys.map(&:last).join.b), keys)
      @sequence_number = sequence_number&.then { |n| Integer(n) }
      @refresh_hint = refresh_hint&.then { |n| Integer(n) }
      freeze
    end

    # @return [Array<OpenSSL::X509::Certificate>]
    def x509_authorities
      @x509_bundle.x509_authorities
    end

    # @return [Hash{String => OpenSSL::PKey::PKey}] JWT public keys by key ID
    def jwt_authorities
      @jwt_bundle.jwt_authorities
    end

    # @return [Boolean] whether it holds no authority at all (all SVIDs of the trust domain are untrusted)
    def empty?
      @x509_bundle.empty? && @jwt_bundle.empty?
    end

    # @return [String] the SPIFFE bundle document (JSON)
    def marshal
      keys = @jwt_bundle.key_ids
      Native.marshal_spiffe_bundle(@trust_domain.name, @x509_bundle.authorities_der.join.b,
                                   keys, keys.map { |kid| @jwt_bundle.key_der(kid) }.join.b,
                                   @sequence_number, @refresh_hint)
    end
    alias to_json marshal

    # Writes the document atomically (temporary file, fsync, rename).
    # @param path [String]
    # @return [void]
    # @raise [BundleError] if it cannot be written
    def save(path)
      Files.write(path, marshal, error: BundleError)
    end

    # Part of the bundle-source duck type.
    # @return [X509Bundle, nil]
    def x509_bundle_for(trust_domain)
      @x509_bundle if TrustDomain.parse(trust_domain) == @trust_domain
    end

    # Part of the bundle-source duck type.
    # @return [JWTBundle, nil]
    def jwt_bundle_for(trust_domain)
      @jwt_bundle if TrustDomain.parse(trust_domain) == @trust_domain
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(Bundle) && other.trust_domain == @trust_domain && other.x509_bundle == @x509_bundle &&
        other.jwt_bundle == @jwt_bundle && other.sequence_number == @sequence_number &&
        other.refresh_hint == @refresh_hint
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [Bundle, @trust_domain, @x509_bundle, @jwt_bundle, @sequence_number, @refresh_hint].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::Bundle #{@trust_domain.name} x509_authorities=#{@x509_bundle.authorities_der.size} " \
        "jwt_key_ids=#{@jwt_bundle.key_ids.inspect} sequence_number=#{@sequence_number.inspect}>"
    end
  end
end
