# frozen_string_literal: true

module Spiffe
  # An auto-updating X.509 source: it follows the Workload API and always
  # holds the latest SVIDs and bundles, so reads are local and cost no RPC.
  # Reads are consistent snapshots: an SVID and its bundle always come from
  # the same update. While reconnecting it keeps serving the last good
  # snapshot ({#status} says so). After `fork` it reconnects by itself, and
  # the child is attested as itself.
  #
  # @example
  #   source = Spiffe::X509Source.new(timeout: 10)      # or client.x509_source
  #   source.x509_svid                                  # cached, no RPC
  #   source.on_update { |context| reload_tls(context) }
  #   source.close
  class X509Source
    include Source

    # Seconds to wait for the first update.
    DEFAULT_TIMEOUT = 10

    # Waits for the first update.
    #
    # @param client [WorkloadAPIClient, nil] share a client (default: a new one, closed with the source)
    # @param socket_path [String, nil] for a new client
    # @param timeout [Numeric] seconds to wait for the first update (and, after
    #   a fork, for the child's own)
    # @param hint [String, nil] use the SVID whose registration entry has this hint
    # @param picker [#call, nil] choose the SVID from the list (overrides hint)
    # @param backoff [Backoff] how to reconnect
    # @param logger [#warn, nil] where watch errors go when no on_error is given
    # @param on_error [#call, nil] called with each error while watching
    # @raise [TimeoutError] no update within timeout (the message has the last error)
    # @raise [InvalidArgumentError] the agent refused the watch for good
    def initialize(client: nil, socket_path: nil, timeout: DEFAULT_TIMEOUT, hint: nil, picker: nil,
                   backoff: Backoff::DEFAULT, logger: nil, on_error: nil)
      setup_source(client: client, socket_path: socket_path, timeout: timeout, logger: logger, on_error: on_error)
      @picker = picker || (hint && ->(svids) { svids.find { |svid| svid.hint == hint } })
      @hint = hint
      @tls_cache = {}
      @tls_lock = Mutex.new
      @watch = follow(:x509_context, backoff)
      @watch.value!(timeout)
    rescue StandardError
      close
      raise
    end

    # @return [X509Context] the latest SVIDs and bundles, one consistent snapshot
    def x509_context
      read(@watch)
    end

    # @return [X509SVID] the default SVID, or the one the hint or picker selects
    # @raise [SVIDError] if the picker or hint selects none
    def x509_svid
      pick(x509_context)
    end

    # @return [Array<X509SVID>]
    def x509_svids
      x509_context.svids
    end

    # @return [X509BundleSet]
    def x509_bundles
      x509_context.bundles
    end

    # @param trust_domain [TrustDomain, ID, String]
    # @return [X509Bundle, nil]
    def x509_bundle_for(trust_domain)
      x509_context.bundles[trust_domain]
    end

    # @!group TLS (contexts built once per update, then reused)

    # @return [OpenSSL::SSL::SSLContext] see {TLS.mtls_client_context}
    def mtls_client_context(authorize:)
      tls_context(:mtls_client, authorize) { |context| TLS.mtls_client_context(context, authorize: authorize) }
    end

    # @return [OpenSSL::SSL::SSLContext] see {TLS.tls_client_context}
    def tls_client_context(authorize:)
      tls_context(:tls_client, authorize) { |context| TLS.tls_client_context(context, authorize: authorize) }
    end

    # @param cert_store [OpenSSL::X509::Store, nil] web roots; the system's by default
    # @return [OpenSSL::SSL::SSLContext] see {TLS.mtls_web_client_context}
    def mtls_web_client_context(cert_store: nil)
      tls_context(:mtls_web_client, cert_store) { |picked| TLS.mtls_web_client_context(picked, cert_store: cert_store) }
    end

    # A server context for the current SVID whose handshakes (with SNI) switch
    # to the newest one after a rotation.
    # @return [OpenSSL::SSL::SSLContext] see {TLS.mtls_server_context}
    def mtls_server_context(authorize:)
      tls_context(:mtls_server, authorize) do |context|
        TLS.build(context, authorize: authorize, present: true, verify: :require,
                           servername_cb: proc { mtls_server_context(authorize: authorize) }, live_bundles: self)
      end
    end

    # @return [OpenSSL::SSL::SSLContext] see {TLS.tls_server_context}
    def tls_server_context
      tls_context(:tls_server, nil) do |context|
        TLS.build(context, authorize: nil, present: true, verify: :none,
                        servername_cb: proc { tls_server_context })
      end
    end

    # @!endgroup

    # @return [Boolean] open, following the agent, and holding an unexpired SVID
    def healthy?
      return false if closed? || @watch.terminal

      context = @watch.value
      svid = context && (pick(context) rescue nil) # rubocop:disable Style/RescueModifier
      !svid.nil? && !svid.expired?
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::X509Source #{@client.endpoint}#{closed? ? ' closed' : ''}>"
    end

    private

    # What TLS contexts are built from: the SVID this source picks (hint,
    # picker) and the bundles of the same update.
    Picked = Struct.new(:x509_svid, :x509_bundles) do
      # @param trust_domain [TrustDomain, String]
      # @return [X509Bundle, nil]
      def x509_bundle_for(trust_domain)
        x509_bundles[trust_domain]
      end
    end
    private_constant :Picked

    # One context per kind, rebuilt when the snapshot or the authorizer changes.
    def tls_context(kind, authorize)
      snapshot = x509_context
      @tls_lock.synchronize do
        cached = @tls_cache[kind]
        return cached[2] if cached && cached[0].equal?(snapshot) && cached[1].equal?(authorize)

        built = yield(Picked.new(pick(snapshot), snapshot.bundles))
        @tls_cache[kind] = [snapshot, authorize, built]
        built
      end
    end

    def pick(context)
      return context.default_svid unless @picker

      @picker.call(context.svids) ||
        raise(SVIDError, "no X.509-SVID matches #{@hint ? "hint #{@hint.inspect}" : 'the picker'} " \
                         "(hints: #{context.svids.map(&:hint).inspect})")
    end
  end
end
