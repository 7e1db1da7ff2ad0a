# frozen_string_literal: true

module Spiffe
  # A SPIFFE trust domain, such as `example.org`. Immutable.
  class TrustDomain
    # @return [String] the trust domain name
    attr_reader :name

    # @param name_or_id [String, TrustDomain, ID] a name (`example.org`) or a SPIFFE ID
    # @return [TrustDomain]
    # @raise [InvalidIDError] if it is not a valid trust domain
    def self.parse(name_or_id)
      case name_or_id
      when TrustDomain then name_or_id
      when ID then name_or_id.trust_domain
      else new(Native.parse_trust_domain(String(name_or_id)), validated: true)
      end
    end

    # @param name [String] a trust domain name
    # @raise [InvalidIDError] if it is not a valid trust domain name
    def initialize(name, validated: false)
      @name = (validated ? name : Native.parse_trust_domain(String(name))).dup.freeze
      freeze
    end

    # @return [String] `spiffe://<name>`
    def id_string
      "spiffe://#{@name}"
    end

    # @example
    #   td.id                         # => spiffe://example.org
    #   td.id("ns", "prod", "web")    # => spiffe://example.org/ns/prod/web
    # @param segments [Array<String>] path segments, each validated on its own
    # @return [ID] the trust domain's root ID, or the ID with these segments
    # @raise [InvalidIDError] if a segment is invalid
    def id(*segments)
      segments.empty? ? ID.send(:build, self, "") : ID.from_segments(self, *segments)
    end

    alias to_s name

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(TrustDomain) && other.name == @name
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [TrustDomain, @name].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::TrustDomain #{@name}>"
    end
  end
end
