# frozen_string_literal: true

require "sinatra/base"
require "spiffe/rack"

# A Sinatra API whose callers authenticate with JWT-SVIDs.
class BillingApp < Sinatra::Base
  # One bundle source for the process: it follows JWT key rotation by itself.
  BUNDLES = Spiffe.workload_api_client.bundle_source

  use Spiffe::Rack::JWTAuth, bundles: BUNDLES, audience: "billing",
                             authorize: Spiffe::Authorize.member_of("example.org")

  get "/invoices" do
    content_type :text
    "invoices for #{env['spiffe.id']}\n"
  end
end
