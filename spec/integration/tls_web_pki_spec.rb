# frozen_string_literal: true

require "spec_helper"

RSpec.describe "SPIFFE mixed with web PKI" do
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/server", hint: "server", entry_id: "a" },
                          { spiffe_id: "spiffe://example.org/client", hint: "client", entry_id: "b" }],
                federated_trust_domains: ["partner.org"])
  end
  let(:client) { agent.client }
  let(:client_svid) { client.x509_svid(hint: "client") }
  let(:pki) { TLSHelpers::WebPKI.new }
  let(:web_cert) { pki.issue("api.example.test") }
  let(:only_client) { Spiffe::Authorize.id("spiffe://example.org/client") }

  def web_server(authorize: only_client, bundles: client_svid.bundle)
    cert, key = web_cert
    serve(Spiffe::TLS.mtls_web_server_context(cert, key, bundles, authorize: authorize))
  end

  it "connects a SPIFFE client to a web-PKI server that authorizes it by SPIFFE ID" do
    port, server = web_server
    context = Spiffe::TLS.mtls_web_client_context(client_svid, cert_store: pki.store)
    _, line = connect(port, context, hostname: "api.example.test")
    expect(line).to eq("hello spiffe://example.org/client\n")
    expect(server.value.to_s).to eq("spiffe://example.org/client")
    expect(context).to be_frozen
  end

  it "checks the server's host name and web roots on the client side" do
    port, server = web_server
    context = Spiffe::TLS.mtls_web_client_context(client_svid, cert_store: pki.store)
    expect { connect(port, context, hostname: "evil.example.test") }
      .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed \(hostname mismatch\)/i)
    server.join

    port, server = web_server
    other_roots = TLSHelpers::WebPKI.new.store
    expect { connect(port, Spiffe::TLS.mtls_web_client_context(client_svid, cert_store: other_roots), hostname: "api.example.test") }
      .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    server.join

    # An SVID is not a web certificate: a web client does not accept a SPIFFE server.
    port, server = serve(Spiffe::TLS.tls_server_context(client.x509_svid(hint: "server")))
    expect { connect(port, Spiffe::TLS.mtls_web_client_context(client_svid, cert_store: pki.store), hostname: "localhost") }
      .to raise_error(OpenSSL::SSL::SSLError, /certificate verify failed/)
    server.join
  end

  it "rejects clients that are unauthorized, foreign, without a certificate, or with a web certificate" do
    cases = {
      "unauthorized" => client.x509_svid(hint: "server"),
      "foreign trust domain" => agent.mint_x509_svid("spiffe://partner.org/client")
    }
    cases.each_value do |svid|
      port, server = web_server
      expect { connect(port, Spiffe::TLS.mtls_web_client_context(svid, cert_store: pki.store), hostname: "api.example.test") }
        .to raise_error(OpenSSL::SSL::SSLError)
      expect(server.value).to be_a(OpenSSL::SSL::SSLError)
    end

    port, server = web_server
    no_cert = OpenSSL::SSL::SSLContext.new.tap { |c| c.cert_store = pki.store }
    expect { connect(port, no_cert, hostname: "api.example.test") }.to raise_error(OpenSSL::SSL::SSLError)
    expect(server.value).to be_a(OpenSSL::SSL::SSLError)

    port, server = web_server
    web_client_cert, web_client_key = pki.issue("client.example.test")
    web_client = OpenSSL::SSL::SSLContext.new.tap do |c|
      c.cert = web_client_cert
      c.key = web_client_key
    end
    expect { connect(port, web_client) }.to raise_error(OpenSSL::SSL::SSLError)
    expect(server.value).to be_a(OpenSSL::SSL::SSLError)
  end

  it "follows CA rotation of a live bundle source for clients that send SNI" do
    source = client.x509_source(hint: "client")
    cert, key = web_cert
    context = Spiffe::TLS.mtls_web_server_context(cert, key, source, authorize: only_client)
    agent.rotate_ca!
    source.wait_until_updated(timeout: 5)
    agent.rotate_ca! # twice: the first root has left the bundle now
    source.wait_until_updated(timeout: 5)
    fresh = agent.client.x509_svid(hint: "client")
    port, server = serve(context)
    _, line = connect(port, Spiffe::TLS.mtls_web_client_context(fresh, cert_store: pki.store), hostname: "api.example.test")
    expect(line).to eq("hello spiffe://example.org/client\n")
    server.join
  ensure
    source&.close
  end

  it "caches an X509Source's web client context per update" do
    source = client.x509_source(hint: "client")
    store = pki.store
    first = source.mtls_web_client_context(cert_store: store)
    expect(source.mtls_web_client_context(cert_store: store)).to equal(first)
    expect(Spiffe::TLS.mtls_web_client_context(source, cert_store: store)).to equal(first)
    agent.rotate!
    source.wait_until_updated(timeout: 5)
    expect(source.mtls_web_client_context(cert_store: store)).not_to equal(first)
  ensure
    source&.close
  end

  it "offers client_context and server_context that pick mTLS or TLS from what they are given" do
    server_svid = client.x509_svid(hint: "server")
    port, server = serve(Spiffe::TLS.server_context(server_svid, authorize: only_client))
    seen, = connect(port, Spiffe::TLS.client_context(client_svid, authorize: Spiffe::Authorize.member_of("example.org")))
    expect(seen).to eq("spiffe://example.org/server")
    expect(server.value.to_s).to eq("spiffe://example.org/client")

    port, server = serve(Spiffe::TLS.server_context(server_svid))
    seen, = connect(port, Spiffe::TLS.client_context(client.x509_bundles, authorize: Spiffe::Authorize.any))
    expect(seen).to eq("spiffe://example.org/server")
    expect(server.value).to be_nil # no client certificate asked for
  end
end
