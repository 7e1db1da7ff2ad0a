# frozen_string_literal: true

require "spiffe/rack"

module Spiffe
  module Rack
    # Authenticates `Authorization: Bearer <JWT-SVID>` requests offline
    # against JWT bundles (go-spiffe's `jwtsvid.ParseAndValidate` rules: `kid`,
    # signature, expiry, audience, the subject's trust domain bundle), then
    # authorizes the caller's SPIFFE ID. On success `env["spiffe.id"]` holds
    # the {Spiffe::ID} and `env["spiffe.jwt_svid"]` the {Spiffe::JWTSVID}.
    #
    # Failures follow RFC 6750: 401 with `WWW-Authenticate: Bearer
    # realm=..., error="invalid_token"` for a missing or invalid token, 403
    # with `error="insufficient_scope"` for an ID the authorizer refuses.
    # Tokens are never logged nor echoed back.
    #
    # @example config.ru (Sinatra, Roda, Hanami...)
    #   bundles = Spiffe.workload_api_client.bundle_source
    #   use Spiffe::Rack::JWTAuth, bundles: bundles, audience: "billing",
    #                              authorize: Spiffe::Authorize.member_of("example.org")
    # @example Rails: config/initializers/spiffe.rb
    #   SPIFFE_BUNDLES = Spiffe.workload_api_client.bundle_source
    #   Rails.application.config.middleware.use Spiffe::Rack::JWTAuth,
    #     bundles: SPIFFE_BUNDLES, audience: "billing", authorize: Spiffe::Authorize.member_of("example.org")
    class JWTAuth
      include Middleware

      # @param app [#call]
      # @param options [Hash] the keywords below (Rack 2's `use` passes them as a Hash)
      # @option options [#jwt_bundle_for] :bundles where JWT authorities come from:
      #   a {BundleSource} or {JWTSource} (following rotation), a {JWTBundleSet}, a {Bundle}
      # @option options [String, Array<String>] :audience required: the token must be for one of these
      # @option options [#call] :authorize which callers (default {Authorize.any})
      # @option options [String] :realm for `WWW-Authenticate` (default "spiffe")
      def initialize(app, options = {}, **keywords)
        options = options.merge(keywords)
        @app = app
        @bundles = options[:bundles] || raise(ArgumentError, "bundles: is required (a Spiffe::BundleSource or JWTSource)")
        raise ArgumentError, "bundles: must respond to #jwt_bundle_for" unless @bundles.respond_to?(:jwt_bundle_for)

        @audience = Array(options[:audience]).map(&:to_s)
        raise ArgumentError, "audience: is required (what this service calls itself in tokens)" if @audience.empty? || @audience.any?(&:empty?)

        @authorize = options.fetch(:authorize, Authorize.any)
        raise ArgumentError, "authorize: must respond to #call (see Spiffe::Authorize)" unless @authorize.respond_to?(:call)

        @realm = options.fetch(:realm, "spiffe").to_s.gsub(/[^\x20-\x7E]|["\\]/, "")
      end

      # @param env [Hash] the Rack environment
      # @return [Array(Integer, Hash, #each)] the app's response, or 401/403
      def call(env)
        token = bearer_token(env)
        return unauthorized(nil, "a JWT-SVID bearer token is required") unless token

        svid = JWTSVID.parse_and_validate(token, @bundles, audience: @audience)
        unless @authorize.call(svid.spiffe_id)
          return deny(403, challenge("insufficient_scope", "not authorized"), "#{svid.spiffe_id} is not authorized")
        end

        env[ENV_ID] = svid.spiffe_id
        env["spiffe.jwt_svid"] = svid
        @app.call(env)
      rescue JWTError => e
        unauthorized("invalid_token", e.message)
      end

      private

      def bearer_token(env)
        scheme, token = env["HTTP_AUTHORIZATION"].to_s.split(" ", 2)
        token = token&.strip
        token if scheme&.casecmp?("Bearer") && token && !token.empty?
      end

      def unauthorized(error, message)
        deny(401, challenge(error, message), message)
      end

      def challenge(error, description)
        return %(Bearer realm="#{@realm}") unless error

        # Printable ASCII without quotes: messages may carry claim values from the token.
        %(Bearer realm="#{@realm}", error="#{error}", error_description="#{description.gsub(/[^\x20-\x7E]|["\\]/, '')}")
      end
    end
  end
end
