# frozen_string_literal: true

module Spiffe
  # A SPIFFE ID, `spiffe://<trust domain><path>`. Immutable and comparable.
  class ID
    include Comparable

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

    # Builds an ID from a trust domain and a path (go-spiffe's `FromPath`).
    # @example
    #   Spiffe::ID.from_path("example.org", "/ns/prod/web")
    # @param trust_domain [TrustDomain, String]
    # @param path [String] empty or `/segment/...`
    # @return [ID]
    # @raise [InvalidIDError] if the path is not a valid SPIFFE ID path
    def self.from_path(trust_domain, path)
      td = TrustDomain.parse(trust_domain)
      build(td, Native.id_path(td.name, String(path), nil))
    end

    # Builds an ID from path segments, each validated on its own, so a
    # segment taken from user input cannot add a `/` (go-spiffe's `FromSegments`).
    # @example
    #   Spiffe::ID.from_segments("example.org", "ns", namespace, "sa", account)
    # @param trust_domain [TrustDomain, String]
    # @param segments [Array<String>]
    # @return [ID]
    # @raise [InvalidIDError]
    def self.from_segments(trust_domain, *segments)
      td = TrustDomain.parse(trust_domain)
      build(td, Native.id_path(td.name, "", segments.map { |segment| String(segment) }))
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

    # @return [Array<String>] the path segments (`[]` for a trust domain's root ID)
    def segments
      @path.split("/").drop(1)
    end

    # @return [Boolean] whether the path is empty (the trust domain's own ID)
    def root?
      @path.empty?
    end

    # @param path [String] `/segment/...` to add to this ID's path
    # @return [ID] a new ID in the same trust domain
    # @raise [InvalidIDError]
    def append_path(path)
      ID.from_path(@trust_domain, @path + Native.id_path(@trust_domain.name, String(path), nil))
    end

    # @param segments [Array<String>] segments to add, each validated on its own
    # @return [ID]
    # @raise [InvalidIDError]
    def append_segments(*segments)
      ID.from_segments(@trust_domain, *self.segments, *segments)
    end

    # @param path [String]
    # @return [ID] an ID in the same trust domain with this path
    # @raise [InvalidIDError]
    def replace_path(path)
      ID.from_path(@trust_domain, path)
    end

    # @param segments [Array<String>]
    # @return [ID] an ID in the same trust domain with these segments
    # @raise [InvalidIDError]
    def replace_segments(*segments)
      ID.from_segments(@trust_domain, *segments)
    end

    # Orders IDs by their URI, so lists of IDs sort predictably.
    def <=>(other)
      @string <=> other.to_s if other.is_a?(ID)
    end

    # @return [String] the ID as a URI
    def to_s
      @string
    end
    alias to_str to_s

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.is_a?(ID) && other.to_s == @string
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [ID, @string].hash
    end

    # @return [String] a summary for debugging (never a key or a token)
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
