# frozen_string_literal: true

module Spiffe
  # An auto-updating JWT source: it follows the JWT bundles (for validating
  # tokens locally) and hands out JWT-SVIDs, reusing each until half its
  # lifetime has passed. Concurrent requests for the same audience set and
  # subject make one RPC.
  #
  # @example
  #   source = client.jwt_source
  #   request["Authorization"] = "Bearer #{source.jwt_svid(audience: 'vault').token}"
  class JWTSource
    include Source

    # Seconds to wait for the first update.
    DEFAULT_TIMEOUT = 10

    # Waits for the first JWT bundles.
    # @param (see X509Source#initialize)
    def initialize(client: nil, socket_path: nil, timeout: DEFAULT_TIMEOUT, backoff: Backoff::DEFAULT,
                   logger: nil, on_error: nil)
      setup_source(client: client, socket_path: socket_path, timeout: timeout, logger: logger, on_error: on_error)
      @cache = {}
      @key_locks = Hash.new { |locks, key| locks[key] = Mutex.new }
      @cache_lock = Mutex.new
      @watch = follow(:jwt_bundles, backoff)
      @watch.value!(timeout)
    rescue StandardError
      close
      raise
    end

    # A JWT-SVID for `audience`, from the cache while less than half its
    # lifetime has passed.
    # @param audience [String, Array<String>]
    # @param spiffe_id [ID, String, nil]
    # @param hint [String, nil]
    # @return [JWTSVID]
    def jwt_svid(audience:, spiffe_id: nil, hint: nil)
      raise ClosedError, "the JWTSource was closed" if closed?

      key = [Array(audience).map(&:to_s).sort, spiffe_id&.to_s, hint].freeze
      lock = @cache_lock.synchronize { @key_locks[key] }
      lock.synchronize do
        cached = @cache[key]
        return cached[:svid] if cached && Time.now < cached[:refresh_at]

        svid = @client.jwt_svid(audience: audience, spiffe_id: spiffe_id, hint: hint)
        issued = svid.claims["iat"].is_a?(Numeric) ? Time.at(svid.claims["iat"]) : Time.now
        @cache[key] = { svid: svid, refresh_at: issued + ((svid.expires_at - issued) / 2) }
        svid
      end
    end

    # @return [JWTBundleSet] the latest JWT bundles
    def jwt_bundles
      read(@watch)
    end

    # @return [JWTBundle, nil]
    def jwt_bundle_for(trust_domain)
      jwt_bundles[trust_domain]
    end

    # @return [Boolean] open and following the agent
    def healthy?
      !closed? && !@watch.terminal && !@watch.value.nil?
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::JWTSource #{@client.endpoint} cached=#{@cache.size}#{closed? ? ' closed' : ''}>"
    end
  end
end
