# frozen_string_literal: true

require "time"

module Spiffe
  # A JWT-SVID: a signed token asserting a SPIFFE ID to an audience.
  # Immutable; `inspect` and `to_s` never show the token.
  class JWTSVID
    # @return [ID] the `sub` claim
    attr_reader :spiffe_id
    # @return [Array<String>] the `aud` claim, always a list
    attr_reader :audience
    # @return [Time] the `exp` claim
    attr_reader :expires_at
    # @return [Hash{String => Object}] every claim of the token (deeply frozen)
    attr_reader :claims
    # @return [String] the registration entry's hint ("" if none)
    attr_reader :hint

    # Validates a JWT-SVID offline, as go-spiffe's `jwtsvid.ParseAndValidate`:
    # RS/PS/ES 256, 384 and 512; `typ` JWT or JOSE if present; `sub`, `exp`,
    # `aud` and `kid` required; the key found by the subject's trust domain,
    # then `kid`; the signature checked; audience and times with 60 s leeway.
    #
    # @example
    #   svid = Spiffe::JWTSVID.parse_and_validate(token, jwt_source, audience: "my-api")
    # @param token [String]
    # @param bundle_source [#jwt_bundle_for] a {JWTSource}, {BundleSource}, {JWTBundleSet} or {JWTBundle}
    # @param audience [String, Array<String>] accepted if the token has any; [] skips the check
    # @return [JWTSVID]
    # @raise [JWTMalformedError, JWTExpiredError, JWTAudienceError, JWTSignatureError, JWTAuthorityNotFoundError]
    def self.parse_and_validate(token, bundle_source, audience:)
      raise ArgumentError, "token must be a String" unless token.is_a?(String)

      trust_domain, kid = Native.jwt_peek(token)
      bundle = bundle_source.jwt_bundle_for(trust_domain)
      from_native(Native.jwt_validate(token, Array(audience).map(&:to_s), !bundle.nil?, kid && bundle&.key_der(kid)))
    end

    # Parses a JWT-SVID and checks its claims (audience, times) without
    # verifying the signature: for tokens that came from the agent, or to inspect.
    # @return [JWTSVID]
    # @raise [JWTError]
    def self.parse_insecure(token, audience:)
      raise ArgumentError, "token must be a String" unless token.is_a?(String)

      from_native(Native.jwt_parse_insecure(token, Array(audience).map(&:to_s)))
    end

    # @api private
    # Builds a JWTSVID from a native row `[token, id, audience, exp, claims, hint]`.
    def self.from_native(row)
      token, id, audience, expires_at, claims, hint = row
      new(token: token, spiffe_id: id, audience: audience, expires_at: Time.at(expires_at).utc,
          claims: claims, hint: hint)
    end

    # @param token [String] compact JWS
    # @param spiffe_id [ID, String]
    # @param audience [Array<String>]
    # @param expires_at [Time]
    # @param claims [Hash]
    # @param hint [String]
    def initialize(token:, spiffe_id:, audience:, expires_at:, claims:, hint: "")
      @token = token.frozen? ? token : token.dup.freeze
      @spiffe_id = ID.parse(spiffe_id)
      @audience = audience.map { |a| a.dup.freeze }.freeze
      @expires_at = expires_at
      @claims = deep_freeze(claims)
      @hint = hint.frozen? ? hint : hint.dup.freeze
      freeze
    end

    # @return [String] the token, for an `Authorization: Bearer` header. Never log it.
    def token
      @token
    end

    # @param now [Time]
    # @return [Boolean]
    def expired?(now = Time.now)
      now >= @expires_at
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(JWTSVID) && other.token == @token
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [JWTSVID, @token].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      hint = @hint.empty? ? "" : " hint=#{@hint.inspect}"
      "#<Spiffe::JWTSVID #{@spiffe_id} audience=#{@audience.inspect}#{hint} " \
        "expires_at=#{@expires_at.utc.iso8601} token=[REDACTED]>"
    end
    alias to_s inspect

    # Pretty-prints like {#inspect}.
    # @param printer [PP]
    # @return [void]
    def pretty_print(printer)
      printer.text(inspect)
    end

    private

    def deep_freeze(value)
      case value
      when Hash then value.to_h { |k, v| [deep_freeze(k), deep_freeze(v)] }.freeze
      when Array then value.map { |v| deep_freeze(v) }.freeze
      else value.frozen? ? value : value.dup.freeze
      end
    end
  end
end
