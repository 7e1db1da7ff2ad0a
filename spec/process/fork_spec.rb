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

RSpec.describe "sources and watchers after fork" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/app"], rotation: false) }

  # Runs the block in a child; returns what it wrote to the pipe as JSON.
  def in_child
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      result = yield
      writer.write(JSON.generate(result))
      writer.close
      exit!(0)
    rescue Exception => e # rubocop:disable Lint/RescueException
      writer.write(JSON.generate("error" => "#{e.class}: #{e.message}"))
      exit!(1)
    end
    writer.close
    result = JSON.parse(reader.read)
    [result, Process.wait2(pid).last]
  ensure
    reader&.close
  end

  it "recovers a source in the child: own connection, own updates" do
    source = agent.client.x509_source(backoff: fast_backoff)
    parent_svid = source.x509_svid
    ready_r, ready_w = IO.pipe
    go_r, go_w = IO.pipe
    result = nil
    waiter = Thread.new do
      result = in_child do
        svid = source.x509_svid
        ready_w.puts(Process.pid)
        go_r.gets
        # The rotation happened before "go"; it may already be here.
        eventually(5) { source.x509_svid != svid }
        { "pid" => Process.pid, "id" => svid.spiffe_id.to_s, "changed" => source.x509_svid != svid,
          "threads" => Thread.list.size }
      end
    end
    child_pid = Integer(ready_r.gets)
    expect(agent.peer_pids).to include(child_pid)
    agent.rotate!
    go_w.puts("go")
    waiter.join
    data, status = result
    expect(status).to be_success, data.inspect
    expect(data).to include("pid" => child_pid, "id" => "spiffe://example.org/app", "changed" => true)
    expect(data["threads"]).to eq(2) # main + the source's watch thread
    expect(source.x509_svid).not_to eq(parent_svid) # the parent follows too
    expect(source).to be_healthy
  end

  it "keeps delivering watch callbacks in the child" do
    client = agent.client
    seen = Queue.new
    client.on_x509_svid_update { |svid| seen << svid }
    Thread.new { client.watch_x509_svids(backoff: fast_backoff) }
    pop_within(seen)
    ready_r, ready_w = IO.pipe
    go_r, go_w = IO.pipe
    result = nil
    waiter = Thread.new do
      result = in_child do
        seen.clear
        ready_w.puts("ready")
        go_r.gets
        { "svid" => pop_within(seen, 5).spiffe_id.to_s }
      end
    end
    ready_r.gets
    sleep 0.2 # let the child's watch connect
    agent.rotate!
    go_w.puts("go")
    waiter.join
    data, status = result
    expect(status).to be_success, data.inspect
    expect(data).to eq("svid" => "spiffe://example.org/app")
  end

  it "survives 50 forks of a process with an active source, without leaking threads or fds" do
    source = agent.client.x509_source(backoff: fast_backoff)
    threads = Thread.list.size
    fds = open_fds
    results = Array.new(50) { in_child { { "id" => source.x509_svid.spiffe_id.to_s } } }
    expect(results.map { |data, status| [data["id"], status.success?] }.uniq).to eq([["spiffe://example.org/app", true]])
    expect(source.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/app")
    expect(Thread.list.size).to eq(threads)
    expect(open_fds).to be <= fds
  end
end
