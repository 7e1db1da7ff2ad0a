# frozen_string_literal: true

require "spec_helper"
require "pp"

RSpec.describe "values returned by the client" do
  let(:agent) { start_agent(entries: [{ spiffe_id: "spiffe://example.org/app", hint: "h" }]) }
  let(:client) { agent.client }

  it "never shows the private key in inspect, to_s or pp" do
    svid = client.x509_svid
    key_pem = svid.private_key.private_to_pem
    key_b64 = [svid.private_key_der].pack("m0")
    shown = [svid.inspect, svid.to_s, PP.pp(svid, +""), client.x509_context.inspect]
    shown.each do |text|
      expect(text).to include("[REDACTED]").or include("svids=")
      expect(text).not_to include(key_pem[40, 40])
      expect(text).not_to include(key_b64[10, 30])
    end
  end

  it "never shows the token in inspect, to_s or pp" do
    jwt = client.jwt_svid(audience: "a")
    [jwt.inspect, jwt.to_s, PP.pp(jwt, +"")].each do |text|
      expect(text).to include("token=[REDACTED]")
      expect(text).not_to include(jwt.token.split(".")[1])
    end
  end

  it "freezes values and compares them by content" do
    a = client.x509_svid
    b = client.x509_svid
    expect(a).to be_frozen
    expect(a.cert_chain).to be_frozen
    expect(a).to eq(b)
    expect(a.hash).to eq(b.hash)
    expect(a.private_key).to equal(a.private_key)
    jwt = client.jwt_svid(audience: "a")
    expect(jwt).to be_frozen
    expect(jwt.claims).to be_frozen
    expect(jwt.claims["aud"]).to be_frozen
    expect { jwt.claims["sub"] << "x" }.to raise_error(FrozenError)
    expect(client.jwt_svid(audience: "a")).to eq(jwt)
    expect(client.x509_bundles).to eq(client.x509_bundles)
    expect(client.jwt_bundles).to eq(client.jwt_bundles)
  end

  it "reports expiry" do
    svid = client.x509_svid
    expect(svid).not_to be_expired
    expect(svid.expired?(svid.expires_at + 1)).to be(true)
  end
end
