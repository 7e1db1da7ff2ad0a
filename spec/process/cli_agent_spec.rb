# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"

RSpec.describe "spiffe agent (command line)" do
  let(:exe) { File.expand_path("../../exe/spiffe", __dir__) }
  let(:lib) { File.expand_path("../../lib", __dir__) }
  let(:dir) { Dir.mktmpdir }

  after { FileUtils.rm_rf(dir) }

  def spiffe(*args)
    Open3.popen3(RbConfig.ruby, "-I#{lib}", exe, *args) { |*io| yield(*io) }
  end

  it "serves the entries of a YAML config until SIGTERM" do
    socket = File.join(dir, "agent.sock")
    config = File.join(dir, "agent.yaml")
    File.write(config, <<~YAML)
      trust_domain: example.org
      socket_path: #{socket}
      x509_svid_ttl: 600
      entries:
        - spiffe_id: spiffe://example.org/cli
          selectors: ["unix:uid:#{Process.uid}"]
          hint: cli
        - spiffe_id: spiffe://example.org/not-me
          selectors: ["unix:uid:4242424"]
    YAML
    spiffe("agent", "--config", config) do |stdin, stdout, stderr, thread|
      stdin.close
      expect(stdout.gets).to eq("SPIFFE_ENDPOINT_SOCKET=unix://#{socket}\n")
      svids = Spiffe.workload_api_client(socket_path: socket).x509_svids
      expect(svids.map { |s| [s.spiffe_id.to_s, s.hint] }).to eq([["spiffe://example.org/cli", "cli"]])
      expect(svids.first.expires_at - Time.now).to be_within(15).of(600)
      Process.kill("TERM", thread.pid)
      expect(thread.value.exitstatus).to eq(0)
      expect(stderr.read).to include("serving trust domain example.org (2 entries)", "TERM received")
    end
    expect(File.exist?(socket)).to be(false)
  end

  it "takes JSON and --socket" do
    socket = File.join(dir, "other.sock")
    config = File.join(dir, "agent.json")
    File.write(config, JSON.generate(trust_domain: "example.org", entries: [{ spiffe_id: "spiffe://example.org/j" }]))
    spiffe("agent", "--config", config, "--socket", socket) do |stdin, stdout, _stderr, thread|
      stdin.close
      expect(stdout.gets).to eq("SPIFFE_ENDPOINT_SOCKET=unix://#{socket}\n")
      Process.kill("INT", thread.pid)
      expect(thread.value.exitstatus).to eq(0)
    end
  end

  it "explains bad configurations and usage with distinct exit codes" do
    bad = File.join(dir, "bad.yaml")
    File.write(bad, "trust_domain: example.org\nentries:\n  - spiffe_id: spiffe://example.org/x\n    selectors: [\"nope\"]\n")
    _, err, status = Open3.capture3(RbConfig.ruby, "-I#{lib}", exe, "agent", "--config", bad)
    expect(status.exitstatus).to eq(64) # a configuration error
    expect(err).to include('invalid selector "nope"')
    _, err, status = Open3.capture3(RbConfig.ruby, "-I#{lib}", exe, "agent")
    expect(status.exitstatus).to eq(64)
    expect(err).to include("--config FILE is required")
    _, err, status = Open3.capture3(RbConfig.ruby, "-I#{lib}", exe, "agent", "--config", File.join(dir, "missing.yaml"))
    expect([status.exitstatus, err]).to match([1, /cannot read/])
    out, _, status = Open3.capture3(RbConfig.ruby, "-I#{lib}", exe, "agent", "--help")
    expect([status.exitstatus, out]).to match([0, /federated_trust_domains/])
    _, err, status = Open3.capture3(RbConfig.ruby, "-I#{lib}", exe, "frobnicate")
    expect([status.exitstatus, err]).to match([64, /unknown command "frobnicate"/])
  end
end
