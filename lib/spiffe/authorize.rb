# frozen_string_literal: true

module Spiffe
  # Authorizers: callables that take the peer's {ID} and return true to allow
  # it. Any object with `call(id)` works too.
  #
  # @example
  #   Spiffe::TLS.mtls_client_context(source, authorize: Spiffe::Authorize.id("spiffe://example.org/db"))
  module Authorize
    # Any SPIFFE ID (whose chain verified against its trust domain's bundle).
    def self.any
      ->(_id) { true }
    end

    # Exactly this ID.
    # @param expected [ID, String]
    def self.id(expected)
      expected = ID.parse(expected)
      ->(id) { id == expected }
    end

    # One of these IDs.
    # @param ids [Array<ID, String>]
    def self.one_of(*ids)
      allowed = ids.flatten.map { |id| ID.parse(id) }.to_h { |id| [id, true] }.freeze
      ->(id) { allowed.key?(id) }
    end

    # Any ID in this trust domain.
    # @param trust_domain [TrustDomain, String]
    def self.member_of(trust_domain)
      td = TrustDomain.parse(trust_domain)
      ->(id) { id.member_of?(td) }
    end
  end
end
