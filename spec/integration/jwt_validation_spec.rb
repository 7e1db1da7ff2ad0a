# frozen_string_literal: true

require "spec_helper"

RSpec.describe "offline JWT-SVID validation" do
  %w[ES256 ES384 RS256 PS256].each do |alg|
    it "validates #{alg} tokens against the JWT bundle" do
      agent = start_agent(entries: ["spiffe://example.org/w"], jwt_algorithm: alg)
      client = agent.client
      token = client.jwt_svid(audience: %w[api other]).token
      svid = Spiffe::JWTSVID.parse_and_validate(token, client.jwt_bundles, audience: "api")
      expect(svid.spiffe_id.to_s).to eq("spiffe://example.org/w")
      expect(svid.audience).to eq(%w[api other])
      expect(Spiffe::JWTSVID.parse_and_validate(token, client.jwt_source, audience: %w[x other]).token).to eq(token)
    end
  end

  let(:agent) do
    start_agent(entries: ["spiffe://example.org/w"], federated_trust_domains: ["partner.org"])
  end
  let(:bundles) { agent.client.jwt_bundles }

  def b64d(text)
    Base64.urlsafe_decode64(text + ("=" * (-text.size % 4)))
  end

  def forge(header, claims)
    encode = ->(h) { Base64.urlsafe_encode64(JSON.generate(h), padding: false) }
    "#{encode.(header)}.#{encode.(claims)}.#{Base64.urlsafe_encode64('sig', padding: false)}"
  end

  it "rejects each kind of bad token with a typed error" do
    good = agent.client.jwt_svid(audience: "api").token
    kid = JSON.parse(b64d(good.split(".").first))["kid"]
    claims = { sub: "spiffe://example.org/w", aud: ["api"], exp: Time.now.to_i + 60 }
    cases = {
      forge({ alg: "none", kid: kid }, claims) => [Spiffe::JWTMalformedError, "jwtsvid: unable to parse JWT token"],
      forge({ alg: "HS256", kid: kid }, claims) => [Spiffe::JWTMalformedError, "jwtsvid: unable to parse JWT token"],
      forge({ alg: "ES256" }, claims) => [Spiffe::JWTMalformedError, "jwtsvid: token header missing key id"],
      forge({ alg: "ES256", kid: kid }, claims.merge(sub: "x")) => [Spiffe::JWTMalformedError, /invalid subject claim/],
      forge({ alg: "ES256", kid: "unknown" }, claims) =>
        [Spiffe::JWTAuthorityNotFoundError, 'jwtsvid: no JWT authority "unknown" found for trust domain "example.org"'],
      forge({ alg: "ES256", kid: kid }, claims.merge(sub: "spiffe://elsewhere.org/w")) =>
        [Spiffe::JWTAuthorityNotFoundError, 'jwtsvid: no bundle found for trust domain "elsewhere.org"'],
      forge({ alg: "ES256", kid: kid }, claims) => [Spiffe::JWTSignatureError, /error in cryptographic primitive/],
      "a.b" => [Spiffe::JWTMalformedError, "jwtsvid: unable to parse JWT token"]
    }
    cases.each do |token, (klass, message)|
      expect { Spiffe::JWTSVID.parse_and_validate(token, bundles, audience: "api") }.to raise_error(klass, message)
    end
    expect { Spiffe::JWTSVID.parse_and_validate(good, bundles, audience: "elsewhere") }
      .to raise_error(Spiffe::JWTAudienceError, 'jwtsvid: expected audience in ["elsewhere"] (audience=["api"])')
  end

  it "rejects expired and tampered tokens" do
    token = agent.client.jwt_svid(audience: "api").token
    header, payload, signature = token.split(".")
    claims = JSON.parse(b64d(payload))
    tampered = [header, Base64.urlsafe_encode64(JSON.generate(claims.merge("sub" => "spiffe://example.org/admin")), padding: false), signature].join(".")
    expect { Spiffe::JWTSVID.parse_and_validate(tampered, bundles, audience: "api") }.to raise_error(Spiffe::JWTSignatureError)
    past = JSON.generate(claims.merge("exp" => Time.now.to_i - 120))
    signed_past = [header, Base64.urlsafe_encode64(past, padding: false), signature].join(".")
    expect { Spiffe::JWTSVID.parse_insecure(signed_past, audience: "api") }.to raise_error(Spiffe::JWTExpiredError, "jwtsvid: token has expired")
  end

  it "validates tokens of a federated trust domain with its bundle" do
    token = agent.mint_jwt_svid("spiffe://partner.org/api", audience: "w")
    expect(Spiffe::JWTSVID.parse_and_validate(token, bundles, audience: "w").spiffe_id.to_s).to eq("spiffe://partner.org/api")
    only_own = Spiffe::JWTBundleSet.new([bundles["example.org"]])
    expect { Spiffe::JWTSVID.parse_and_validate(token, only_own, audience: "w") }.to raise_error(Spiffe::JWTAuthorityNotFoundError)
  end
end
