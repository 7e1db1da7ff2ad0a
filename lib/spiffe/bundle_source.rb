# frozen_string_literal: true

module Spiffe
  # Auto-updating X.509 and JWT bundles, for code that verifies peers but has
  # no identity of its own to present.
  class BundleSource
    include Source

    # Seconds to wait for the first update.
    DEFAULT_TIMEOUT = 10

    # Waits for the first X.509 and JWT bundles.
    # @param (see X509Source#initialize)
    def initialize(client: nil, socket_path: nil, timeout: DEFAULT_TIMEOUT, backoff: Backoff::DEFAULT,
                   logger: nil, on_error: nil)
      setup_source(client: client, socket_path: socket_path, timeout: timeout, logger: logger, on_error: on_error)
      @x509 = follow(:x509_bundles, backoff)
      @jwt = follow(:jwt_bundles, backoff)
      @x509.value!(timeout)
      @jwt.value!(timeout)
    rescue StandardError
      close
      raise
    end

    # @return [X509BundleSet]
    def x509_bundles
      read(@x509)
    end

    # @return [JWTBundleSet]
    def jwt_bundles
      read(@jwt)
    end

    # @return [X509Bundle, nil]
    def x509_bundle_for(trust_domain)
      x509_bundles[trust_domain]
    end

    # @return [JWTBundle, nil]
    def jwt_bundle_for(trust_domain)
      jwt_bundles[trust_domain]
    end

    def healthy?
      !closed? && [@x509, @jwt].none?(&:terminal) && !@x509.value.nil? && !@jwt.value.nil?
    end

  end
end
