# frozen_string_literal: true

require "spiffe/rack"

# One shared bundle source for the whole process (all Puma threads); it
# follows JWT key rotation and, in forked workers, reconnects by itself.
SPIFFE_BUNDLES = Spiffe.workload_api_client.bundle_source

Rails.application.config.middleware.use Spiffe::Rack::JWTAuth,
                                        bundles: SPIFFE_BUNDLES, audience: "billing",
                                        authorize: Spiffe::Authorize.member_of("example.org")
