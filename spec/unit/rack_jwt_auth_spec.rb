# frozen_string_literal: true

require "spec_helper"
require "rack/test"
require "rack/builder"
require "spiffe/rack"

RSpec.describe Spiffe::Rack::JWTAuth do
  include Rack::Test::Methods

  let(:agent) { start_agent(entries: ["spiffe://example.org/caller"], federated_trust_domains: ["partner.org"]) }
  let(:bundles) { agent.client.jwt_bundles }
  let(:app) do
    bundle_set = bundles
    Rack::Builder.new do
      use Spiffe::Rack::JWTAuth, bundles: bundle_set, audience: "billing",
                                 authorize: Spiffe::Authorize.one_of("spiffe://example.org/caller")
      run ->(env) { [200, { "content-type" => "text/plain" }, ["hello #{env['spiffe.id']} #{env['spiffe.jwt_svid'].audience.join(',')}"]] }
    end
  end

  def bearer(token)
    header "Authorization", "Bearer #{token}"
  end

  it "lets a valid, authorized token through with the caller's ID in env" do
    bearer agent.client.jwt_svid(audience: "billing").token
    get "/"
    expect([last_response.status, last_response.body]).to eq([200, "hello spiffe://example.org/caller billing"])
  end

  it "answers 401 with an RFC 6750 challenge for a missing, malformed or invalid token" do
    get "/"
    expect(last_response.status).to eq(401)
    expect(last_response.headers["www-authenticate"]).to eq('Bearer realm="spiffe"')

    header "Authorization", "Basic dXNlcjpwYXNz"
    get "/"
    expect(last_response.status).to eq(401)

    good = agent.client.jwt_svid(audience: "billing").token
    {
      agent.client.jwt_svid(audience: "other").token => /audience/,
      agent.mint_jwt_svid("spiffe://example.org/caller", audience: "billing", ttl: -120) => /expired/,
      "#{good[0..-5]}AAAA" => /signature|cryptographic/,
      start_agent(trust_domain: "elsewhere.org").mint_jwt_svid("spiffe://elsewhere.org/x", audience: "billing") => /no bundle found/,
      "not-a-token" => /unable to parse/
    }.each do |token, reason|
      bearer token
      get "/"
      expect(last_response.status).to eq(401), reason.inspect
      challenge = last_response.headers["www-authenticate"]
      expect(challenge).to start_with('Bearer realm="spiffe", error="invalid_token", error_description="')
      expect(challenge).to match(reason)
      expect(challenge + last_response.body).not_to include(token) unless token == "not-a-token"
    end
  end

  it "answers 403 for a valid token of an ID the authorizer refuses" do
    bearer agent.mint_jwt_svid("spiffe://example.org/intruder", audience: "billing")
    get "/"
    expect(last_response.status).to eq(403)
    expect(last_response.headers["www-authenticate"]).to include('error="insufficient_scope"')
    expect(last_response.body).to eq("spiffe://example.org/intruder is not authorized\n")
  end

  it "refuses to be built without bundles or an audience" do
    expect { described_class.new(->(_) {}, audience: "x") }.to raise_error(ArgumentError, /bundles: is required/)
    expect { described_class.new(->(_) {}, bundles: bundles) }.to raise_error(ArgumentError, /audience: is required/)
    expect { described_class.new(->(_) {}, bundles: bundles, audience: "x", authorize: "nope") }
      .to raise_error(ArgumentError, /authorize:/)
  end
end
