# frozen_string_literal: true

require "spec_helper"

# The reason this gem exists: SPIRE attests the process that opens the
# socket. Shelling out hands the identity question to another executable.
RSpec.describe "attestation of the calling process" do
  let(:ruby_path) { File.realpath(RbConfig.ruby) }

  it "gives Ruby its identity and a child started through sh none" do
    agent = start_agent(entries: [{ spiffe_id: "spiffe://example.org/ruby-app", selectors: ["unix:path:#{ruby_path}"] }])
    expect(agent.client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/ruby-app")

    child = py_spiffe("whoami", agent.socket_path, via_shell: true)
    expect(child["message"]).to include("no identity issued")
    child_pid = agent.peer_pids.last
    expect(child_pid).not_to eq(Process.pid)
  end

  it "attests the child as the child: another executable gets its own identity" do
    python = File.realpath(`#{ENV.fetch('PYTHON', 'python3')} -c 'import sys; print(sys.executable)'`.strip)
    agent = start_agent(entries: [
                          { spiffe_id: "spiffe://example.org/ruby-app", selectors: ["unix:path:#{ruby_path}"] },
                          { spiffe_id: "spiffe://example.org/python-tool", selectors: ["unix:path:#{python}"] }
                        ])
    expect(agent.client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/ruby-app")
    expect(py_spiffe("whoami", agent.socket_path, via_shell: true)["spiffe_id"])
      .to eq("spiffe://example.org/python-tool")
  end

  it "attests a forked Ruby child by its own uid", if: Process.uid.zero? do
    agent = start_agent(entries: [{ spiffe_id: "spiffe://example.org/root-only", selectors: ["unix:uid:0"] },
                                  { spiffe_id: "spiffe://example.org/nobody", selectors: ["unix:uid:65534"] }])
    File.chmod(0o755, File.dirname(agent.socket_path))
    expect(agent.client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/root-only")
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      Process::Sys.setuid(65_534)
      writer.write(Spiffe.workload_api_client(socket_path: agent.socket_path).x509_svid.spiffe_id.to_s)
      exit!(0)
    end
    writer.close
    got = reader.read
    Process.wait(pid)
    expect(got).to eq("spiffe://example.org/nobody")
  end
end
