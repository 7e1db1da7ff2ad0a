# frozen_string_literal: true

require "spec_helper"
require "spiffe/rack"

RSpec.describe Spiffe::Rack::MTLSAuth do
  let(:agent) { start_agent(entries: ["spiffe://example.org/w"], federated_trust_domains: ["partner.org"]) }
  let(:app) { ->(env) { [200, {}, [env["spiffe.id"].to_s]] } }
  let(:caller) { agent.mint_x509_svid("spiffe://example.org/caller").leaf_certificate }

  def middleware(**options)
    described_class.new(app, authorize: Spiffe::Authorize.member_of("example.org"), **options)
  end

  it "passes an authorized caller on with its ID in env['spiffe.id'], from Puma or a PEM header" do
    expect(middleware.call("puma.peercert" => caller)).to eq([200, {}, ["spiffe://example.org/caller"]])
    expect(middleware.call("SSL_CLIENT_CERT" => caller.to_pem)[2]).to eq(["spiffe://example.org/caller"])
  end

  it "answers 401 without a client SVID and 403 for an unauthorized ID" do
    status, headers, body = middleware.call({})
    expect([status, body]).to eq([401, ["a client X.509-SVID is required\n"]])
    expect(headers["www-authenticate"]).to eq('TLS realm="spiffe"')
    expect(middleware.call("SSL_CLIENT_CERT" => "garbage").first).to eq(401)
    web_cert, = TLSHelpers::WebPKI.new.issue("client.example.test")
    expect(middleware.call("puma.peercert" => web_cert).values_at(0, 2)).to eq([401, ["the client certificate is not an X.509-SVID\n"]])
    partner = agent.mint_x509_svid("spiffe://partner.org/caller").leaf_certificate
    expect(middleware.call("puma.peercert" => partner).values_at(0, 2)).to eq([403, ["spiffe://partner.org/caller is not authorized\n"]])
  end

  it "with a bundle source, refuses an ID vouched for by another trust domain's CA" do
    bundles = agent.client.x509_bundles
    own = agent.mint_x509_svid("spiffe://example.org/caller").leaf_certificate
    expect(middleware(bundle_source: bundles).call("puma.peercert" => own).first).to eq(200)

    # partner.org's CA signs a certificate that claims an example.org ID.
    partner_ca = agent.mint_x509_svid("spiffe://partner.org/x")
    forged = OpenSSL::X509::Certificate.new(own.to_der)
    forged.issuer = partner_ca.cert_chain.last.issuer
    forged.sign(OpenSSL::PKey::EC.generate("prime256v1"), "SHA256")
    status, _, body = middleware(bundle_source: bundles).call("puma.peercert" => forged)
    expect([status, body]).to eq([401, ["the client SVID is not issued by its trust domain\n"]])
  end

  it "requires an authorizer" do
    expect { described_class.new(app) }.to raise_error(ArgumentError, /authorize:/)
    expect { described_class.new(app, { authorize: Spiffe::Authorize.any }) }.not_to raise_error
  end
end
