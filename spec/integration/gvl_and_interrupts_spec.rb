# frozen_string_literal: true

require "spec_helper"

RSpec.describe "blocking calls, the GVL and interrupts" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/app"]) }
  let(:client) { Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 30) }

  it "lets other Ruby threads run while a call waits" do
    agent.inject_fault(delay: 0.5)
    ticks = 0
    counter = Thread.new { loop { ticks += 1 } }
    client.x509_svid
    counter.kill
    # With the GVL held for 0.5 s the counter could not move at all.
    expect(ticks).to be > 100_000
  end

  it "is interrupted by Timeout.timeout and stays usable" do
    agent.inject_fault(hang: true)
    took = elapsed { expect { Timeout.timeout(0.2) { client.x509_svid } }.to raise_error(Timeout::Error) }
    expect(took).to be < 1
    agent.clear_fault
    expect(client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/app")
  end

  it "is interrupted by Thread#raise" do
    agent.inject_fault(hang: true)
    waiting = Thread.new { client.jwt_svid(audience: "a") }
    waiting.report_on_exception = false
    sleep 0.1 until waiting.status == "sleep"
    waiting.raise(RuntimeError, "stop waiting")
    expect { waiting.join(2) }.to raise_error(RuntimeError, "stop waiting")
  end

  it "is interrupted by Thread#kill" do
    agent.inject_fault(hang: true)
    waiting = Thread.new { client.x509_svid }
    sleep 0.1 until waiting.status == "sleep"
    took = elapsed { waiting.kill.join(2) }
    expect(waiting).not_to be_alive
    expect(took).to be < 1
    agent.clear_fault
    expect(client.x509_svid).to be_a(Spiffe::X509SVID)
  end

  it "serves many threads at once on one client" do
    results = Array.new(8) { Thread.new { Array.new(20) { client.x509_svid.spiffe_id.to_s } } }.flat_map(&:value)
    expect(results.uniq).to eq(["spiffe://example.org/app"])
    expect(results.size).to eq(160)
  end

  it "survives GC pressure while converting responses" do
    GC.stress = true
    svid = client.x509_svid
    jwt = client.jwt_svid(audience: "a")
  ensure
    GC.stress = false
    expect(svid.spiffe_id.to_s).to eq("spiffe://example.org/app")
    expect(jwt.claims["sub"]).to eq("spiffe://example.org/app")
  end
end
