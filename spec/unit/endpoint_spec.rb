# frozen_string_literal: true

require "spec_helper"

RSpec.describe "choosing the Workload API endpoint" do
  around do |example|
    saved = ENV.delete("SPIFFE_ENDPOINT_SOCKET")
    example.run
  ensure
    saved ? ENV["SPIFFE_ENDPOINT_SOCKET"] = saved : ENV.delete("SPIFFE_ENDPOINT_SOCKET")
  end

  it "takes socket_path: as a plain path or an address" do
    expect(Spiffe.workload_api_client(socket_path: "/run/a.sock").endpoint).to eq("unix:///run/a.sock")
    expect(Spiffe.workload_api_client(socket_path: "unix:///run/b.sock").endpoint).to eq("unix:///run/b.sock")
    expect(Spiffe.workload_api_client(socket_path: "unix:/run/c.sock").endpoint).to eq("unix:///run/c.sock")
    expect(Spiffe.workload_api_client(socket_path: "tcp://127.0.0.1:8081").endpoint).to eq("tcp://127.0.0.1:8081")
  end

  it "falls back to SPIFFE_ENDPOINT_SOCKET, then SPIRE's default" do
    expect(Spiffe.workload_api_client.endpoint).to eq("unix:///tmp/spire-agent/public/api.sock")
    ENV["SPIFFE_ENDPOINT_SOCKET"] = "unix:///run/env.sock"
    expect(Spiffe.workload_api_client.endpoint).to eq("unix:///run/env.sock")
    expect(Spiffe.workload_api_client(socket_path: "/run/explicit.sock").endpoint).to eq("unix:///run/explicit.sock")
  end

  it "explains a bad SPIFFE_ENDPOINT_SOCKET" do
    ENV["SPIFFE_ENDPOINT_SOCKET"] = "/run/env.sock"
    expect { Spiffe.workload_api_client }.to raise_error(
      Spiffe::ConfigurationError,
      'SPIFFE_ENDPOINT_SOCKET: workload endpoint socket URI must have a "tcp" or "unix" scheme ' \
      '(got "/run/env.sock"; did you mean "unix:///run/env.sock"?)'
    )
  end

  {
    "unix:foo" => "unix socket URI must not be opaque",
    "unix://" => "unix socket URI must include a path",
    "unix:///a?x=1" => "unix socket URI must not include query values",
    "unix:///a#f" => "unix socket URI must not include a fragment",
    "unix://user@/a" => "unix socket URI must not include user info",
    "unix://host/a" => "unix socket URI must not include an authority",
    "tcp://localhost:1" => "tcp socket URI host component must be an IP:port",
    "tcp://127.0.0.1" => "tcp socket URI host component must include a port",
    "tcp://127.0.0.1:1/p" => "tcp socket URI must not include a path",
    "http://127.0.0.1:1" => 'must have a "tcp" or "unix" scheme'
  }.each do |address, message|
    it "rejects #{address} (#{message})" do
      expect { Spiffe.workload_api_client(socket_path: address) }
        .to raise_error(Spiffe::ConfigurationError, /#{Regexp.escape(message)}/)
    end
  end

  it "rejects a bad timeout" do
    expect { Spiffe.workload_api_client(timeout: 0) }.to raise_error(Spiffe::ConfigurationError, /positive/)
    expect { Spiffe.workload_api_client(timeout: "5") }.to raise_error(Spiffe::ConfigurationError, /number/)
  end
end
