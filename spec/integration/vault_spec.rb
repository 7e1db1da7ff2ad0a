# frozen_string_literal: true

require "spec_helper"
require "spiffe/vault"

# Spiffe::Vault against a real OpenBao server: JWT-SVID login, KV v2 reads,
# and every refusal with a message that says what to fix.
RSpec.describe Spiffe::Vault do
  before(:all) { @bao = OpenBao.new(free_port) } # rubocop:disable RSpec/InstanceVariable
  after(:all) { @bao&.stop }

  let(:bao) { @bao } # rubocop:disable RSpec/InstanceVariable
  let(:agent) { start_agent(entries: [{ spiffe_id: "spiffe://example.org/app", selectors: ["unix:uid:#{Process.uid}"] }]) }
  let(:vault) { described_class.new(address: bao.address, role: "app", socket_path: agent.address) }

  before do
    bao.configure_jwt(agent.client.jwt_bundles["example.org"], role: "app", subject: "spiffe://example.org/app", audience: "vault")
    bao.put_secret("app/db", { "password" => "s3cr3t", "user" => "billing" })
  end

  it "logs in with a JWT-SVID and reads a field or the whole secret" do
    expect(vault.read("app/db", field: "password")).to eq("s3cr3t")
    token = vault.login
    expect(vault.read("app/db", token: token)).to eq("password" => "s3cr3t", "user" => "billing")
    expect(vault.inspect).not_to include(token)
  end

  it "says why Vault refused: wrong audience, another SPIFFE ID, a forbidden path, a missing secret or field" do
    wrong_audience = described_class.new(address: bao.address, role: "app", audience: "not-vault", socket_path: agent.address)
    expect { wrong_audience.login }.to raise_error(Spiffe::VaultError) { |e|
      expect(e.message).to include("refused the JWT-SVID of spiffe://example.org/app", 'aud "not-vault"', 'role "app"', "bound_audiences")
      expect(e.status).to eq(400)
    }
    bao.configure_jwt(agent.client.jwt_bundles["example.org"], role: "app", subject: "spiffe://example.org/other", audience: "vault")
    expect { vault.login }.to raise_error(Spiffe::VaultError, /refused .*sub/m)
    bao.configure_jwt(agent.client.jwt_bundles["example.org"], role: "app", subject: "spiffe://example.org/app", audience: "vault")

    expect { vault.read("other/db") }.to raise_error(Spiffe::VaultError, /role "app" may not read secret\/data\/other\/db: .*token_policies/)
    expect { vault.read("app/missing") }.to raise_error(Spiffe::VaultError, %r{no secret at secret/data/app/missing})
    expect { vault.read("app/db", field: "pin") }.to raise_error(Spiffe::VaultError, 'the secret at secret/data/app/db has no field "pin" (fields: password, user)')
  end

  it "raises the Workload API's error when this process has no identity" do
    stranger = start_agent(entries: [{ spiffe_id: "spiffe://example.org/x", selectors: ["unix:uid:4242424"] }])
    vault = described_class.new(address: bao.address, role: "app", socket_path: stranger.address)
    expect { vault.read("app/db") }.to raise_error(Spiffe::NoIdentityIssuedError)
  end

  it "says when Vault cannot be reached, and needs an address" do
    unreachable = described_class.new(address: "http://127.0.0.1:#{free_port}", role: "app", socket_path: agent.address)
    expect { unreachable.read("app/db") }.to raise_error(Spiffe::VaultError, /cannot reach Vault at http:\/\/127.0.0.1:\d+: .*refused/i) { |e|
      expect(e).to be_retriable
    }
    expect { described_class.new(role: "app", address: nil) }.to raise_error(ArgumentError, /VAULT_ADDR/)
  end
end
