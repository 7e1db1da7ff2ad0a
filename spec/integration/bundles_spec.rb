# frozen_string_literal: true

require "spec_helper"
require "json"
require "tmpdir"

RSpec.describe "bundles in and out of files" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/w"], federated_trust_domains: ["partner.org"]) }
  let(:client) { agent.client }
  let(:x509) { client.x509_bundles["example.org"] }
  let(:jwt) { client.jwt_bundles["example.org"] }
  let(:dir) { Dir.mktmpdir }

  after { FileUtils.remove_entry(dir) }

  describe Spiffe::Bundle do
    it "marshals the SPIFFE bundle format and parses it back to an equal bundle" do
      bundle = Spiffe::Bundle.from(x509_bundle: x509, jwt_bundle: jwt, sequence_number: 42, refresh_hint: 300)
      doc = JSON.parse(bundle.marshal)
      expect(doc).to include("spiffe_sequence" => 42, "spiffe_refresh_hint" => 300)
      x509_keys = doc["keys"].select { |k| k["use"] == "x509-svid" }
      jwt_keys = doc["keys"].select { |k| k["use"] == "jwt-svid" }
      expect(x509_keys.map { |k| Base64.strict_decode64(k["x5c"].first) }).to eq(x509.authorities_der)
      expect(x509_keys).to all(satisfy { |k| !k.key?("kid") && k["kty"] == "EC" })
      expect(jwt_keys.map { |k| k["kid"] }).to eq(jwt.key_ids)

      parsed = Spiffe::Bundle.parse("example.org", bundle.marshal)
      expect(parsed).to eq(bundle)
      expect(parsed.x509_bundle).to eq(x509)
      expect(parsed.jwt_bundle).to eq(jwt)
      expect(parsed).to be_frozen
      expect(parsed.inspect).to include("sequence_number=42")
    end

    it "is a bundle source that verifies X.509-SVIDs and JWT-SVIDs" do
      path = File.join(dir, "example.org.json")
      Spiffe::Bundle.from(x509_bundle: x509, jwt_bundle: jwt).save(path)
      bundle = Spiffe::Bundle.load("example.org", path)

      svid = client.x509_svid
      id, = Spiffe::X509SVID.verify(svid.cert_chain, bundle)
      expect(id.to_s).to eq("spiffe://example.org/w")
      token = client.jwt_svid(audience: "api").token
      expect(Spiffe::JWTSVID.parse_and_validate(token, bundle, audience: "api").spiffe_id).to eq(id)

      foreign = Spiffe::Bundle.from(x509_bundle: agent.x509_bundle("partner.org"))
      expect { Spiffe::X509SVID.verify(svid.cert_chain, foreign) }
        .to raise_error(Spiffe::SVIDError, /no X.509 bundle for trust domain "example.org"/)
      expect { Spiffe::JWTSVID.parse_and_validate(token, foreign, audience: "api") }
        .to raise_error(Spiffe::JWTAuthorityNotFoundError)
    end

    it "ignores entries the standard says to ignore and keeps the rest" do
      doc = JSON.parse(Spiffe::Bundle.from(x509_bundle: x509, jwt_bundle: jwt).marshal)
      doc["keys"] += [
        { "kty" => "EC", "crv" => "P-256", "x" => "AA", "y" => "AA", "kid" => "k" }, # no use
        { "use" => "wit-svid", "kty" => "EC", "kid" => "w" },                       # unknown use
        { "use" => "x509-svid", "kty" => "EC" },                                    # no x5c
        { "use" => "jwt-svid", "kty" => "oct", "kid" => "s", "k" => "c2VjcmV0" }    # unknown (symmetric) key type
      ]
      bundle = Spiffe::Bundle.parse("example.org", JSON.generate(doc))
      expect(bundle.x509_bundle).to eq(x509)
      expect(bundle.jwt_bundle.key_ids).to eq(jwt.key_ids)
      expect(bundle.sequence_number).to be_nil
    end

    it "rejects malformed documents with a BundleError that names the entry" do
      {
        "not json" => /spiffebundle: unable to parse JWKS/,
        "{}" => "spiffebundle: no keys found",
        '{"keys":[],"spiffe_refresh_hint":"soon"}' => 'spiffebundle: spiffe_refresh_hint must be an integer, got "soon"',
        '{"keys":[{"use":"x509-svid","x5c":["AAAA"]}]}' =>
          "spiffebundle: x509-svid entry 0: x5c does not hold a DER certificate",
        '{"keys":[{"use":"jwt-svid","kty":"EC","crv":"P-256"}]}' =>
          "spiffebundle: error adding authority 0 of JWKS: keyID cannot be empty"
      }.each do |document, message|
        expect { Spiffe::Bundle.parse("example.org", document) }.to raise_error(Spiffe::BundleError, message)
      end
      expect { Spiffe::Bundle.load("example.org", File.join(dir, "missing.json")) }
        .to raise_error(Spiffe::BundleError, %r{cannot read SPIFFE bundle .*/missing.json: No such file})
      expect { Spiffe::Bundle.parse("Bad TD", "{}") }.to raise_error(Spiffe::InvalidIDError)
      expect { Spiffe::Bundle.from(x509_bundle: x509, jwt_bundle: Spiffe::JWTBundle.parse("partner.org", agent.jwks("partner.org"))) }
        .to raise_error(ArgumentError, /one trust domain/)
    end

    it "treats an empty key list as a revoked trust domain" do
      bundle = Spiffe::Bundle.parse("example.org", '{"keys":[]}')
      expect(bundle).to be_empty
      expect { Spiffe::X509SVID.verify(client.x509_svid.cert_chain, bundle) }
        .to raise_error(Spiffe::SVIDError, /could not verify leaf certificate/)
    end
  end

  describe Spiffe::X509Bundle do
    it "saves PEM atomically and loads PEM or DER" do
      pem_path = File.join(dir, "bundle.pem")
      x509.save(pem_path)
      expect(File.read(pem_path)).to start_with("-----BEGIN CERTIFICATE-----")
      expect(Spiffe::X509Bundle.load("example.org", pem_path)).to eq(x509)
      expect(Spiffe::X509Bundle.parse("example.org", x509.authorities_der.join)).to eq(x509)
      expect(Dir.children(dir)).to eq(["bundle.pem"])
    end

    it "rejects what is not a certificate" do
      expect { Spiffe::X509Bundle.parse("example.org", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") }
        .to raise_error(Spiffe::BundleError, /x509bundle: cannot parse certificate/)
      expect { Spiffe::X509Bundle.parse("example.org", "\x30\x03ab") }
        .to raise_error(Spiffe::BundleError, /cannot parse DER certificates/)
      expect { x509.save(File.join(dir, "no", "such", "dir.pem")) }
        .to raise_error(Spiffe::BundleError, /cannot write .*dir.pem/)
      expect(Dir.children(dir)).to be_empty
    end
  end

  describe Spiffe::JWTBundle do
    it "marshals a JWKS and loads it back" do
      path = File.join(dir, "jwks.json")
      jwt.save(path)
      loaded = Spiffe::JWTBundle.load("example.org", path)
      expect(loaded).to eq(jwt)
      expect(JSON.parse(loaded.marshal)["keys"].map { |k| k["kid"] }).to eq(jwt.key_ids)
      token = client.jwt_svid(audience: "api").token
      expect(Spiffe::JWTSVID.parse_and_validate(token, loaded, audience: "api").spiffe_id.to_s)
        .to eq("spiffe://example.org/w")
    end

    it "requires a kid on every key" do
      expect { Spiffe::JWTBundle.parse("example.org", '{"keys":[{"kty":"EC"}]}') }
        .to raise_error(Spiffe::BundleError, "jwtbundle: error adding authority 0 of JWKS: keyID cannot be empty")
    end
  end
end
