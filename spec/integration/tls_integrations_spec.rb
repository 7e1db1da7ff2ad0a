# frozen_string_literal: true

require "spec_helper"
require "net/http"
require "webrick"
require "webrick/https"
require "socket"
require "spiffe/faraday"

RSpec.describe "SPIFFE mTLS with Net::HTTP, Faraday, WEBrick and SSLServer" do
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/web", hint: "web", entry_id: "a" },
                          { spiffe_id: "spiffe://example.org/caller", hint: "caller", entry_id: "b" }],
                federated_trust_domains: ["partner.org"], rotation: false)
  end
  let(:server_source) { agent.client.x509_source(hint: "web", backoff: fast_backoff) }
  let(:client_source) { agent.client.x509_source(hint: "caller", backoff: fast_backoff) }
  let(:allow_caller) { Spiffe::Authorize.id("spiffe://example.org/caller") }
  let(:allow_web) { Spiffe::Authorize.id("spiffe://example.org/web") }

  def fingerprint(cert)
    OpenSSL::Digest::SHA256.hexdigest(cert.to_der)
  end

  # A WEBrick HTTPS server answering with the caller's SPIFFE ID and the
  # fingerprint of the certificate it presented on that connection.
  def webrick(source, authorize:)
    server = WEBrick::HTTPServer.new(Port: 0, BindAddress: "127.0.0.1", Logger: WEBrick::Log.new(File::NULL),
                                     AccessLog: [], **Spiffe::TLS.webrick_options(source, authorize: authorize))
    server.mount_proc("/") do |request, response|
      response.body = "#{Spiffe::TLS.spiffe_id_of(request.client_cert)} #{fingerprint(request.server_cert)}"
    end
    thread = Thread.new { server.start }
    (@servers ||= []) << [server, thread]
    server.config[:Port]
  end

  after do
    @servers&.each do |server, thread|
      server.shutdown
      thread.join(2)
    end
  end

  # A refused handshake surfaces as an SSL error or a reset, depending on
  # which side gives up first.
  def expect_refused(&block)
    refusals = [OpenSSL::SSL::SSLError, Errno::ECONNRESET, EOFError, Faraday::SSLError, Faraday::ConnectionFailed]
    expect(&block).to raise_error { |e| expect(refusals).to include(e.class) }
  end

  # GET / with Net::HTTP; returns [caller ID, server certificate fingerprint].
  def net_http_get(port, source, authorize:)
    http = Net::HTTP.new("localhost", port)
    Spiffe::TLS.configure_net_http(http, source, authorize: authorize)
    http.open_timeout = http.read_timeout = 5
    http.start { |h| h.get("/").body.split }
  end

  # GET / with Faraday's :spiffe adapter; returns what {#net_http_get} does.
  def faraday_get(port, source, authorize:)
    conn = Faraday.new("https://localhost:#{port}", request: { timeout: 5, open_timeout: 5 }) do |f|
      f.adapter :spiffe, source: source, authorize: authorize
    end
    conn.get("/").body.split
  end

  { "Net::HTTP" => :net_http_get, "Faraday" => :faraday_get }.each do |client_name, getter|
    context "with #{client_name}" do
      define_method(:http_get) { |*args, **kw| send(getter, *args, **kw) }
      # Faraday wraps the OpenSSL error, keeping its message.
      let(:ssl_error) { client_name == "Faraday" ? Faraday::SSLError : OpenSSL::SSL::SSLError }

    it "serves an authorized SPIFFE client" do
      port = webrick(server_source, authorize: allow_caller)
      caller, presented = http_get(port, client_source, authorize: allow_web)
      expect(caller).to eq("spiffe://example.org/caller")
      expect(presented).to eq(fingerprint(server_source.x509_svid.leaf_certificate))
    end

    it "rejects an unauthorized client, and a client refuses an unauthorized server" do
      port = webrick(server_source, authorize: Spiffe::Authorize.id("spiffe://example.org/someone-else"))
      expect_refused { http_get(port, client_source, authorize: allow_web) }
      port = webrick(server_source, authorize: allow_caller)
      expect { http_get(port, client_source, authorize: Spiffe::Authorize.id("spiffe://example.org/db")) }
        .to raise_error(ssl_error, /certificate verify failed/)
    end

    it "refuses a server from a foreign trust domain and an expired client certificate" do
      foreign = agent.mint_x509_svid("spiffe://partner.org/web")
      port = webrick(foreign, authorize: nil)
      expect { http_get(port, client_source, authorize: Spiffe::Authorize.any) }
        .to raise_error(ssl_error, /certificate verify failed/)

      expired = agent.mint_x509_svid("spiffe://example.org/caller", ttl: 1)
      sleep 0.1 until expired.expired?
      port = webrick(server_source, authorize: Spiffe::Authorize.any)
      expect_refused { http_get(port, expired, authorize: allow_web) }
    end

    it "presents the rotated certificate to new connections while the server keeps running" do
      port = webrick(server_source, authorize: allow_caller)
      _, before = http_get(port, client_source, authorize: allow_web)
      agent.rotate!
      server_source.wait_until_updated(timeout: 5)
      client_source.wait_until_updated(timeout: 5)
      caller, after = http_get(port, client_source, authorize: allow_web)
      expect(caller).to eq("spiffe://example.org/caller")
      expect(after).not_to eq(before)
      expect(after).to eq(fingerprint(server_source.x509_svid.leaf_certificate))
    end
    end
  end

  it "rotates for clients without SNI through Spiffe::TLS::Server" do
    tcp = TCPServer.new("127.0.0.1", 0)
    server = Spiffe::TLS::Server.new(tcp, server_source, authorize: allow_caller)
    accepted = Thread.new do
      Array.new(2) do
        ssl = server.accept
        id = Spiffe::TLS.spiffe_id_of(ssl.peer_cert).to_s
        ssl.close
        id
      end
    end
    connect = lambda do
      ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", tcp.addr[1]), client_source.mtls_client_context(authorize: allow_web))
      ssl.connect # no hostname: no SNI
      cert = ssl.peer_cert
      ssl.close
      cert
    end
    first = connect.call
    agent.rotate!
    server_source.wait_until_updated(timeout: 5)
    client_source.wait_until_updated(timeout: 5)
    second = connect.call
    expect(second.to_der).not_to eq(first.to_der)
    expect(accepted.value).to eq(["spiffe://example.org/caller"] * 2)
  ensure
    server&.close
  end

  it "refuses a Faraday :spiffe adapter without a source or an authorizer" do
    expect { Faraday.new("https://localhost") { |f| f.adapter :spiffe, authorize: allow_web }.get("/") }
      .to raise_error(ArgumentError, /needs source:/)
    expect { Faraday.new("https://localhost") { |f| f.adapter :spiffe, source: client_source }.get("/") }
      .to raise_error(ArgumentError, /needs authorize:/)
  end

  it "builds a source's contexts once per update" do
    first = client_source.mtls_client_context(authorize: allow_web)
    expect(client_source.mtls_client_context(authorize: allow_web)).to equal(first)
    expect(Spiffe::TLS.mtls_client_context(client_source, authorize: allow_web)).to equal(first)
    expect(Spiffe::TLS.client_context(client_source, authorize: allow_web)).to equal(first)
    agent.rotate!
    client_source.wait_until_updated(timeout: 5)
    expect(client_source.mtls_client_context(authorize: allow_web)).not_to equal(first)
  end
end
