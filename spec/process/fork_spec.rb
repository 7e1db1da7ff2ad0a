# frozen_string_literal: true

require "spec_helper"

RSpec.describe "fork" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/app"]) }

  it "gives the child its own connection, attested as the child's pid" do
    client = agent.client
    client.x509_svid # the parent is connected, with a runtime, before forking
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      svid = client.x509_svid
      jwt = client.jwt_svid(audience: "child")
      writer.write(JSON.generate(pid: Process.pid, id: svid.spiffe_id.to_s, sub: jwt.claims["sub"]))
      writer.close
      exit!(0)
    end
    writer.close
    result = JSON.parse(reader.read)
    _, status = Process.wait2(pid)
    expect(status).to be_success
    expect(result).to eq("pid" => pid, "id" => "spiffe://example.org/app", "sub" => "spiffe://example.org/app")
    expect(agent.peer_pids).to include(Process.pid, pid)
    # The parent is unaffected.
    expect(client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/app")
  end

  it "works in many children at once, and in a grandchild" do
    client = agent.client
    client.x509_svid
    pids = Array.new(8) do
      fork do
        ok = client.x509_svid.spiffe_id.to_s == "spiffe://example.org/app"
        grandchild = fork { exit!(client.jwt_svid(audience: "g").spiffe_id.to_s == "spiffe://example.org/app" ? 0 : 1) }
        _, status = Process.wait2(grandchild)
        exit!(ok && status.success? ? 0 : 1)
      end
    end
    statuses = pids.map { |pid| Process.wait2(pid).last }
    expect(statuses).to all(be_success)
    expect(client.x509_svid).to be_a(Spiffe::X509SVID)
  end

  it "does not let a child use the parent's agent" do
    agent.client.x509_svid
    pid = fork do
      agent.add_entry("spiffe://example.org/x")
      exit!(1)
    rescue Spiffe::ClosedError
      exit!(0)
    end
    expect(Process.wait2(pid).last).to be_success
    expect(agent.client.x509_svids.size).to eq(1)
  end
end
