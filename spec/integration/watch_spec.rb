# frozen_string_literal: true

require "spec_helper"

RSpec.describe "watching for rotation" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/w"], rotation: false) }
  let(:client) { agent.client }

  after { client.shutdown }

  def current_leaf
    agent.client.x509_svid.cert_chain_der.first
  end

  it "delivers every rotation to on_x509_svid_update callbacks (50 rotations)" do
    seen = Queue.new
    client.on_x509_svid_update { |svid| seen << svid }
    watcher = Thread.new { client.watch_x509_svids(backoff: fast_backoff) }
    first = pop_within(seen)
    leaves = [first.cert_chain_der.first]
    50.times do
      agent.rotate!
      leaves << pop_within(seen).cert_chain_der.first
    end
    expect(leaves.uniq.size).to eq(51)
    expect(leaves.last).to eq(current_leaf)
    client.shutdown
    expect(watcher.join(2)).to be_a(Thread)
    expect(watcher.value).to be_nil
  end

  it "always delivers the last state of a burst of rotations" do
    seen = Queue.new
    client.on_x509_svid_update { |svid| seen << svid }
    Thread.new { client.watch_x509_svids(backoff: fast_backoff) }
    pop_within(seen)
    30.times { agent.rotate! }
    latest = current_leaf
    eventually { seen.size.positive? && Array.new(seen.size) { seen.pop }.last.cert_chain_der.first == latest }
  end

  it "runs the block form and reports a failing callback without stopping" do
    errors = Queue.new
    client.on_error { |e| errors << e }
    client.on_x509_svid_update { raise "callback bug" }
    seen = Queue.new
    Thread.new { client.watch_x509_svids(backoff: fast_backoff) { |svid| seen << svid } }
    pop_within(seen)
    agent.rotate!
    pop_within(seen)
    expect(pop_within(errors).message).to eq("callback bug")
  end

  it "follows bundle rotations" do
    x509 = Queue.new
    jwt = Queue.new
    client.on_x509_bundles_update { |set| x509 << set }
    client.on_jwt_bundles_update { |set| jwt << set }
    Thread.new { client.watch_x509_bundles(backoff: fast_backoff) }
    Thread.new { client.watch_jwt_bundles(backoff: fast_backoff) }
    expect(pop_within(x509)["example.org"].authorities_der.size).to eq(1)
    expect(pop_within(jwt)["example.org"].key_ids.size).to eq(1)
    agent.rotate_ca!
    agent.rotate_jwt_key!
    expect(pop_within(x509)["example.org"].authorities_der.size).to eq(2)
    expect(pop_within(jwt)["example.org"].key_ids.size).to eq(2)
  end

  it "does not fire callbacks for updates that change nothing" do
    seen = Queue.new
    client.on_x509_svid_update { |svid| seen << svid }
    Thread.new { client.watch_x509_svids(backoff: fast_backoff) }
    pop_within(seen)
    agent.add_entry("spiffe://example.org/someone-else", selectors: ["unix:uid:4242424"])
    expect(agent.calls["FetchX509SVID"]).to eq(1)
    sleep 0.3
    expect(seen).to be_empty
  end

  it "stops every watch within a moment of shutdown, leaking no thread or fd" do
    agent # the agent lives in this process: its listener is not the client's
    threads_before = Thread.list.size
    fds_before = open_fds
    watch_client = agent.client
    source = watch_client.x509_source
    watch_client.jwt_source
    watch_client.bundle_source
    watchers = Array.new(3) { Thread.new { watch_client.watch_x509_svids(backoff: fast_backoff) } }
    eventually { agent.calls.fetch("FetchX509SVID", 0) >= 4 }
    took = elapsed { watch_client.shutdown }
    expect(took).to be < 1
    expect(watchers.map { |t| t.join(1) }).to all(be_a(Thread))
    expect { source.x509_svid }.to raise_error(Spiffe::ClosedError)
    eventually { Thread.list.size <= threads_before }
    GC.start
    # The agent's end of the closed connection may linger a moment; the
    # 20-restart source spec checks that nothing accumulates.
    eventually(10) { open_fds <= fds_before + 1 }
  end
end
