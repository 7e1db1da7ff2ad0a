# frozen_string_literal: true

require "spec_helper"

# Bounded stress: many threads, mixed calls, a shutdown racing them. Every
# outcome must be a value or a typed error; nothing may crash, hang or leak.
RSpec.describe "stress" do
  let(:agent) { start_agent(entries: [{ spiffe_id: "spiffe://example.org/s", hint: "s" }], x509_svid_ttl: 2) }

  it "survives 64 threads of mixed calls with shutdown racing them" do
    threads_before = Thread.list.size
    3.times do
      client = agent.client
      source = client.x509_source(backoff: fast_backoff)
      jwt_source = client.jwt_source(backoff: fast_backoff)
      outcomes = Queue.new
      workers = Array.new(64) do |i|
        Thread.new do
          30.times do
            outcomes << case i % 6
                        when 0 then client.x509_svid.spiffe_id.to_s
                        when 1 then client.jwt_svid(audience: "stress#{i % 3}").spiffe_id.to_s
                        when 2 then client.x509_bundles.size
                        when 3 then source.x509_svid.spiffe_id.to_s
                        when 4 then jwt_source.jwt_svid(audience: "s").spiffe_id.to_s
                        else client.validate_jwt_svid(client.jwt_svid(audience: "v").token, audience: "v").hint
                        end
          rescue Spiffe::ClosedError => e
            outcomes << e
          end
        end
      end
      sleep(rand * 0.3)
      client.shutdown
      expect(workers.map { |t| t.join(10) }).to all(be_a(Thread))
      values = Array.new(outcomes.size) { outcomes.pop }
      expect(values.reject { |v| v.is_a?(Spiffe::ClosedError) }.map(&:to_s).uniq - ["spiffe://example.org/s", "1", ""])
        .to eq([])
    end
    eventually { Thread.list.size <= threads_before }
  end

  it "answers or raises a typed error across agent restarts under load, then recovers" do
    client = agent.client(timeout: 2)
    watch_errors = Queue.new
    source = client.x509_source(backoff: fast_backoff, on_error: ->(e) { watch_errors << e })
    threads_before = Thread.list.size
    fds_before = open_fds
    running = true
    outcomes = Queue.new
    workers = Array.new(8) do |i|
      Thread.new do
        while running
          begin
            outcomes << (i.even? ? client.x509_svid.spiffe_id.to_s : client.jwt_svid(audience: "r").spiffe_id.to_s)
          rescue Spiffe::WorkloadAPIError => e
            outcomes << e
          end
        end
      end
    end
    5.times do
      sleep 0.1
      agent.stop
      sleep 0.1
      agent.restart
    end
    sleep 0.2
    running = false
    expect(workers.map { |t| t.join(10) }).to all(be_a(Thread))
    values = Array.new(outcomes.size) { outcomes.pop }
    errors = values.grep(Spiffe::WorkloadAPIError)
    expect(errors.map(&:class).uniq - [Spiffe::ConnectionRefusedError, Spiffe::SocketNotFoundError, Spiffe::ConnectionError])
      .to eq([])
    expect(values.grep(String).uniq).to eq(["spiffe://example.org/s"])
    expect(client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/s")
    eventually(5) { source.healthy? }
    expect(watch_errors.size).to be > 0 # the source saw the agent go, and recovered
    expect(Thread.list.size).to eq(threads_before)
    expect(open_fds).to be <= fds_before + 2
  end

  it "keeps calls and watches correct under GC.stress" do
    client = agent.client
    seen = Queue.new
    client.on_x509_svid_update { |svid| seen << svid.spiffe_id.to_s }
    watcher = Thread.new { client.watch_x509_svids(backoff: fast_backoff) }
    pop_within(seen)
    GC.stress = true
    begin
      svid = client.x509_svid
      jwt = client.jwt_svid(audience: "gc")
      bundles = client.jwt_bundles
      agent.rotate!
      rotated = pop_within(seen, 20)
    ensure
      GC.stress = false
    end
    expect([svid.spiffe_id.to_s, jwt.claims["sub"], bundles.size, rotated])
      .to eq(["spiffe://example.org/s", "spiffe://example.org/s", 1, "spiffe://example.org/s"])
    client.shutdown
    watcher.join(5)
  end
end
