# frozen_string_literal: true

require "spec_helper"
require "open3"
require "rbconfig"

RSpec.describe "signals and permissions, in real processes" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/app"]) }
  let(:lib) { File.expand_path("../../lib", __dir__) }

  it "lets Ctrl-C (SIGINT) interrupt a call blocked on a hung agent" do
    agent.inject_fault(hang: true)
    code = <<~RUBY
      require "spiffe"
      trap("INT", "DEFAULT") if ARGV[1] == "default"
      client = Spiffe.workload_api_client(socket_path: ARGV[0], timeout: 60)
      $stdout.puts "calling"; $stdout.flush
      begin
        client.x509_svid
      rescue Interrupt
        $stdout.puts "interrupted"; $stdout.flush
        exit 42
      end
    RUBY
    Open3.popen2(RbConfig.ruby, "-I#{lib}", "-e", code, agent.socket_path) do |stdin, stdout, thread|
      stdin.close
      expect(stdout.gets).to eq("calling\n")
      sleep 0.3
      sent = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      Process.kill("INT", thread.pid)
      expect(thread.value.exitstatus).to eq(42)
      expect(stdout.read).to eq("interrupted\n")
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - sent).to be < 2
    end
  end

  it "lets SIGTERM end a process whose call is blocked on a hung agent" do
    agent.inject_fault(hang: true)
    code = <<~RUBY
      require "spiffe"
      client = Spiffe.workload_api_client(socket_path: ARGV[0], timeout: 60)
      at_exit { $stdout.puts "exiting"; $stdout.flush }
      $stdout.puts "calling"; $stdout.flush
      client.x509_svid
    RUBY
    Open3.popen2(RbConfig.ruby, "-I#{lib}", "-e", code, agent.socket_path) do |stdin, stdout, thread|
      stdin.close
      expect(stdout.gets).to eq("calling\n")
      sleep 0.3
      sent = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      Process.kill("TERM", thread.pid)
      status = thread.value
      expect(status.termsig).to eq(Signal.list["TERM"]) # Ruby re-raises SignalException as the signal
      expect(stdout.read).to eq("exiting\n") # at_exit ran: Ruby unwound normally
      expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - sent).to be < 2
    end
  end

  it "says so when this user may not open the socket", if: Process.uid.zero? do
    dir = Dir.mktmpdir
    File.chmod(0o700, dir)
    private_agent = start_agent(entries: ["spiffe://example.org/app"], socket_path: File.join(dir, "agent.sock"))
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      Process::Sys.setgid(65_534)
      Process::Sys.setuid(65_534)
      begin
        Spiffe.workload_api_client(socket_path: private_agent.socket_path).x509_svid
        writer.write("no error")
      rescue Spiffe::Error => e
        writer.write("#{e.class}: #{e.message}")
      end
      exit!(0)
    end
    writer.close
    message = reader.read
    Process.wait(pid)
    expect(message).to start_with("Spiffe::SocketPermissionError: FetchX509SVID: permission denied opening")
    expect(message).to include("agent's group")
  ensure
    FileUtils.rm_rf(dir)
  end
end
