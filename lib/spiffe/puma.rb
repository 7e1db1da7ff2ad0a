# frozen_string_literal: true

require "puma"
require "puma/minissl"
require "spiffe"

module Spiffe
  # HTTPS with client SVIDs in Puma (MiniSSL; tested with Puma 5.6), following rotation without a
  # restart. `require "spiffe/puma"` in `config/puma.rb`; Puma is not a
  # dependency of this gem.
  #
  # MiniSSL has no verify callback: it checks client chains against a CA
  # file, and the application authorizes the SPIFFE ID (see
  # {Spiffe::Rack::MTLSAuth}, which reads `env["puma.peercert"]`). The CA file
  # holds the bundles of the trust domains you accept (by default only the
  # source's own), rewritten atomically on every update.
  #
  # Rotation: on each update of the source, the listener's MiniSSL context is
  # rebuilt from the new SVID and bundle, so new connections get the new
  # certificate while open ones finish on the old. In cluster mode each worker
  # does this for its own copy of the listener (the source follows forks).
  #
  # @example config/puma.rb
  #   require "spiffe/puma"
  #   source = Spiffe.workload_api_client.x509_source
  #   Spiffe::Puma.ssl_bind(self, "0.0.0.0", 8443, source: source)
  module Puma
    # MiniSSL's Server keeps its engine context here (Puma 5, tested; a Puma without it gets a clear error).
    ENGINE_CONTEXT = :@eng_ctx
    private_constant :ENGINE_CONTEXT

    module_function

    # Binds an SSL listener that presents the source's SVID and requires a
    # client certificate chained to the accepted trust domains' bundles.
    # @param dsl [Puma::DSL] `self` in `config/puma.rb`
    # @param host [String]
    # @param port [Integer]
    # @param source [X509Source]
    # @param trust_domains [Array<String, TrustDomain>, nil] whose client SVIDs
    #   the TLS layer accepts; the source's own trust domain by default
    # @param ca_path [String, nil] where to keep the CA file (0644); a file in Dir.tmpdir by default
    # @return [String] the CA file's path
    def ssl_bind(dsl, host, port, source:, trust_domains: nil, ca_path: nil)
      listener = Listener.new(port, source, trust_domains, ca_path)
      dsl.ssl_bind(host, port, listener.bind_options)
      listener.follow_rotation
      listener.ca_path
    end

    # One SSL listener and the source it follows.
    # @api private
    class Listener
      # @return [String] the CA file Puma verifies client chains with
      attr_reader :ca_path

      def initialize(port, source, trust_domains, ca_path)
        @port = Integer(port)
        @source = source
        @trust_domains = trust_domains&.map { |td| TrustDomain.parse(td) }
        @ca_path = ca_path || File.join(Dir.tmpdir, "spiffe-puma-#{Process.pid}-#{@port}-bundle.pem")
      end

      # Options for Puma's `ssl_bind`, from the source's current SVID.
      def bind_options
        cert_pem, key_pem = material
        { cert_pem: cert_pem, key_pem: key_pem, ca: @ca_path, verify_mode: "force_peer", no_tlsv1_1: true }
      end

      # Rebuilds this listener's MiniSSL context on every update of the source.
      def follow_rotation
        @source.on_update { swap }
      end

      private

      # The SVID's chain and key as PEM; writes the CA file first.
      def material
        svid = @source.x509_svid
        write_ca_file(svid)
        [svid.cert_chain.map(&:to_pem).join, svid.private_key.private_to_pem]
      end

      def write_ca_file(svid)
        bundles = @source.x509_bundles
        domains = @trust_domains || [svid.spiffe_id.trust_domain]
        pem = domains.filter_map { |td| bundles[td] }.map(&:marshal).join
        raise BundleError, "no X.509 bundle for #{domains.map(&:name).join(', ')} to trust client SVIDs with" if pem.empty?

        Files.write(@ca_path, pem, error: BundleError)
      end

      def swap
        context = ::Puma::MiniSSL::Context.new
        context.cert_pem, context.key_pem = material
        context.ca = @ca_path
        context.verify_mode = ::Puma::MiniSSL::VERIFY_PEER | ::Puma::MiniSSL::VERIFY_FAIL_IF_NO_PEER_CERT
        context.no_tlsv1_1 = true
        engine = ::Puma::MiniSSL::SSLContext.new(context)
        servers.each do |server|
          server.instance_variable_set(:@ctx, context)
          server.instance_variable_set(ENGINE_CONTEXT, engine)
        end
      end

      # This process's MiniSSL listeners on our port (in a worker, its copies).
      def servers
        ObjectSpace.each_object(::Puma::MiniSSL::Server).select do |server|
          unless server.instance_variable_defined?(ENGINE_CONTEXT)
            raise Error, "this Puma's MiniSSL::Server has no #{ENGINE_CONTEXT}; Spiffe::Puma was tested with Puma 5.6"
          end

          !server.closed? && server.addr[1] == @port
        end
      end
    end
    private_constant :Listener
  end
end
