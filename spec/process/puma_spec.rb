# frozen_string_literal: true

require "spec_helper"
require "net/http"
require "socket"

# examples/puma: a real Puma in cluster mode with preload_app!, the source
# built in the master and inherited by forked workers.
RSpec.describe "Puma cluster mode (examples/puma)" do
  let(:example_dir) { File.expand_path("../../examples/puma", __dir__) }
  let(:agent) { start_agent(entries: [{ spiffe_id: "spiffe://example.org/puma", selectors: ["unix:uid:#{Process.uid}"] }]) }

  def get(port)
    Net::HTTP.get(URI("http://127.0.0.1:#{port}/"))
  rescue SystemCallError, EOFError, Net::ReadTimeout
    nil
  end

  def answers(port, count)
    Array.new(count) { get(port) }.compact.map { |body| body.scan(/(\w+)=(\S+)/).to_h }
  end

  it "gives each worker its own connection and follows rotation in every worker" do
    port = free_port
    env = { "SPIFFE_ENDPOINT_SOCKET" => agent.address, "BIND" => "tcp://127.0.0.1:#{port}", "WORKERS" => "2",
            "RUBYLIB" => File.expand_path("../../lib", __dir__) }
    log = Tempfile.new("puma")
    pid = spawn(env, "puma", "-C", File.join(example_dir, "puma.rb"), out: log.path, err: log.path)
    begin
      workers = {}
      eventually(30) do
        answers(port, 10).each { |a| workers[a["pid"].to_i] = a }
        workers.size >= 2
      end
      expect(workers.keys).not_to include(pid)
      expect(workers.values.map { |a| a["id"] }.uniq).to eq(["spiffe://example.org/puma"])
      # Every worker dialed the agent itself (and was attested by its own pid).
      expect(agent.peer_pids).to include(*workers.keys)

      old_serial = workers.values.first["serial"]
      agent.rotate!
      rotated = {}
      eventually(10) do
        answers(port, 10).each { |a| rotated[a["pid"].to_i] = a["serial"] if a["serial"] != old_serial }
        rotated.size >= 2
      end
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
  rescue RSpec::Expectations::ExpectationNotMetError, RuntimeError
    puts File.read(log.path) if log
    raise
  end
end
