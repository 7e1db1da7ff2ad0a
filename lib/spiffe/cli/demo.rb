# frozen_string_literal: true

require "net/http"
require "socket"
require "spiffe/cli/command"
require "spiffe/testing"

module Spiffe
  class CLI
    # `spiffe demo`: a short tour on the embedded agent, no SPIRE needed:
    # identity, JWT, an mTLS request between two local services, and a
    # rotation caught by a callback.
    class Demo < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe demo

        Starts an embedded Workload API agent with two identities for this
        process (a "web" front end and an "api" back end), then shows: the
        X.509-SVID, a JWT-SVID validated by the agent, an HTTPS request over
        mTLS from web to api with both sides authorizing the other's SPIFFE ID,
        and a rotation delivered to a callback.

        Options:
      TEXT

      # The demo's two registration entries, both for this process.
      ENTRIES = [{ spiffe_id: "spiffe://example.org/demo/web", hint: "web", entry_id: "1" },
                 { spiffe_id: "spiffe://example.org/demo/api", hint: "api", entry_id: "2" }].freeze

      private

      def options(_opts); end

      def execute(arguments)
        usage!("unexpected argument #{arguments.first.inspect}") unless arguments.empty?

        Spiffe::Testing::Agent.start(trust_domain: "example.org", entries: ENTRIES, intermediate: true) do |agent|
          say "Embedded Workload API agent on #{agent.address} (trust domain #{agent.trust_domain})"
          client = Spiffe.workload_api_client(socket_path: agent.socket_path)
          identity(client)
          jwt(client)
          mtls(client)
          rotation(client, agent)
          client.shutdown
        end
        EXIT_OK
      end

      def say(line = "")
        @out.puts(line)
        @out.flush
      end

      def timed
        start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        result = yield
        [result, format("%.2f ms", (Process.clock_gettime(Process::CLOCK_MONOTONIC) - start) * 1000)]
      end

      def identity(client)
        svid, took = timed { client.x509_svid }
        leaf = svid.leaf_certificate
        say
        say "1. X.509-SVID   #{svid.spiffe_id}  (hint #{svid.hint.inspect}, fetched in #{took})"
        say "   issued by    #{leaf.issuer}; chain of #{svid.cert_chain.size}; expires #{time(svid.expires_at)} (#{remaining(svid.expires_at)})"
        id, = Spiffe::X509SVID.verify(svid.cert_chain, svid.bundle)
        say "   verified     against the #{svid.bundle.trust_domain} bundle as #{id}"
        say "   inspect      #{svid.inspect}"
      end

      def jwt(client)
        jwt, took = timed { client.jwt_svid(audience: "demo-api") }
        say
        say "2. JWT-SVID     #{jwt.spiffe_id} for #{jwt.audience.inspect}  (#{took})"
        say "   validated    by the agent: #{client.validate_jwt_svid(jwt.token, audience: 'demo-api').spiffe_id}"
        say "   offline      #{Spiffe::JWTSVID.parse_and_validate(jwt.token, client.jwt_bundles, audience: 'demo-api').spiffe_id}"
        client.jwt_svid(audience: "demo-api", spiffe_id: "spiffe://example.org/not-mine")
      rescue Spiffe::NoIdentityIssuedError => e
        say "   not mine     #{e.class}: #{e.message}"
      end

      def mtls(client)
        api = client.x509_source(hint: "api")
        web = client.x509_source(hint: "web")
        tcp = TCPServer.new("127.0.0.1", 0)
        server = Spiffe::TLS::Server.new(tcp, api, authorize: Spiffe::Authorize.id("spiffe://example.org/demo/web"))
        thread = Thread.new { serve_one(server) }
        http = Net::HTTP.new("127.0.0.1", tcp.addr[1])
        Spiffe::TLS.configure_net_http(http, web, authorize: Spiffe::Authorize.id("spiffe://example.org/demo/api"))
        body, took = timed { http.start { |h| h.get("/").body } }
        say
        say "3. mTLS         web -> api over HTTPS, each side authorizing the other's SPIFFE ID (#{took})"
        say "   api answered #{body.inspect}"
        thread.join
      ensure
        server&.close
        [api, web].each { |source| source&.close }
      end

      # A one-request HTTP/1.1 responder, enough for the demo.
      def serve_one(server)
        ssl = server.accept
        nil until ssl.gets.to_s.chomp.empty?
        body = "hello #{Spiffe::TLS.spiffe_id_of(ssl.peer_cert)}, I am #{Spiffe::TLS.spiffe_id_of(ssl.cert)}"
        ssl.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
        ssl.close
      end

      def rotation(client, agent)
        source = client.x509_source(hint: "web")
        before = source.x509_svid
        lock = Mutex.new
        rotated = ConditionVariable.new
        arrived = nil
        source.on_update do
          lock.synchronize do
            arrived ||= Process.clock_gettime(Process::CLOCK_MONOTONIC)
            rotated.signal
          end
        end
        start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        agent.rotate!
        lock.synchronize { rotated.wait(lock, 5) unless arrived }
        raise Failure, "demo: no rotation within 5 s" unless arrived
        after = source.x509_svid
        say
        say "4. Rotation     the agent reissued; the callback ran #{format('%.2f ms', (arrived - start) * 1000)} later"
        say "   serial       #{before.leaf_certificate.serial.to_s(16)} -> #{after.leaf_certificate.serial.to_s(16)}"
      ensure
        source&.close
      end
    end
  end
end
