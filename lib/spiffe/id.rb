# frozen_string_literal: true

module Spiffe
  # A SPIFFE ID, `spiffe://<trust domain><path>`. Immutable and comparable.
  class ID
    # @return [TrustDomain]
    attr_reader :trust_domain
    # @return [String] the path, empty or `/seg/...`
    attr_reader :path

    # Parses and validates a SPIFFE ID (SPIFFE-ID standard, go-spiffe's messages).
    # @param id [String, ID]
    # @return [ID]
    # @raise [InvalidIDError]
    def self.parse(id)
      return id if id.is_a?(ID)

      td, path = Native.parse_id(String(id))
      build(TrustDomain.new(td, validated: true), path)
    end

    # Builds an ID from parts already validated by the native parser.
    def self.build(trust_domain, path)
      id = allocate
      id.send(:initialize_parts, trust_domain, path)
      id
    end
    private_class_method :build

    # @param id [String] see {.parse}
    def initialize(id)
      td, path = Native.parse_id(String(id))
      initialize_parts(TrustDomain.new(td, validated: true), path)
    end

    # @param trust_domain [TrustDomain, String]
    # @return [Boolean] whether this ID belongs to the trust domain
    def member_of?(trust_domain)
      @trust_domain == TrustDomain.parse(trust_domain)
    end

    # @return [String] the ID as a URI
    def to_s
      @string
    end
    alias to_str to_s

    def ==(other)
      other.is_a?(ID) && other.to_s == @string
    end
    alias eql? ==

    def hash
      [ID, @string].hash
    end

    def inspect
      "#<Spiffe::ID #{@string}>"
    end

    private

    def initialize_parts(trust_domain, path)
      @trust_domain = trust_domain
      @path = path.frozen? ? path : path.dup.freeze
      @string = "spiffe://#{trust_domain.name}#{path}".freeze
      freeze
    end
  end
end
