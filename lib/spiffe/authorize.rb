# frozen_string_literal: true

module Spiffe
  # Authorizers: callables that take the peer's {ID} and return true to allow
  # it. Any object with `call(id)` works too. The built-in ones are values
  # (equal when they allow the same IDs), so contexts built for them can be
  # cached and reused.
  #
  # @example
  #   Spiffe::TLS.mtls_client_context(source, authorize: Spiffe::Authorize.id("spiffe://example.org/db"))
  module Authorize
    # A built-in authorizer: what it matches and how.
    class Matcher
      # @return [Symbol] :any, :id, :one_of or :member_of
      attr_reader :kind
      # @return [Array<ID, TrustDomain>] what it allows
      attr_reader :values

      # @param kind [Symbol]
      # @param values [Array<ID, TrustDomain>]
      # @param test [Proc] given an {ID}
      def initialize(kind, values, &test)
        @kind = kind
        @values = values.freeze
        @test = test
        freeze
      end

      # @param id [ID] the peer's SPIFFE ID
      # @return [Boolean] whether it is allowed
      def call(id)
        @test.call(id)
      end

      # @return [Proc]
      def to_proc
        method(:call).to_proc
      end

      # @param other [Object]
      # @return [Boolean] whether both allow the same IDs
      def ==(other)
        other.is_a?(Matcher) && other.kind == @kind && other.values == @values
      end
      alias eql? ==

      # @return [Integer] a hash consistent with {#==}
      def hash
        [Matcher, @kind, @values].hash
      end

      # @return [String]
      def inspect
        "#<Spiffe::Authorize.#{@kind}(#{@values.map(&:to_s).join(', ')})>"
      end
    end

    ANY = Matcher.new(:any, []) { |_id| true }
    private_constant :ANY

    # Any SPIFFE ID (whose chain verified against its trust domain's bundle).
    # @return [Matcher]
    def self.any
      ANY
    end

    # Exactly this ID.
    # @param expected [ID, String]
    # @return [Matcher]
    def self.id(expected)
      expected = ID.parse(expected)
      Matcher.new(:id, [expected]) { |id| id == expected }
    end

    # One of these IDs.
    # @param ids [Array<ID, String>]
    # @return [Matcher]
    def self.one_of(*ids)
      list = ids.flatten.map { |id| ID.parse(id) }.uniq.sort
      allowed = list.to_h { |id| [id, true] }.freeze
      Matcher.new(:one_of, list) { |id| allowed.key?(id) }
    end

    # Any ID in this trust domain.
    # @param trust_domain [TrustDomain, String]
    # @return [Matcher]
    def self.member_of(trust_domain)
      td = TrustDomain.parse(trust_domain)
      Matcher.new(:member_of, [td]) { |id| id.member_of?(td) }
    end
  end
end
