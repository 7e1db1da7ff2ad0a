# frozen_string_literal: true

require "openssl"

module Spiffe
  # `OpenSSL::SSL::SSLContext`s for SPIFFE (m)TLS, the go-spiffe `tlsconfig`
  # way: the peer's chain must lead to a root in the bundle of the peer's own
  # trust domain (not just any trusted root), its leaf must be an X.509-SVID
  # (one URI SAN, not a CA), and its SPIFFE ID must pass `authorize`. Host
  # names are not checked; the SPIFFE ID is the identity. TLS 1.2 or newer.
  #
  # A source is anything with `#x509_svid` and `#x509_bundle_for(trust_domain)`
  # (and optionally `#x509_bundles`): an {X509Source}, an {X509Context}, or an
  # {X509SVID} (which trusts its own bundle). Contexts are built from the
  # source's current snapshot and frozen; build a new one after rotation
  # (`X509Source#on_update`), since CRuby freezes a context on first use.
  module TLS
    module_function

    # A client that presents its SVID and authorizes the server's SPIFFE ID.
    # From an {X509Source}, built once per update and reused.
    # @param source [#x509_svid, #x509_bundle_for]
    # @param authorize [#call] see {Authorize}
    # @return [OpenSSL::SSL::SSLContext]
    def mtls_client_context(source, authorize:)
      return source.mtls_client_context(authorize: authorize) if source.respond_to?(:mtls_client_context)

      cached(source, [:mtls_client, authorize]) { build(source, authorize: authorize, present: true, verify: :peer) }
    end

    # A server that presents its SVID and requires and authorizes client SVIDs.
    # With a live source (an {X509Source}), every handshake that names a
    # server (SNI) gets the context of the source's newest SVID, so a running
    # server presents rotated certificates without a restart.
    # @return [OpenSSL::SSL::SSLContext]
    def mtls_server_context(source, authorize:)
      return source.mtls_server_context(authorize: authorize) if source.respond_to?(:mtls_server_context)

      cached(source, [:mtls_server, authorize]) { build(source, authorize: authorize, present: true, verify: :require) }
    end

    # A client without an SVID of its own that authorizes the server's SPIFFE ID.
    # @param bundles [#x509_bundle_for] where trust comes from
    # @return [OpenSSL::SSL::SSLContext]
    def tls_client_context(bundles, authorize:)
      return bundles.tls_client_context(authorize: authorize) if bundles.respond_to?(:tls_client_context)

      build(bundles, authorize: authorize, present: false, verify: :peer)
    end

    # A server that presents its SVID and does not ask for client
    # certificates. Rotation as in {.mtls_server_context}.
    # @return [OpenSSL::SSL::SSLContext]
    def tls_server_context(source)
      return source.tls_server_context if source.respond_to?(:tls_server_context)

      cached(source, [:tls_server]) { build(source, authorize: nil, present: true, verify: :none) }
    end

    # A client context: mTLS when the source has an SVID to present
    # ({.mtls_client_context}), server-only TLS when it is just bundles
    # ({.tls_client_context}). From an {X509Source}, cached per update.
    # @param source [#x509_bundle_for, #x509_svid]
    # @param authorize [#call] which server SPIFFE IDs to accept
    # @return [OpenSSL::SSL::SSLContext]
    def client_context(source, authorize:)
      return mtls_client_context(source, authorize: authorize) if source.respond_to?(:x509_svid)

      tls_client_context(source, authorize: authorize)
    end

    # A server context: client SVIDs required and authorized when `authorize`
    # is given ({.mtls_server_context}), else server-only TLS ({.tls_server_context}).
    # @param source [#x509_svid, #x509_bundle_for]
    # @param authorize [#call, nil]
    # @return [OpenSSL::SSL::SSLContext]
    def server_context(source, authorize: nil)
      authorize ? mtls_server_context(source, authorize: authorize) : tls_server_context(source)
    end

    # SPIFFE for the client, web PKI for the server: presents the source's
    # SVID and verifies the server the usual HTTPS way (trusted CAs
    # and host name), for calling a public-CA endpoint that authenticates
    # callers by SPIFFE ID (go-spiffe's `MTLSWebClientConfig`).
    # @param source [#x509_svid]
    # @param cert_store [OpenSSL::X509::Store, nil] web roots; the system's by default
    # @return [OpenSSL::SSL::SSLContext] set `SSLSocket#hostname` (Net::HTTP does) for the host name check
    def mtls_web_client_context(source, cert_store: nil)
      return source.mtls_web_client_context(cert_store: cert_store) if source.respond_to?(:mtls_web_client_context)

      cached(source, [:mtls_web_client, cert_store]) { web_client_context(source, cert_store) }
    end

    # @api private
    def web_client_context(source, cert_store)
      context = OpenSSL::SSL::SSLContext.new
      context.min_version = OpenSSL::SSL::TLS1_2_VERSION
      present_svid(context, source.x509_svid)
      context.cert_store = cert_store || OpenSSL::X509::Store.new.tap(&:set_default_paths)
      context.verify_mode = OpenSSL::SSL::VERIFY_PEER
      context.verify_hostname = true
      context.freeze
      context
    end

    # A web certificate for the server, SPIFFE for its clients: presents a
    # web certificate (say, from a public CA) and requires client
    # X.509-SVIDs, verified against their trust domain's bundle and
    # authorized by SPIFFE ID (go-spiffe's `MTLSWebServerConfig`). With a
    # live bundle source, handshakes that send SNI use its newest bundles.
    # @param cert [OpenSSL::X509::Certificate] the server's web certificate
    # @param key [OpenSSL::PKey::PKey] its private key
    # @param bundle_source [#x509_bundle_for] trust for client SVIDs
    # @param authorize [#call] which client SPIFFE IDs to accept
    # @param extra_chain_cert [Array<OpenSSL::X509::Certificate>, nil] intermediates to send
    # @return [OpenSSL::SSL::SSLContext]
    def mtls_web_server_context(cert, key, bundle_source, authorize:, extra_chain_cert: nil)
      web = OpenSSL::SSL::SSLContext.new
      web.cert = cert
      web.key = key
      web.extra_chain_cert = extra_chain_cert if extra_chain_cert
      live = bundle_source.respond_to?(:x509_bundles) && !bundle_source.is_a?(X509BundleSet)
      snapshot = nil
      current = nil
      refresh = lambda do
        bundles = bundle_lookup(bundle_source)
        return current if current && bundles.equal?(snapshot)

        snapshot = bundles
        current = build(bundles, authorize: authorize, present: web, verify: :require,
                                 servername_cb: live ? proc { refresh.call } : nil,
                                 live_bundles: live ? bundle_source : nil)
      end
      refresh.call
    end

    # Sets up a Net::HTTP for SPIFFE mTLS: it presents the source's SVID and
    # accepts a server whose SPIFFE ID `authorize` allows. Settings apply to
    # the next connection; call again after rotation (or on each request with
    # an {X509Source}, whose contexts are cached per update).
    # @param http [Net::HTTP]
    # @return [Net::HTTP]
    def configure_net_http(http, source, authorize:)
      context = mtls_client_context(source, authorize: authorize)
      http.use_ssl = true
      http.cert = context.cert
      http.key = context.key
      http.extra_chain_cert = context.extra_chain_cert
      http.cert_store = context.cert_store
      http.verify_mode = context.verify_mode
      http.verify_callback = context.verify_callback
      http.verify_hostname = false
      http.min_version = OpenSSL::SSL::TLS1_2_VERSION
      http
    end

    # Options for `WEBrick::HTTPServer.new(**options)`: HTTPS presenting the
    # source's SVID; with `authorize`, client SVIDs are required and authorized.
    # With an {X509Source}, clients that send SNI get rotated certificates.
    # @return [Hash]
    def webrick_options(source, authorize: nil)
      context = authorize ? mtls_server_context(source, authorize: authorize) : tls_server_context(source)
      {
        SSLEnable: true, SSLCertificate: context.cert, SSLPrivateKey: context.key,
        SSLExtraChainCert: context.extra_chain_cert, SSLCertificateStore: context.cert_store,
        SSLVerifyClient: context.verify_mode, SSLVerifyCallback: context.verify_callback,
        SSLServerNameCallback: context.servername_cb, SSLStartImmediately: true
      }
    end

    # An `OpenSSL::SSL::SSLServer` that takes the source's current context for
    # every accepted connection, so new connections get rotated certificates
    # whether or not the client sends SNI.
    class Server < OpenSSL::SSL::SSLServer
      # @param tcp_server [TCPServer]
      # @param source [X509Source, #x509_svid]
      # @param authorize [#call, nil] require and authorize client SVIDs when given
      def initialize(tcp_server, source, authorize: nil)
        @source = source
        @authorize = authorize
        # SSLServer writes to the context it is given; ours are frozen and
        # chosen per accept, so it gets a placeholder.
        super(tcp_server, OpenSSL::SSL::SSLContext.new)
      end

      # @return [OpenSSL::SSL::SSLSocket]
      def accept
        socket = @svr.accept
        begin
          ssl = OpenSSL::SSL::SSLSocket.new(socket, current_context)
          ssl.sync_close = true
          ssl.accept if start_immediately
          ssl
        rescue StandardError
          socket.close
          raise
        end
      end

      private

      def current_context
        @authorize ? TLS.mtls_server_context(@source, authorize: @authorize) : TLS.tls_server_context(@source)
      end
    end

    # @return [ID, nil] the SPIFFE ID in a certificate's single URI SAN
    def spiffe_id_of(certificate)
      san = certificate.extensions.find { |ext| ext.oid == "subjectAltName" }
      uris = san ? san.value.split(", ").filter_map { |name| name.delete_prefix("URI:") if name.start_with?("URI:") } : []
      uris.size == 1 ? ID.parse(uris.first) : nil
    rescue InvalidIDError
      nil
    end

    # @return [Boolean] whether a certificate may be an X.509-SVID leaf: not a
    #   CA, and neither keyCertSign nor cRLSign
    def svid_leaf?(cert)
      constraints = cert.extensions.find { |ext| ext.oid == "basicConstraints" }
      return false if constraints&.value&.include?("CA:TRUE")

      usage = cert.extensions.find { |ext| ext.oid == "keyUsage" }&.value.to_s
      !usage.include?("Certificate Sign") && !usage.include?("CRL Sign")
    end

    # The verify callback: what go-spiffe's `x509svid.Verify` checks, on top
    # of OpenSSL's path validation against every trusted root.
    # @api private
    class Verifier
      def initialize(bundles, authorize)
        @bundles = bundles
        @authorize = authorize
      end

      # The verify callback.
      # @param preverified [Boolean] OpenSSL's verdict for this certificate
      # @param store_context [OpenSSL::X509::StoreContext]
      # @return [Boolean] whether to go on with the handshake
      def call(preverified, store_context)
        return preverified unless store_context.error_depth.zero?
        return false unless preverified

        chain = store_context.chain
        id = TLS.spiffe_id_of(chain.first)
        return reject(store_context) unless id && TLS.svid_leaf?(chain.first)

        bundle = @bundles.x509_bundle_for(id.trust_domain)
        return reject(store_context) unless bundle&.authorities_der&.include?(chain.last.to_der)

        @authorize.call(id) ? true : reject(store_context)
      rescue StandardError
        reject(store_context)
      end

      private

      def reject(store_context)
        store_context.error = OpenSSL::X509::V_ERR_APPLICATION_VERIFICATION
        false
      end
    end

    # @api private
    # `live_bundles`: where the verify callback looks bundles up at handshake
    # time. OpenSSL keeps the first context's verify callback when SNI
    # switches contexts (only the store and certificate change), so servers
    # that switch must check against the live source, not a snapshot.
    def build(source, authorize:, present:, verify:, servername_cb: nil, live_bundles: nil)
      context = OpenSSL::SSL::SSLContext.new
      context.servername_cb = servername_cb if servername_cb
      context.min_version = OpenSSL::SSL::TLS1_2_VERSION
      case present
      when OpenSSL::SSL::SSLContext
        context.cert = present.cert
        context.key = present.key
        context.extra_chain_cert = present.extra_chain_cert if present.extra_chain_cert
      when true then present_svid(context, source.x509_svid)
      end
      if verify == :none
        context.verify_mode = OpenSSL::SSL::VERIFY_NONE
      else
        raise ArgumentError, "authorize: must respond to #call (see Spiffe::Authorize)" unless authorize.respond_to?(:call)

        bundles = bundle_lookup(source)
        context.cert_store = trust_store(bundles)
        context.verify_mode = OpenSSL::SSL::VERIFY_PEER
        context.verify_mode |= OpenSSL::SSL::VERIFY_FAIL_IF_NO_PEER_CERT if verify == :require
        context.verify_hostname = false
        verifier = Verifier.new(live_bundles || bundles, authorize)
        context.verify_callback = ->(ok, store_context) { verifier.call(ok, store_context) }
      end
      context.freeze # SSLContext#freeze sets it up and returns true, not self
      context
    end

    # Contexts from an {X509SVID} are built once per SVID and arguments: they
    # are frozen, and OpenSSL 3 makes each new one cost over 100 µs.
    def cached(source, key, &build)
      return yield unless source.is_a?(X509SVID)

      source.tls_context_memo(key, &build)
    end

    # Puts an SVID's certificate, key and intermediates on a context.
    def present_svid(context, svid)
      context.cert = svid.leaf_certificate
      context.key = svid.private_key
      context.extra_chain_cert = svid.cert_chain.drop(1) if svid.cert_chain.size > 1
    end

    # A snapshot of the source's bundles, so a handshake sees one update.
    def bundle_lookup(source)
      return source.x509_bundles if source.respond_to?(:x509_bundles)

      source
    end

    def trust_store(bundles)
      store = OpenSSL::X509::Store.new
      authorities = if bundles.is_a?(BundleSet) then bundles.flat_map(&:x509_authorities)
                    elsif bundles.respond_to?(:x509_authorities) then bundles.x509_authorities
                    else own_trust_domain_authorities(bundles)
                    end
      authorities.uniq(&:to_der).each { |cert| store.add_cert(cert) }
      store
    end
    # A source that only answers `#x509_bundle_for` cannot list its bundles:
    # trust the bundle of its own SVID's trust domain.
    def own_trust_domain_authorities(source)
      unless source.respond_to?(:x509_svid) && source.respond_to?(:x509_bundle_for)
        raise ArgumentError, "a bundle source needs #x509_bundles, #x509_authorities, or #x509_svid and #x509_bundle_for"
      end

      bundle = source.x509_bundle_for(source.x509_svid.spiffe_id.trust_domain)
      raise BundleError, "no X.509 bundle for #{source.x509_svid.spiffe_id.trust_domain.name}" unless bundle

      bundle.x509_authorities
    end

    private_class_method :cached, :web_client_context, :own_trust_domain_authorities, :present_svid, :bundle_lookup, :trust_store
  end
end
