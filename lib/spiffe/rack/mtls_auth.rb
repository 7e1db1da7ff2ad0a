# frozen_string_literal: true

require "spiffe/rack"

module Spiffe
  module Rack
    # Authorizes the caller of an mTLS connection by the SPIFFE ID in its
    # client certificate, which the server (Puma: `env["puma.peercert"]`;
    # nginx and others: `env["SSL_CLIENT_CERT"]` as PEM) has already
    # verified against the trust bundle. Puts the caller's {Spiffe::ID} in
    # `env["spiffe.id"]`; answers 401 when there is no client SVID and 403
    # when the ID is not authorized.
    #
    # With `bundle_source:`, the leaf must also be signed by a root in the
    # bundle of its own trust domain, so a federated trust domain's CA
    # cannot vouch for IDs of another (Puma exposes only the leaf, so this
    # needs SVIDs issued directly by a bundle root, SPIRE's default).
    #
    # @example config.ru
    #   use Spiffe::Rack::MTLSAuth, authorize: Spiffe::Authorize.member_of("example.org")
    class MTLSAuth
      include Middleware

      # @param app [#call]
      # @param options [Hash] `authorize:` (required), `bundle_source:` (Rack 2's
      #   `use` passes keywords as a Hash, so both forms are accepted)
      # @option options [#call] :authorize given a {Spiffe::ID}; see {Spiffe::Authorize}
      # @option options [#x509_bundle_for, nil] :bundle_source
      def initialize(app, options = {}, **keywords)
        options = options.merge(keywords)
        authorize = options.fetch(:authorize, nil)
        bundle_source = options.fetch(:bundle_source, nil)
        raise ArgumentError, "authorize: must respond to #call (see Spiffe::Authorize)" unless authorize.respond_to?(:call)

        @app = app
        @authorize = authorize
        @bundle_source = bundle_source
      end

      # @param env [Hash] the Rack environment
      # @return [Array(Integer, Hash, #each)] the app's response, or 401/403
      def call(env)
        cert = peer_certificate(env)
        return deny(401, "a client X.509-SVID is required") unless cert

        id = TLS.spiffe_id_of(cert)
        return deny(401, "the client certificate is not an X.509-SVID") unless id && TLS.svid_leaf?(cert)
        return deny(401, "the client SVID is not issued by its trust domain") unless issued_by_own_trust_domain?(cert, id)
        return deny(403, "#{id} is not authorized") unless @authorize.call(id)

        env[ENV_ID] = id
        @app.call(env)
      end

      private

      def peer_certificate(env)
        cert = env["puma.peercert"] || env["SSL_CLIENT_CERT"]
        case cert
        when OpenSSL::X509::Certificate then cert
        when String then cert.empty? ? nil : OpenSSL::X509::Certificate.new(cert)
        end
      rescue OpenSSL::X509::CertificateError
        nil
      end

      def issued_by_own_trust_domain?(cert, id)
        return true unless @bundle_source

        bundle = @bundle_source.x509_bundle_for(id.trust_domain)
        return false unless bundle

        bundle.x509_authorities.any? { |root| root.subject == cert.issuer && cert.verify(root.public_key) }
      end

      def deny(status, message)
        super(status, 'TLS realm="spiffe"', message)
      end
    end
  end
end
