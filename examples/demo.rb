# frozen_string_literal: true

# A tour of spiffe-workload on the embedded agent: no SPIRE needed.
#   ruby -Ilib examples/demo.rb
require "spiffe"
require "spiffe/testing"

def ms(seconds) = format("%.2f ms", seconds * 1000)

def timed
  start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  result = yield
  [result, Process.clock_gettime(Process::CLOCK_MONOTONIC) - start]
end

entries = [{ spiffe_id: "spiffe://example.org/demo/web", hint: "web" }]
Spiffe::Testing::Agent.start(trust_domain: "example.org", entries: entries, intermediate: true) do |agent|
  puts "Embedded Workload API agent on #{agent.address} (trust domain #{agent.trust_domain})"
  client = Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 5)

  svid, took = timed { client.x509_svid }
  leaf = svid.leaf_certificate
  puts
  puts "X.509-SVID   #{svid.spiffe_id}  (hint #{svid.hint.inspect}, first fetch #{ms(took)})"
  puts "  subject    #{leaf.subject}, issued by #{leaf.issuer}"
  puts "  expires    #{svid.expires_at.utc} (in #{((svid.expires_at - Time.now) / 60).round} min)"
  puts "  chain      #{svid.cert_chain.size} certificates; key #{svid.private_key.class.name.split('::').last}, " \
       "matches leaf: #{leaf.check_private_key(svid.private_key)}"
  puts "  verified   against the #{svid.bundle.trust_domain} bundle: " \
       "#{svid.bundle.cert_store.verify(leaf, svid.cert_chain[1..])}"
  _, again = timed { client.x509_svid }
  puts "  refetch    #{ms(again)}"

  jwt, took = timed { client.jwt_svid(audience: "demo-api") }
  puts
  puts "JWT-SVID     #{jwt.spiffe_id} for #{jwt.audience.inspect}  (#{ms(took)})"
  puts "  expires    #{jwt.expires_at.utc}"
  puts "  claims     #{jwt.claims.keys.sort.join(', ')}"
  validated = client.validate_jwt_svid(jwt.token, audience: "demo-api")
  puts "  validated  by the agent: #{validated.spiffe_id}"
  puts "  inspect    #{jwt.inspect}"

  puts
  begin
    client.jwt_svid(audience: "demo-api", spiffe_id: "spiffe://example.org/not-mine")
  rescue Spiffe::NoIdentityIssuedError => e
    puts "Asking for an identity we do not have raises #{e.class}:"
    puts "  #{e.message}"
  end
  client.shutdown
end
