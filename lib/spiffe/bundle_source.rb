# frozen_string_literal: true

module Spiffe
  # Auto-updating X.509 and JWT bundles, for code that verifies peers but has
  # no identity of its own to present.
  class BundleSource
    DEFAULT_TIMEOUT = 10

    # Waits for the first X.509 and JWT bundles.
    # @param (see X509Source#initialize)
    def initialize(client: nil, socket_path: nil, timeout: DEFAULT_TIMEOUT, backoff: Backoff::DEFAULT,
                   logger: nil, on_error: nil)
      @owns_client = client.nil?
      @client = client || Spiffe.workload_api_client(socket_path: socket_path)
      @timeout = timeout
      @reporter = ErrorReporter.new(logger: logger)
      @reporter.add(on_error) if on_error
      @callbacks = Callbacks.new(@reporter)
      @x509 = @client.send(:start_watch, :x509_bundles, backoff, @reporter) { |set| @callbacks.call(set) }
      @jwt = @client.send(:start_watch, :jwt_bundles, backoff, @reporter) { |set| @callbacks.call(set) }
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

    # Calls the block with each new X509BundleSet or JWTBundleSet.
    def on_update(&block)
      @callbacks.add(block)
    end

    def healthy?
      !closed? && [@x509, @jwt].none?(&:terminal) && !@x509.value.nil? && !@jwt.value.nil?
    end

    # Idempotent.
    def close
      @closed = true
      @x509&.close
      @jwt&.close
      @client.shutdown if @owns_client && @client
      nil
    end

    def closed?
      @closed || @x509.closed? || @jwt.closed?
    end

    private

    def read(watch)
      raise ClosedError, "the BundleSource was closed" if closed?

      watch.value!(@timeout)
    end
  end
end
