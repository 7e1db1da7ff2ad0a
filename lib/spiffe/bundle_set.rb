# frozen_string_literal: true

module Spiffe
  # Bundles keyed by trust domain: what the Workload API returns for the
  # caller's own trust domain and every federated one. Immutable, Enumerable.
  class BundleSet
    include Enumerable

    # @param bundles [Array<X509Bundle>, Array<JWTBundle>]
    def initialize(bundles)
      @bundles = bundles.to_h { |bundle| [bundle.trust_domain, bundle] }.freeze
      freeze
    end

    # @param trust_domain [TrustDomain, ID, String] a name, `spiffe://name` or an ID
    # @return [X509Bundle, JWTBundle, nil]
    def [](trust_domain)
      @bundles[TrustDomain.parse(trust_domain)]
    end
    alias bundle_for []

    # @yieldparam bundle [X509Bundle, JWTBundle]
    def each(&block)
      return enum_for(:each) unless block

      @bundles.each_value(&block)
      self
    end

    # @return [Array<TrustDomain>]
    def trust_domains
      @bundles.keys
    end

    # @return [Integer] how many trust domains
    def size
      @bundles.size
    end

    def empty?
      @bundles.empty?
    end

    # @param other [Object]
    # @return [Boolean] whether both hold the same value
    def ==(other)
      other.instance_of?(self.class) && other.to_h == to_h
    end
    alias eql? ==

    # @return [Integer] a hash consistent with {#==}
    def hash
      [self.class, @bundles].hash
    end

    # @return [Hash{TrustDomain => X509Bundle, JWTBundle}]
    def to_h
      @bundles
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<#{self.class.name} #{trust_domains.map(&:name).join(', ')}>"
    end
  end

  # X.509 bundles by trust domain.
  class X509BundleSet < BundleSet
    # Part of the bundle-source duck type.
    alias x509_bundle_for []
  end

  # JWT bundles by trust domain.
  class JWTBundleSet < BundleSet
    # Part of the bundle-source duck type.
    alias jwt_bundle_for []
  end
end
