# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"

RSpec.describe "the spiffe command" do
  let(:exe) { File.expand_path("../../exe/spiffe", __dir__) }
  let(:lib) { File.expand_path("../../lib", __dir__) }
  let(:dir) { Dir.mktmpdir }
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/cli", selectors: ["unix:uid:#{Process.uid}"], hint: "cli",
                            federates_with: ["partner.org"] }],
                federated_trust_domains: ["partner.org"])
  end
  let(:env) { { "SPIFFE_ENDPOINT_SOCKET" => agent.address } }

  after { FileUtils.rm_rf(dir) }

  # Runs the command to completion: [stdout, stderr, exit status].
  def spiffe(*args, env: self.env, stdin: "")
    out, err, status = Open3.capture3(env, RbConfig.ruby, "-I#{lib}", exe, *args, stdin_data: stdin)
    [out, err, status.exitstatus]
  end

  # Starts a long-running command; yields [stdout, stderr, pid] and stops it with TERM.
  def spiffe_running(*args)
    Open3.popen3(env, RbConfig.ruby, "-I#{lib}", exe, *args) do |stdin, stdout, stderr, thread|
      stdin.close
      yield stdout, stderr, thread.pid
      Process.kill("TERM", thread.pid)
      expect(thread.value.exitstatus).to eq(0)
    end
  end

  it "documents every command and its exit statuses" do
    out, _, status = spiffe("--help")
    expect(status).to eq(0)
    expect(out).to include("x509", "jwt", "bundles", "validate", "watch", "agent", "demo", "69  the Workload API is unavailable")
    %w[x509 jwt bundles validate watch agent demo].each do |command|
      out, _, status = spiffe(command, "--help")
      expect([status, out]).to match([0, /\AUsage: spiffe #{command}/]), command
    end
  end

  it "prints the X.509-SVID without its key, as text or JSON" do
    out, _, status = spiffe("x509")
    expect(status).to eq(0)
    expect(out).to start_with("spiffe://example.org/cli\n  hint        cli\n")
    expect(out).to include("trust domains example.org, partner.org")
    expect(out).not_to include("PRIVATE")
    json = JSON.parse(spiffe("x509", "--json").first)
    expect(json.first).to include("spiffe_id" => "spiffe://example.org/cli", "hint" => "cli")
    expect(json.first["chain"].first["serial"]).to eq(agent.client.x509_svid.leaf_certificate.serial.to_s(16))
  end

  it "writes svid.pem, svid_key.pem (0600) and bundle.pem atomically" do
    _, err, status = spiffe("x509", "--write", dir, "--federated")
    expect(status).to eq(0), err
    expect(Dir.children(dir).sort).to eq(%w[bundle.pem svid.pem svid_key.pem])
    expect(File.stat(File.join(dir, "svid_key.pem")).mode & 0o777).to eq(0o600)
    svid = Spiffe::X509SVID.load(File.join(dir, "svid.pem"), File.join(dir, "svid_key.pem"))
    expect(svid.spiffe_id.to_s).to eq("spiffe://example.org/cli")
    bundle = File.read(File.join(dir, "bundle.pem"))
    expect(bundle.scan("BEGIN CERTIFICATE").size).to eq(2) # own and federated roots
    expect(Spiffe::X509SVID.verify(svid.cert_chain, Spiffe::X509Bundle.parse("example.org", bundle)).first).to eq(svid.spiffe_id)
  end

  it "fetches JWT-SVIDs to stdout, a 0600 file or JSON, and validates them" do
    token, _, status = spiffe("jwt", "--audience", "api", "--audience", "other")
    expect(status).to eq(0)
    token = token.strip
    out, _, status = spiffe("validate", token, "--audience", "api")
    expect([status, out]).to match([0, %r{\Avalid: spiffe://example.org/cli audience=api,other expires=}])
    out, _, status = spiffe("validate", "-", "--audience", "api", "--json", stdin: token)
    expect([status, JSON.parse(out)["sub"]]).to eq([0, "spiffe://example.org/cli"])

    file = File.join(dir, "token")
    out, _, status = spiffe("jwt", "--audience", "api", "--write", file)
    expect(status).to eq(0)
    expect(out).to match(%r{\Aspiffe://example.org/cli audience=api expires=\S+ -> #{file}\n\z})
    expect(File.stat(file).mode & 0o777).to eq(0o600)
    expect(File.read(file).count(".")).to eq(2)
    expect(JSON.parse(spiffe("jwt", "-a", "api", "--json").first)).to include("spiffe_id" => "spiffe://example.org/cli", "token" => /\A[\w-]+\.[\w-]+\.[\w-]+\z/)

    _, err, status = spiffe("validate", token, "--audience", "wrong")
    expect(status).to eq(65)
    expect(err).to match(/InvalidArgumentError: .*audience/)
  end

  it "prints and writes bundles, X.509 and JWT" do
    out, _, status = spiffe("bundles")
    expect(status).to eq(0)
    expect(out.lines.map { |l| l.split(":").first }).to eq(%w[example.org partner.org])
    out, = spiffe("bundles", "--jwt")
    expect(out).to include("example.org: 1 JWT key: #{agent.client.jwt_bundles['example.org'].key_ids.first}")
    _, _, status = spiffe("bundles", "--jwt", "--write", dir)
    expect(status).to eq(0)
    expect(Dir.children(dir).sort).to eq(%w[example.org.jwks partner.org.jwks])
    expect(Spiffe::JWTBundle.load("example.org", File.join(dir, "example.org.jwks"))).to eq(agent.client.jwt_bundles["example.org"])
    json = JSON.parse(spiffe("bundles", "--json").first)
    expect(Spiffe::X509Bundle.parse("example.org", json["example.org"])).to eq(agent.x509_bundle)
  end

  it "exits with a status that says what went wrong" do
    missing = { "SPIFFE_ENDPOINT_SOCKET" => "unix://#{dir}/nothing.sock" }
    _, err, status = spiffe("x509", env: missing)
    expect([status, err]).to match([69, /SocketNotFoundError: .*nothing.sock/])
    other = start_agent(entries: [{ spiffe_id: "spiffe://example.org/x", selectors: ["unix:uid:4242424"] }])
    _, err, status = spiffe("x509", env: { "SPIFFE_ENDPOINT_SOCKET" => other.address })
    expect([status, err]).to match([77, /NoIdentityIssuedError: .*no registration entry matching this process/])
    _, err, status = spiffe("jwt")
    expect([status, err]).to match([64, /--audience is required/])
    _, err, status = spiffe("x509", "--bogus")
    expect([status, err]).to match([64, /invalid option: --bogus/])
    _, err, status = spiffe("x509", "--exec", "true")
    expect([status, err]).to match([64, /need --write DIR/])
    _, err, status = spiffe("x509", "--socket", "tcp://nope")
    expect([status, err]).to match([64, /ConfigurationError/])
    _, err, status = spiffe("x509", "--hint", "nope")
    expect([status, err]).to match([77, /no X.509-SVID with hint "nope"/])
  end

  it "watches rotations until TERM" do
    spiffe_running("watch") do |stdout, _stderr, _pid|
      first = stdout.gets
      expect(first).to match(%r{spiffe://example.org/cli serial=\h+ expires=})
      agent.rotate!
      second = Timeout.timeout(10) { stdout.gets }
      expect(second[/serial=\h+/]).not_to eq(first[/serial=\h+/])
    end
  end

  it "keeps files fresh as a daemon and reloads a process on rotation" do
    ran = File.join(dir, "ran")
    hups = File.join(dir, "hups")
    reloader = spawn(RbConfig.ruby, "-e", "trap('HUP') { File.write('#{hups}', 'x', mode: 'a') }; sleep")
    out_dir = File.join(dir, "certs")
    spiffe_running("x509", "--write", out_dir, "--daemon", "--exec", "echo run >> #{ran}", "--signal", "#{reloader}:HUP") do |_, stderr, _|
      expect(stderr.gets).to include("wrote #{out_dir}")
      first = File.read(File.join(out_dir, "svid.pem"))
      eventually(10) { File.exist?(ran) && File.exist?(hups) }
      agent.rotate!
      eventually(10) { File.read(File.join(out_dir, "svid.pem")) != first && File.read(ran).lines.size >= 2 && File.size(hups) >= 2 }
      svid = Spiffe::X509SVID.load(File.join(out_dir, "svid.pem"), File.join(out_dir, "svid_key.pem"))
      expect(svid.leaf_certificate.to_der).to eq(agent.client.x509_svid.leaf_certificate.to_der)
      expect(Dir.children(out_dir).sort).to eq(%w[bundle.pem svid.pem svid_key.pem])
    end
  ensure
    Process.kill("KILL", reloader) if reloader
    Process.wait(reloader) if reloader
  end

  it "runs the demo tour" do
    out, err, status = spiffe("demo", env: {})
    expect(status).to eq(0), err
    expect(out).to include("1. X.509-SVID", "2. JWT-SVID", "3. mTLS", "api answered \"hello spiffe://example.org/demo/web", "4. Rotation")
    expect(out).not_to include("PRIVATE KEY")
  end
end
