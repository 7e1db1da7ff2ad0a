# frozen_string_literal: true

require "spec_helper"
require "socket"

RSpec.describe "SPIFFE mTLS with OpenSSL" do
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/server", hint: "server", entry_id: "a" },
                          { spiffe_id: "spiffe://example.org/client", hint: "client", entry_id: "b" }],
                federated_trust_domains: ["partner.org"], intermediate: true)
  end
  let(:client) { agent.client }
  let(:server_svid) { client.x509_svid(hint: "server") }
  let(:client_svid) { client.x509_svid(hint: "client") }

  it "connects two SPIFFE IDs over mTLS and authorizes both", :gc_stress do
    port, server = serve(Spiffe::TLS.mtls_server_context(server_svid, authorize: Spiffe::Authorize.id(client_svid.spiffe_id)))
    seen, line = connect(port, Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.id(server_svid.spiffe_id)))
    expect(seen).to eq("spiffe://example.org/server")
    expect(line).to eq("hello spiffe://example.org/client\n")
    expect(server.value.to_s).to eq("spiffe://example.org/client")
  end

  it "builds the seed's client.tls_context (mTLS client, own trust domain by default)" do
    port, server = serve(Spiffe::TLS.mtls_server_context(server_svid, authorize: Spiffe::Authorize.any))
    context = client.tls_context
    expect(context).to be_frozen
    seen, = connect(port, context)
    expect(seen).to eq("spiffe://example.org/server")
    expect(server.value.to_s).to eq("spiffe://example.org/server") # the default SVID is the first entry
  end

  it "rejects a server whose ID the client does not authorize" do
    port, server = serve(Spiffe::TLS.mtls_server_context(server_svid, authorize: Spiffe::Authorize.any))
    context = Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.id("spiffe://example.org/db"))
    expect { connect(port, context) }.to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    server.join
  end

  it "rejects a client the server does not authorize, or with no certificate" do
    server_context = Spiffe::TLS.mtls_server_context(server_svid, authorize: Spiffe::Authorize.one_of("spiffe://example.org/other"))
    port, server = serve(server_context)
    expect { connect(port, Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.any)) }
      .to raise_error(OpenSSL::SSL::SSLError)
    expect(server.value).to be_a(OpenSSL::SSL::SSLError)

    port, server = serve(server_context)
    expect { connect(port, Spiffe::TLS.tls_client_context(client_svid.bundle, authorize: Spiffe::Authorize.any)) }
      .to raise_error(OpenSSL::SSL::SSLError)
    expect(server.value).to be_a(OpenSSL::SSL::SSLError)
  end

  it "rejects a peer from a trust domain it has no bundle for" do
    foreign = agent.mint_x509_svid("spiffe://partner.org/api")
    port, server = serve(Spiffe::TLS.tls_server_context(foreign))
    expect { connect(port, Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.any)) }
      .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    server.join
  end

  it "accepts a federated peer only when trusted and authorized" do
    federating = start_agent(entries: [{ spiffe_id: "spiffe://example.org/c", federates_with: ["partner.org"] }],
                             federated_trust_domains: ["partner.org"])
    context = federating.client.x509_context
    expect(context.bundles.trust_domains.map(&:name)).to eq(%w[example.org partner.org])
    foreign = federating.mint_x509_svid("spiffe://partner.org/api")
    port, = serve(Spiffe::TLS.tls_server_context(foreign))
    seen, = connect(port, Spiffe::TLS.mtls_client_context(context, authorize: Spiffe::Authorize.member_of("partner.org")))
    expect(seen).to eq("spiffe://partner.org/api")
    port, server = serve(Spiffe::TLS.tls_server_context(foreign))
    expect { connect(port, Spiffe::TLS.mtls_client_context(context, authorize: Spiffe::Authorize.member_of("example.org"))) }
      .to raise_error(OpenSSL::SSL::SSLError)
    server.join
  end

  it "rejects an expired certificate" do
    short = start_agent(entries: ["spiffe://example.org/short"], x509_svid_ttl: 1, rotation: false)
    expiring = short.client.x509_svid
    sleep 1.1 until expiring.expired?
    port, server = serve(Spiffe::TLS.tls_server_context(expiring))
    expect { connect(port, Spiffe::TLS.tls_client_context(expiring.bundle, authorize: Spiffe::Authorize.any)) }
      .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    server.join
  end

  it "uses the new certificate for new connections after a rotation" do
    source = client.x509_source(hint: "server")
    before = source.x509_svid
    port, = serve(Spiffe::TLS.tls_server_context(source))
    expect(connect(port, Spiffe::TLS.tls_client_context(source, authorize: Spiffe::Authorize.any)).first).to eq("spiffe://example.org/server")
    agent.rotate!
    source.wait_until_updated(timeout: 5)
    expect(source.x509_svid).not_to eq(before)
    port, = serve(Spiffe::TLS.tls_server_context(source))
    ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), Spiffe::TLS.tls_client_context(source, authorize: Spiffe::Authorize.any))
    ssl.connect
    expect(ssl.peer_cert.to_der).to eq(source.x509_svid.leaf_certificate.to_der)
    ssl.close
  end

  it "keeps accepting new clients of a live mTLS server across CA rotations (SNI switches contexts)" do
    source = client.x509_source(hint: "server")
    context = Spiffe::TLS.mtls_server_context(source, authorize: Spiffe::Authorize.id("spiffe://example.org/client"))
    2.times do
      agent.rotate_ca!
      source.wait_until_updated(timeout: 5)
    end
    fresh = agent.client.x509_svid(hint: "client")
    port, server = serve(context)
    seen, = connect(port, Spiffe::TLS.mtls_client_context(fresh, authorize: Spiffe::Authorize.any), hostname: "server")
    expect(seen).to eq("spiffe://example.org/server")
    expect(server.value.to_s).to eq("spiffe://example.org/client")
  ensure
    source&.close
  end

  it "reuses a context per SVID and authorizer (built-in authorizers compare by value)" do
    first = Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.id("spiffe://example.org/server"))
    expect(Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.id("spiffe://example.org/server")))
      .to equal(first)
    expect(Spiffe::TLS.mtls_client_context(client_svid, authorize: Spiffe::Authorize.id("spiffe://example.org/db")))
      .not_to equal(first)
    expect(Spiffe::Authorize.one_of("spiffe://example.org/b", "spiffe://example.org/a"))
      .to eq(Spiffe::Authorize.one_of("spiffe://example.org/a", "spiffe://example.org/b"))
    expect(Spiffe::Authorize.member_of("example.org").inspect).to eq("#<Spiffe::Authorize.member_of(example.org)>")
    agent.rotate!
    rotated = agent.client.x509_svid(hint: "client")
    expect(Spiffe::TLS.mtls_client_context(rotated, authorize: Spiffe::Authorize.id("spiffe://example.org/server")))
      .not_to equal(first)
    # Per-request lambdas do not grow the cache without bound.
    100.times { Spiffe::TLS.mtls_client_context(client_svid, authorize: ->(_id) { true }) }
    expect(client_svid.instance_variable_get(:@memo)[:tls].size).to be <= 16
  end

  it "requires an authorizer where peers are verified" do
    expect { Spiffe::TLS.mtls_client_context(client_svid, authorize: nil) }.to raise_error(ArgumentError, /authorize:/)
    expect(Spiffe::Authorize.one_of("spiffe://example.org/a", "spiffe://example.org/b").call(Spiffe::ID.parse("spiffe://example.org/b"))).to be(true)
  end
end
