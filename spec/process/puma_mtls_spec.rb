# frozen_string_literal: true

require "spec_helper"
require "net/http"
require "socket"

# examples/puma-mtls: a real Puma serving HTTPS that requires client
# X.509-SVIDs (Spiffe::Puma.ssl_bind) and authorizes them in Rack
# (Spiffe::Rack::MTLSAuth), across rotation, in single and cluster mode.
RSpec.describe "Puma HTTPS requiring client SVIDs (examples/puma-mtls)" do
  let(:example_dir) { File.expand_path("../../examples/puma-mtls", __dir__) }
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/web", selectors: ["unix:uid:#{Process.uid}"] }],
                federated_trust_domains: ["partner.org"])
  end
  let(:web) { Spiffe::Authorize.id("spiffe://example.org/web") }
  # A client identity with trust in example.org, whatever its own trust domain.
  let(:client_identity) { Struct.new(:x509_svid, :bundle) { def x509_bundle_for(_td) = bundle } }

  def start_puma(workers:)
    port = free_port
    env = { "SPIFFE_ENDPOINT_SOCKET" => agent.address, "PORT" => port.to_s, "WORKERS" => workers.to_s,
            "ALLOWED_IDS" => "spiffe://example.org/caller,spiffe://partner.org/caller",
            "RUBYLIB" => File.expand_path("../../lib", __dir__) }
    @log = Tempfile.new("puma")
    @pid = spawn(env, "puma", "-C", File.join(example_dir, "puma.rb"), out: @log.path, err: @log.path)
    port
  end

  after do
    if @pid
      Process.kill("TERM", @pid)
      Process.wait(@pid)
    end
  end

  # GET / as `svid`; returns [status, body, server certificate fingerprint].
  def get(port, svid, trust: agent.x509_bundle)
    http = Net::HTTP.new("127.0.0.1", port)
    Spiffe::TLS.configure_net_http(http, client_identity.new(svid, trust), authorize: web)
    http.open_timeout = http.read_timeout = 5
    http.start do |h|
      response = h.get("/")
      [response.code.to_i, response.body, OpenSSL::Digest::SHA256.hexdigest(h.peer_cert.to_der)]
    end
  end

  def refused?(port, svid)
    get(port, svid)
    false
  rescue OpenSSL::SSL::SSLError, Errno::ECONNRESET, EOFError
    true
  end

  def wait_until_serving(port, caller)
    eventually(30) do
      raise "puma exited" if Process.waitpid(@pid, Process::WNOHANG)

      (get(port, caller) rescue nil)&.first == 200 # rubocop:disable Style/RescueModifier
    end
  rescue RuntimeError
    puts File.read(@log.path)
    @pid = nil if $!.message == "puma exited" # rubocop:disable Style/SpecialGlobalVars
    raise
  end

  it "serves authorized callers, refuses the others, and presents rotated certificates without a restart" do
    port = start_puma(workers: 0)
    caller = agent.mint_x509_svid("spiffe://example.org/caller")
    wait_until_serving(port, caller)

    status, body, presented = get(port, caller)
    expect([status, body]).to eq([200, "hello spiffe://example.org/caller from pid #{@pid}\n"])
    expect(presented).to eq(OpenSSL::Digest::SHA256.hexdigest(agent.client.x509_svid.leaf_certificate.to_der))

    expect(get(port, agent.mint_x509_svid("spiffe://example.org/intruder")).first(2))
      .to eq([403, "spiffe://example.org/intruder is not authorized\n"])
    expect(refused?(port, agent.mint_x509_svid("spiffe://partner.org/caller"))).to be(true), "foreign trust domain"
    expired = agent.mint_x509_svid("spiffe://example.org/caller", ttl: 1)
    sleep 0.1 until expired.expired?
    expect(refused?(port, expired)).to be(true), "expired client certificate"

    no_cert = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), OpenSSL::SSL::SSLContext.new)
    expect { no_cert.connect && no_cert.sysread(1) }.to raise_error(OpenSSL::SSL::SSLError)
    no_cert.close

    agent.rotate!
    eventually(10) { get(port, caller)[2] != presented }
    status, _, after = get(port, caller)
    expect(status).to eq(200)
    expect(after).to eq(OpenSSL::Digest::SHA256.hexdigest(agent.client.x509_svid.leaf_certificate.to_der))
  end

  it "rotates in every worker of a cluster, and trusts a rotated CA" do
    port = start_puma(workers: 2)
    caller = agent.mint_x509_svid("spiffe://example.org/caller")
    wait_until_serving(port, caller)
    before = get(port, caller)[2]

    agent.rotate_ca!
    fresh_caller = agent.mint_x509_svid("spiffe://example.org/caller") # signed by the new CA
    seen = {}
    eventually(15) do
      begin
        status, body, presented = get(port, fresh_caller, trust: agent.x509_bundle)
        seen[body[/pid (\d+)/, 1]] = presented if status == 200 && presented != before
      rescue OpenSSL::SSL::SSLError, Errno::ECONNRESET, EOFError
        nil # a worker that has not seen the new CA yet
      end
      seen.size >= 2
    end
    expect(seen.keys).not_to include(@pid.to_s)
  end
end
