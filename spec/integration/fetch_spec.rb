# frozen_string_literal: true

require "spec_helper"

RSpec.describe "fetching from the Workload API" do
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/myapp", hint: "internal" },
                          { spiffe_id: "spiffe://example.org/other", hint: "external" }],
                intermediate: true)
  end
  let(:client) { Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 5) }

  def decode_segment(segment)
    JSON.parse(Base64.urlsafe_decode64(segment + ("=" * (-segment.size % 4))))
  end

  it "fetches the default X.509-SVID as OpenSSL objects", :gc_stress do
    svid = client.x509_svid
    expect(svid.spiffe_id.to_s).to eq("spiffe://example.org/myapp")
    expect(svid.hint).to eq("internal")
    expect(svid.leaf_certificate).to be_a(OpenSSL::X509::Certificate)
    expect(svid.leaf_certificate.not_after).to be > Time.now + 3000
    expect(svid.expires_at).to eq(svid.leaf_certificate.not_after)
    expect(svid.cert_chain.size).to eq(2)
    expect(svid.cert_chain.last.extensions.map(&:oid)).to include("basicConstraints")
    expect(svid.private_key).to be_a(OpenSSL::PKey::EC)
    expect(svid.leaf_certificate.check_private_key(svid.private_key)).to be(true)
    uri = svid.leaf_certificate.extensions.find { |e| e.oid == "subjectAltName" }.value
    expect(uri).to eq("URI:spiffe://example.org/myapp")
  end

  it "verifies the chain against the SVID's bundle" do
    svid = client.x509_svid
    expect(svid.bundle).to eq(agent.x509_bundle)
    store = svid.bundle.cert_store
    expect(store.verify(svid.leaf_certificate, svid.cert_chain[1..])).to be(true)
  end

  it "selects an SVID by hint and lists all of them" do
    expect(client.x509_svid(hint: "external").spiffe_id.to_s).to eq("spiffe://example.org/other")
    expect(client.x509_svids.map { |s| s.spiffe_id.to_s })
      .to eq(%w[spiffe://example.org/myapp spiffe://example.org/other])
    expect { client.x509_svid(hint: "nope") }.to raise_error(Spiffe::SVIDError, /no X.509-SVID with hint "nope"/)
  end

  it "drops a later SVID whose hint repeats an earlier one" do
    dup = start_agent(entries: [{ spiffe_id: "spiffe://example.org/a", hint: "same" },
                                { spiffe_id: "spiffe://example.org/b", hint: "same" },
                                "spiffe://example.org/c"])
    ids = dup.client.x509_svids.map { |s| s.spiffe_id.to_s }
    expect(ids).to eq(%w[spiffe://example.org/a spiffe://example.org/c])
  end

  it "orders SVIDs by registration entry ID, the first being the default" do
    ordered = start_agent(entries: [{ spiffe_id: "spiffe://example.org/z", entry_id: "b" },
                                    { spiffe_id: "spiffe://example.org/y", entry_id: "a" }])
    expect(ordered.client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/y")
  end

  it "returns X.509 bundles and a consistent context", :gc_stress do
    bundles = client.x509_bundles
    expect(bundles.trust_domains.map(&:name)).to eq(["example.org"])
    expect(bundles["example.org"]).to eq(agent.x509_bundle)
    expect(bundles["spiffe://example.org"]).to eq(agent.x509_bundle)
    ctx = client.x509_context
    expect(ctx.default_svid.spiffe_id.to_s).to eq("spiffe://example.org/myapp")
    expect(ctx.bundles.x509_bundle_for("example.org").x509_authorities.first.subject.to_s).to eq("/C=US/O=SPIFFE")
  end

  %i[ec_p384 rsa_2048 ed25519].each do |type|
    it "handles #{type} SVID keys" do
      typed = start_agent(entries: ["spiffe://example.org/k"], svid_key_type: type)
      svid = typed.client.x509_svid
      expect(svid.leaf_certificate.check_private_key(svid.private_key)).to be(true)
    end
  end

  it "fetches a JWT-SVID with SPIRE's claims" do
    jwt = client.jwt_svid(audience: "api.example.com")
    expect(jwt.spiffe_id.to_s).to eq("spiffe://example.org/myapp")
    expect(jwt.audience).to eq(["api.example.com"])
    expect(jwt.expires_at).to be_within(10).of(Time.now + 300)
    expect(jwt.claims.keys).to contain_exactly("sub", "aud", "exp", "iat")
    header = decode_segment(jwt.token.split(".").first)
    expect(header).to include("alg" => "ES256", "typ" => "JWT")
    expect(header["kid"]).to match(/\A[A-Za-z0-9]{32}\z/)
  end

  it "fetches JWT-SVIDs for several audiences and by SPIFFE ID" do
    jwt = client.jwt_svid(audience: %w[a b], spiffe_id: "spiffe://example.org/other")
    expect(jwt.spiffe_id.to_s).to eq("spiffe://example.org/other")
    expect(jwt.audience).to eq(%w[a b])
    expect(client.jwt_svids(audience: "a").map { |j| j.spiffe_id.to_s })
      .to eq(%w[spiffe://example.org/myapp spiffe://example.org/other])
    expect(client.jwt_svid(audience: "a", hint: "external").spiffe_id.to_s).to eq("spiffe://example.org/other")
    expect { client.jwt_svid(audience: "a", spiffe_id: "spiffe://example.org/nobody") }
      .to raise_error(Spiffe::NoIdentityIssuedError)
  end

  it "rejects an empty audience before calling the agent" do
    expect { client.jwt_svid(audience: []) }.to raise_error(ArgumentError, /audience must be/)
    expect { client.jwt_svid(audience: "") }.to raise_error(ArgumentError, /audience must be/)
    expect { client.jwt_svid(audience: "a", spiffe_id: "nope") }.to raise_error(Spiffe::InvalidIDError)
  end

  it "fetches JWT bundles whose keys verify the agent's tokens", :gc_stress do
    jwt = client.jwt_svid(audience: "a")
    bundle = client.jwt_bundles["example.org"]
    kid = decode_segment(jwt.token.split(".").first)["kid"]
    key = bundle.find_jwt_authority(kid)
    expect(key).to be_a(OpenSSL::PKey::EC)
    input, signature = jwt.token.rpartition(".").values_at(0, 2)
    raw = Base64.urlsafe_decode64(signature + ("=" * (-signature.size % 4)))
    der = OpenSSL::ASN1::Sequence([OpenSSL::ASN1::Integer(OpenSSL::BN.new(raw[0, 32], 2)),
                                   OpenSSL::ASN1::Integer(OpenSSL::BN.new(raw[32, 32], 2))]).to_der
    expect(key.verify("SHA256", der, input)).to be(true)
    expect(JSON.parse(bundle.jwks)["keys"].first).not_to have_key("use")
  end

  it "validates JWT-SVIDs through the agent" do
    jwt = client.jwt_svid(audience: "api")
    validated = client.validate_jwt_svid(jwt.token, audience: "api")
    expect(validated.spiffe_id).to eq(jwt.spiffe_id)
    expect { client.validate_jwt_svid(jwt.token, audience: "other") }.to raise_error(
      Spiffe::InvalidArgumentError, /expected audience in \["other"\] \(audience=\["api"\]\)/
    ) { |e| expect(e.code).to eq(:invalid_argument) }
    expect { client.validate_jwt_svid("a.b.c", audience: "api") }
      .to raise_error(Spiffe::InvalidArgumentError, /unable to parse JWT token/)
  end

  it "shuts down idempotently and then raises ClosedError" do
    client.x509_svid
    client.shutdown
    client.shutdown
    expect(client).to be_closed
    expect { client.x509_svid }.to raise_error(Spiffe::ClosedError, /shut down/)
    expect { client.jwt_svid(audience: "a") }.to raise_error(Spiffe::ClosedError)
  end

  it "finds the agent through SPIFFE_ENDPOINT_SOCKET" do
    ENV["SPIFFE_ENDPOINT_SOCKET"] = agent.address
    expect(Spiffe.workload_api_client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/myapp")
  ensure
    ENV.delete("SPIFFE_ENDPOINT_SOCKET")
  end
end
