# frozen_string_literal: true

require "spiffe"

module Spiffe
  # Rack middleware that authenticates callers by SPIFFE ID:
  # {Rack::JWTAuth} (JWT-SVID bearer tokens) and {Rack::MTLSAuth} (client
  # X.509-SVIDs). Both put the caller's {Spiffe::ID} in `env["spiffe.id"]`.
  # Rack itself is not a dependency of this gem.
  module Rack
    # The env key holding the authenticated caller's {Spiffe::ID}.
    ENV_ID = "spiffe.id"

    # Shared by the middlewares.
    # @api private
    module Middleware
      private

      def deny(status, challenge, message)
        [status, { "content-type" => "text/plain", "www-authenticate" => challenge }, ["#{message}\n"]]
      end
    end
  end
end

require "spiffe/rack/jwt_auth"
require "spiffe/rack/mtls_auth"
