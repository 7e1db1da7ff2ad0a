# frozen_string_literal: true

require "spec_helper"

RSpec.describe Spiffe::Testing::Agent do
  let(:ruby_path) { File.realpath(RbConfig.ruby) }

  describe "attestation" do
    it "issues the identities whose selectors this process has" do
      agent = start_agent(entries: [
                            { spiffe_id: "spiffe://example.org/by-uid", selectors: ["unix:uid:#{Process.uid}"], entry_id: "1" },
                            { spiffe_id: "spiffe://example.org/by-path", selectors: ["unix:path:#{ruby_path}"], entry_id: "2" },
                            { spiffe_id: "spiffe://example.org/by-gid", selectors: ["unix:gid:#{Process.gid}"], entry_id: "3" },
                            { spiffe_id: "spiffe://example.org/someone-else", selectors: ["unix:uid:4242424"], entry_id: "4" },
                            { spiffe_id: "spiffe://example.org/both",
                              selectors: ["unix:uid:#{Process.uid}", "unix:path:/usr/bin/false"], entry_id: "5" }
                          ])
      ids = agent.client.x509_svids.map { |s| s.spiffe_id.to_s }
      expect(ids).to eq(%w[spiffe://example.org/by-uid spiffe://example.org/by-path spiffe://example.org/by-gid])
      expect(agent.peer_pids).to include(Process.pid)
    end

    it "matches user and group names and the executable's hash" do
      user = Etc.getpwuid(Process.uid).name
      sha = OpenSSL::Digest::SHA256.hexdigest(File.binread(ruby_path))
      agent = start_agent(entries: [{ spiffe_id: "spiffe://example.org/named", selectors: ["unix:user:#{user}"] },
                                    { spiffe_id: "spiffe://example.org/hashed", selectors: ["unix:sha256:#{sha}"] }])
      expect(agent.client.x509_svids.map { |s| s.spiffe_id.to_s })
        .to contain_exactly("spiffe://example.org/named", "spiffe://example.org/hashed")
    end

    it "denies callers that match no entry" do
      agent = start_agent(entries: [{ spiffe_id: "spiffe://example.org/x", selectors: ["unix:uid:4242424"] }])
      expect { agent.client.x509_svid }.to raise_error(Spiffe::NoIdentityIssuedError)
      expect { agent.client.x509_bundles }.to raise_error(Spiffe::NoIdentityIssuedError)
      token = agent.mint_jwt_svid("spiffe://example.org/x", audience: "a")
      expect(agent.client.validate_jwt_svid(token, audience: "a").spiffe_id.to_s).to eq("spiffe://example.org/x")
    end

    it "serves bundles to unauthenticated verifiers when allowed" do
      agent = start_agent(entries: [], allow_unauthenticated_verifiers: true)
      expect(agent.client.x509_bundles["example.org"]).to eq(agent.x509_bundle)
      expect { agent.client.x509_svid }.to raise_error(Spiffe::NoIdentityIssuedError)
    end

    it "rejects malformed selectors and options" do
      expect { start_agent(entries: [{ spiffe_id: "spiffe://example.org/x", selectors: ["k8s:ns:default"] }]) }
        .to raise_error(Spiffe::ConfigurationError, /invalid selector "k8s:ns:default"/)
      expect { start_agent(entries: [{ spiffe_id: "spiffe://other.org/x" }]) }
        .to raise_error(Spiffe::ConfigurationError, /trust domain example.org/)
      expect { start_agent(entries: [{ spiffe_id: "spiffe://example.org/x", bogus: 1 }]) }
        .to raise_error(ArgumentError, /unknown entry option :bogus/)
      expect { start_agent(svid_key_type: :dsa) }.to raise_error(ArgumentError, /unknown key type/)
      expect { start_agent(jwt_algorithm: "HS256") }.to raise_error(Spiffe::ConfigurationError, /jwt_algorithm/)
    end
  end

  describe "rotation" do
    it "re-issues SVIDs at half their lifetime" do
      agent = start_agent(entries: ["spiffe://example.org/w"], x509_svid_ttl: 2)
      first = agent.client.x509_svid
      expect(first.expires_at - Time.now).to be_within(3).of(2)
      sleep 1.3
      second = agent.client.x509_svid
      expect(second.cert_chain_der).not_to eq(first.cert_chain_der)
      expect(second.expires_at).to be > first.expires_at
    end

    it "rotates on demand, with per-entry TTLs" do
      agent = start_agent(entries: [{ spiffe_id: "spiffe://example.org/w", x509_svid_ttl: 600 }], rotation: false)
      client = agent.client
      before = client.x509_svid
      expect(before.expires_at - Time.now).to be_within(15).of(600)
      agent.rotate!
      expect(client.x509_svid.cert_chain_der).not_to eq(before.cert_chain_der)
    end

    it "rotates the CA, keeping the old root in the bundle for an overlap" do
      agent = start_agent(entries: ["spiffe://example.org/w"], intermediate: true)
      client = agent.client
      old = client.x509_svid
      agent.rotate_ca!
      fresh = client.x509_svid
      expect(fresh.bundle.authorities_der.size).to eq(2)
      expect(fresh.bundle.authorities_der.last).to eq(old.bundle.authorities_der.first)
      [old, fresh].each do |svid|
        expect(fresh.bundle.cert_store.verify(svid.leaf_certificate, svid.cert_chain[1..])).to be(true)
      end
      expect(old.bundle.cert_store.verify(fresh.leaf_certificate, fresh.cert_chain[1..])).to be(false)
    end

    it "rotates the JWT signing key, keeping both in the JWKS" do
      agent = start_agent(entries: ["spiffe://example.org/w"])
      client = agent.client
      old = client.jwt_svid(audience: "a")
      agent.rotate_jwt_key!
      fresh = client.jwt_svid(audience: "a")
      expect(fresh.token).not_to eq(old.token)
      expect(client.jwt_bundles["example.org"].key_ids.size).to eq(2)
      expect(JSON.parse(agent.jwks)["keys"].size).to eq(2)
      [old, fresh].each { |jwt| expect(client.validate_jwt_svid(jwt.token, audience: "a")).to eq(jwt) }
    end
  end

  describe "JWT-SVIDs" do
    it "reuses a token until half its lifetime, per audience set" do
      agent = start_agent(entries: ["spiffe://example.org/w"], jwt_svid_ttl: 4)
      client = agent.client
      first = client.jwt_svid(audience: %w[a b])
      expect(client.jwt_svid(audience: %w[b a]).token).to eq(first.token)
      expect(client.jwt_svid(audience: "c").token).not_to eq(first.token)
      sleep 2.1
      expect(client.jwt_svid(audience: %w[a b]).token).not_to eq(first.token)
    end

    %w[ES256 ES384 RS256 PS256].each do |alg|
      it "signs with #{alg} when asked" do
        agent = start_agent(entries: ["spiffe://example.org/w"], jwt_algorithm: alg)
        jwt = agent.client.jwt_svid(audience: "a")
        header = JSON.parse(Base64.urlsafe_decode64(jwt.token.split(".").first.then { |h| h + ("=" * (-h.size % 4)) }))
        expect(header).to include("alg" => alg, "typ" => "JWT")
        expect(agent.client.validate_jwt_svid(jwt.token, audience: "a").spiffe_id).to eq(jwt.spiffe_id)
      end
    end
  end

  describe "federation" do
    let(:agent) do
      start_agent(entries: [{ spiffe_id: "spiffe://example.org/w", federates_with: ["partner.org"] }],
                  federated_trust_domains: %w[partner.org unrelated.org])
    end

    it "sends federated bundles only for the domains an entry federates with" do
      ctx = agent.client.x509_context
      expect(ctx.bundles.trust_domains.map(&:name)).to eq(%w[example.org partner.org])
      expect(ctx.bundles["partner.org"]).to eq(agent.x509_bundle("partner.org"))
      expect(agent.client.jwt_bundles.trust_domains.map(&:name)).to eq(%w[example.org partner.org unrelated.org])
    end

    it "validates tokens from a federated domain and mints foreign SVIDs" do
      token = agent.mint_jwt_svid("spiffe://partner.org/api", audience: "w")
      expect(agent.client.validate_jwt_svid(token, audience: "w").spiffe_id.to_s).to eq("spiffe://partner.org/api")
      foreign = agent.mint_x509_svid("spiffe://partner.org/api")
      expect(foreign.bundle.cert_store.verify(foreign.leaf_certificate)).to be(true)
      expect(agent.x509_bundle.cert_store.verify(foreign.leaf_certificate)).to be(false)
    end
  end

  describe "lifecycle and faults" do
    it "stops and restarts on the same socket with the same identities" do
      agent = start_agent(entries: ["spiffe://example.org/w"])
      client = agent.client
      before = client.x509_svid
      agent.stop
      expect(agent).not_to be_running
      expect(File.exist?(agent.socket_path)).to be(false)
      expect { client.x509_svid }.to raise_error(Spiffe::SocketNotFoundError)
      agent.restart
      expect(agent).to be_running
      expect(client.x509_svid).to eq(before)
    end

    it "cuts connections and keeps serving" do
      agent = start_agent(entries: ["spiffe://example.org/w"])
      client = agent.client
      client.x509_svid
      agent.drop_connections!
      expect(client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/w")
      expect(agent.peer_pids.count(Process.pid)).to be >= 2
    end

    it "adds and removes entries at run time" do
      agent = start_agent(entries: [])
      expect { agent.client.x509_svid }.to raise_error(Spiffe::NoIdentityIssuedError)
      id = agent.add_entry("spiffe://example.org/late", hint: "late", selectors: ["unix:uid:#{Process.uid}"])
      expect(agent.client.x509_svid.hint).to eq("late")
      expect(agent.remove_entry(id)).to eq(1)
      expect { agent.client.x509_svid }.to raise_error(Spiffe::NoIdentityIssuedError)
    end

    it "stops in the block form and then refuses use" do
      agent = described_class.start(entries: ["spiffe://example.org/w"]) { |a| a }
      expect(agent).not_to be_running
      expect { agent.rotate! }.to raise_error(Spiffe::ClosedError)
      expect(File.exist?(File.dirname(agent.socket_path))).to be(false)
    end
  end
end
