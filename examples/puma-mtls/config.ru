# frozen_string_literal: true

require "spiffe/rack"

# Only these callers; everyone else gets 403 (no client SVID: the TLS layer refuses).
allowed = Spiffe::Authorize.one_of(*ENV.fetch("ALLOWED_IDS", "spiffe://example.org/caller").split(","))
use Spiffe::Rack::MTLSAuth, authorize: allowed

run lambda { |env|
  [200, { "content-type" => "text/plain" }, ["hello #{env['spiffe.id']} from pid #{Process.pid}\n"]]
}
