# frozen_string_literal: true

module Spiffe
  # A client of the SPIFFE Workload API (the SPIRE agent's socket).
  #
  # Every call opens nothing new: one connection per client (per process after
  # a fork, so the agent attests the child), dialed on first use. Calls wait
  # without holding the GVL, honor `timeout:`, and can be interrupted by
  # `Timeout.timeout`, `Thread#raise`, `Thread#kill` and Ctrl-C. Thread-safe.
  #
  # @example
  #   client = Spiffe.workload_api_client
  #   svid = client.x509_svid
  #   svid.spiffe_id.to_s   # => "spiffe://example.org/myapp"
  #   jwt = client.jwt_svid(audience: "vault")
  class WorkloadAPIClient
    # Seconds a call may take unless `timeout:` says otherwise.
    DEFAULT_TIMEOUT = 5
    # The environment variable naming the endpoint, as in the SPIFFE spec.
    ENDPOINT_ENV = "SPIFFE_ENDPOINT_SOCKET"

    # @param socket_path [String, nil] the agent's socket: a path
    #   (`/tmp/spire-agent/public/api.sock`) or an address (`unix:///…`,
    #   `tcp://127.0.0.1:8081`). Default: `SPIFFE_ENDPOINT_SOCKET`, then SPIRE's
    #   default `unix:///tmp/spire-agent/public/api.sock`.
    # @param timeout [Numeric] seconds each call may take
    # @raise [ConfigurationError] if the address or timeout is invalid
    def initialize(socket_path: nil, timeout: DEFAULT_TIMEOUT)
      unless timeout.is_a?(Numeric)
        raise ConfigurationError, "timeout must be a number of seconds (got #{timeout.inspect})"
      end

      @native = Native::Client.new(socket_path&.to_s, ENV.fetch(ENDPOINT_ENV, nil), timeout.to_f)
      @recent_svids = {}
      @reporter = ErrorReporter.new
      @callbacks = { x509_svid: Callbacks.new(@reporter), x509_bundles: Callbacks.new(@reporter),
                     jwt_bundles: Callbacks.new(@reporter) }
      @watches = []
      @watches_lock = Mutex.new
    end

    # The default X.509-SVID (the agent's first), or the one with `hint`.
    # @param hint [String, nil] select the SVID whose registration entry has this hint
    # @return [X509SVID]
    # @raise [NoIdentityIssuedError] no registration entry matches this process
    # @raise [SVIDError] no SVID has that hint, or the agent sent a malformed one
    # @raise [WorkloadAPIError] see the error classes
    def x509_svid(hint: nil)
      rows, bundles = @native.x509_context
      row = hint ? rows.find { |r| r[3] == hint } : rows.first
      unless row
        raise SVIDError, "no X.509-SVID with hint #{hint.inspect} (hints: #{rows.map { |r| r[3] }.inspect})"
      end

      build_x509_svid(row, bundles)
    end

    # @return [Array<X509SVID>] every X.509-SVID of this process, default first
    def x509_svids
      x509_context.svids
    end

    # SVIDs and bundles (own and federated trust domains) from one update.
    # @return [X509Context]
    def x509_context
      build_x509_context(@native.x509_context)
    end

    # @return [X509BundleSet] X.509 bundles of the own and federated trust domains
    def x509_bundles
      x509_bundle_set(@native.x509_bundles)
    end

    # A JWT-SVID for `audience`.
    # @param audience [String, Array<String>] the audience; with several, the first is the main one
    # @param spiffe_id [ID, String, nil] which of this process's identities (default: the agent's first)
    # @param hint [String, nil] select the SVID whose registration entry has this hint
    # @return [JWTSVID]
    # @raise [ArgumentError] if the audience is empty
    def jwt_svid(audience:, spiffe_id: nil, hint: nil)
      svids = jwt_svids(audience: audience, spiffe_id: spiffe_id)
      return svids.first unless hint

      svids.find { |s| s.hint == hint } ||
        raise(JWTError, "no JWT-SVID with hint #{hint.inspect} (hints: #{svids.map(&:hint).inspect})")
    end

    # JWT-SVIDs for `audience`, one per identity of this process.
    # @param (see #jwt_svid)
    # @return [Array<JWTSVID>]
    def jwt_svids(audience:, spiffe_id: nil)
      audiences = Array(audience).map { |a| String(a) }
      if audiences.empty? || audiences.any?(&:empty?)
        raise ArgumentError, "audience must be a non-empty String or Array of non-empty Strings (got #{audience.inspect})"
      end

      id = spiffe_id && ID.parse(spiffe_id).to_s
      @native.jwt_svids(audiences, id).map { |row| JWTSVID.from_native(row) }
    end

    # @return [JWTBundleSet] JWT bundles (JWKS) of the own and federated trust domains
    def jwt_bundles
      jwt_bundle_set(@native.jwt_bundles)
    end

    # Asks the agent to validate a JWT-SVID for `audience`.
    # @param token [String]
    # @param audience [String]
    # @return [JWTSVID] the validated token
    # @raise [InvalidArgumentError] the token is invalid (the message says why)
    def validate_jwt_svid(token, audience:)
      raise ArgumentError, "token must be a non-empty String" unless token.is_a?(String) && !token.empty?
      raise ArgumentError, "audience must be a non-empty String" unless audience.is_a?(String) && !audience.empty?

      JWTSVID.from_native(@native.validate_jwt_svid(token, audience))
    end

    # An mTLS client context from the current X.509 context: it presents this
    # process's SVID and accepts servers whose SPIFFE ID `authorize` allows
    # (default: any ID in this SVID's trust domain), verified against their own
    # trust domain's bundle. One RPC; build a new one after rotation
    # ({#on_x509_svid_update}, or an {X509Source}).
    #
    # @example
    #   http.ssl_context = client.tls_context   # or Spiffe::TLS.configure(...)
    #   client.tls_context(authorize: Spiffe::Authorize.id("spiffe://example.org/db"))
    # @param authorize [#call, nil] see {Authorize}
    # @return [OpenSSL::SSL::SSLContext] frozen
    def tls_context(authorize: nil)
      context = x509_context
      authorize ||= Authorize.member_of(context.default_svid.spiffe_id.trust_domain)
      TLS.mtls_client_context(context, authorize: authorize)
    end

    # @!group Watching for rotation

    # Registers a block called with the default {X509SVID} of every new
    # update (rotation, bundle change, entry change) while a watch runs
    # ({#watch_x509_svids}). Blocks run on the watching thread with the GVL;
    # an exception in one is reported ({#on_error}) and the watch goes on.
    # @return [Proc] the block
    def on_x509_svid_update(&block)
      @callbacks[:x509_svid].add(block)
    end

    # Like {#on_x509_svid_update}, with each new {X509BundleSet} ({#watch_x509_bundles}).
    def on_x509_bundles_update(&block)
      @callbacks[:x509_bundles].add(block)
    end

    # Like {#on_x509_svid_update}, with each new {JWTBundleSet} ({#watch_jwt_bundles}).
    def on_jwt_bundles_update(&block)
      @callbacks[:jwt_bundles].add(block)
    end

    # Registers a block called with each error seen while watching (the
    # watch reconnects by itself). Without one, errors are printed as warnings.
    def on_error(&block)
      @reporter.add(block)
    end

    # Follows X.509-SVID updates on the calling thread, calling the
    # {#on_x509_svid_update} blocks (and this block) with each new default
    # SVID, reconnecting with `backoff` as needed. Returns when the client
    # shuts down. After `fork` it goes on in the child on a new thread.
    #
    # @example
    #   client.on_x509_svid_update { |svid| http.ssl_context = client.tls_context }
    #   Thread.new { client.watch_x509_svids }
    # @yieldparam svid [X509SVID]
    # @raise [InvalidArgumentError] if the agent refuses the watch for good
    def watch_x509_svids(backoff: Backoff::DEFAULT, &block)
      extra = block && Callbacks.new(@reporter).tap { |c| c.add(block) }
      run_watch(:x509_context, backoff) do |context|
        extra&.call(context.default_svid)
        @callbacks[:x509_svid].call(context.default_svid)
      end
    end

    # Follows X.509 bundle updates on the calling thread (see {#watch_x509_svids}).
    # @yieldparam bundles [X509BundleSet]
    def watch_x509_bundles(backoff: Backoff::DEFAULT, &block)
      extra = block && Callbacks.new(@reporter).tap { |c| c.add(block) }
      run_watch(:x509_bundles, backoff) do |bundles|
        extra&.call(bundles)
        @callbacks[:x509_bundles].call(bundles)
      end
    end

    # Follows JWT bundle updates on the calling thread (see {#watch_x509_svids}).
    # @yieldparam bundles [JWTBundleSet]
    def watch_jwt_bundles(backoff: Backoff::DEFAULT, &block)
      extra = block && Callbacks.new(@reporter).tap { |c| c.add(block) }
      run_watch(:jwt_bundles, backoff) do |bundles|
        extra&.call(bundles)
        @callbacks[:jwt_bundles].call(bundles)
      end
    end

    # An auto-updating X.509 source sharing this client; closed with it.
    # @param options [Hash] see {X509Source#initialize}
    # @return [X509Source]
    def x509_source(**options)
      X509Source.new(client: self, **options)
    end

    # An auto-updating JWT source sharing this client; closed with it.
    # @return [JWTSource]
    def jwt_source(**options)
      JWTSource.new(client: self, **options)
    end

    # Auto-updating bundles sharing this client; closed with it.
    # @return [BundleSource]
    def bundle_source(**options)
      BundleSource.new(client: self, **options)
    end

    # @!endgroup

    # Stops every watch and source of this client and closes the connection.
    # Idempotent; later calls raise {ClosedError}.
    # @return [nil]
    def shutdown
      watches = @watches_lock.synchronize { @watches.dup.tap { @watches.clear } }
      watches.each(&:close)
      @native.close
      nil
    end
    alias close shutdown

    # @return [Boolean]
    def closed?
      @native.closed?
    end

    # @return [String] the endpoint address in use, e.g. `unix:///tmp/agent.sock`
    def endpoint
      @native.endpoint
    end

    # @return [Float] seconds each call may take
    def timeout
      @native.timeout
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::WorkloadAPIClient #{endpoint} timeout=#{timeout}#{closed? ? ' closed' : ''}>"
    end

    private

    # Starts a watch on its own thread (for sources).
    def start_watch(kind, backoff, reporter, &on_change)
      new_watch(kind, backoff, reporter, &on_change).start_thread
    end

    # Runs a watch on the calling thread until shutdown.
    def run_watch(kind, backoff, &on_change)
      watch = new_watch(kind, backoff, @reporter, &on_change)
      watch.run
    ensure
      @watches_lock.synchronize { @watches.delete(watch) } if watch
    end

    def new_watch(kind, backoff, reporter, &on_change)
      convert = { x509_context: method(:build_x509_context), x509_bundles: method(:x509_bundle_set),
                  jwt_bundles: method(:jwt_bundle_set) }.fetch(kind)
      watch = Watch.new(kind, open: -> { @native.watch(kind.to_s, *backoff.to_native) }, convert: convert,
                              on_change: on_change, on_error: reporter.method(:report))
      @watches_lock.synchronize { @watches << watch }
      watch
    end

    def build_x509_context((rows, bundles))
      X509Context.new(rows.map { |row| build_x509_svid(row, bundles) }, x509_bundle_set(bundles))
    end

    def jwt_bundle_set(bundles)
      JWTBundleSet.new(bundles.map { |td, (jwks, keys)| JWTBundle.new(TrustDomain.new(td, validated: true), jwks, keys) })
    end

    def x509_bundle_set(bundles)
      X509BundleSet.new(bundles.map { |td, ders| X509Bundle.new(TrustDomain.new(td, validated: true), ders) })
    end

    # SVIDs rotate rarely, so an unchanged SVID returns the object built
    # last time, with its OpenSSL certificates and key already parsed.
    RECENT_SVIDS = 8
    private_constant :RECENT_SVIDS

    def build_x509_svid(row, bundles)
      id_string, chain, key, hint, expires_at = row
      ders = bundles[id_string[%r{\Aspiffe://([^/]+)}, 1]]
      cache_key = [row, ders]
      @recent_svids[cache_key] ||= begin
        @recent_svids.shift while @recent_svids.size >= RECENT_SVIDS
        spiffe_id = ID.parse(id_string)
        X509SVID.new(
          spiffe_id: spiffe_id, cert_chain_der: chain, private_key_der: key, hint: hint,
          expires_at: Time.at(expires_at).utc,
          bundle: ders && X509Bundle.new(spiffe_id.trust_domain, ders)
        )
      end
    end
  end
end
