# frozen_string_literal: true

# What the memcheck run exercises: every native path (fetches, validation,
# watches with rotation, fork, interrupts, shutdown) against the embedded
# agent, which is native code too. Generous timeouts: valgrind is ~50x slower.
require "spiffe"
require "spiffe/testing"

entries = [{ spiffe_id: "spiffe://example.org/memcheck", hint: "m" }]
Spiffe::Testing::Agent.start(entries: entries, federated_trust_domains: ["partner.org"], intermediate: true) do |agent|
  client = Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 60)
  3.times do
    svid = client.x509_svid
    svid.private_key
    client.x509_bundles
    token = client.jwt_svid(audience: "memcheck").token
    client.validate_jwt_svid(token, audience: "memcheck")
    Spiffe::JWTSVID.parse_and_validate(token, client.jwt_bundles, audience: "memcheck")
    Spiffe::X509SVID.verify(svid.cert_chain, svid.bundle)
  end
  bundle = Spiffe::Bundle.from(x509_bundle: client.x509_bundles["example.org"], jwt_bundle: client.jwt_bundles["example.org"])
  Spiffe::Bundle.parse("example.org", bundle.marshal)
  begin
    client.jwt_svid(audience: "memcheck", spiffe_id: "spiffe://example.org/not-mine")
  rescue Spiffe::NoIdentityIssuedError
    nil
  end

  source = client.x509_source(timeout: 60)
  updates = Queue.new
  source.on_update { updates << true }
  2.times do
    agent.rotate!
    updates.pop
  end

  pid = fork do
    child = Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 60)
    child.x509_svid
    source.x509_svid
    child.shutdown
    exit!(0)
  end
  Process.wait(pid)
  raise "child failed" unless $?.success? # rubocop:disable Style/SpecialGlobalVars

  agent.inject_fault(methods: ["FetchX509SVID"], hang: true)
  caller = Thread.new { client.x509_svid }
  sleep 1
  caller.kill
  caller.join
  agent.clear_fault

  begin
    Spiffe.workload_api_client(socket_path: "/nonexistent/agent.sock", timeout: 1).x509_svid
  rescue Spiffe::SocketNotFoundError
    nil
  end
  source.close
  client.shutdown
end
GC.start
puts "memcheck workload done"
