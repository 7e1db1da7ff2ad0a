# frozen_string_literal: true

require "openssl"
require "socket"

# One-connection TLS servers and clients over loopback, and a throwaway web
# PKI (a CA and host certificates) for the SPIFFE/web-PKI mixes.
module TLSHelpers
  # Serves one TLS connection on a thread; returns [port, thread].
  # The thread's value is the peer's SPIFFE ID, or the handshake error.
  def serve(context)
    tcp = TCPServer.new("127.0.0.1", 0)
    thread = Thread.new do
      ssl = OpenSSL::SSL::SSLSocket.new(tcp.accept, context)
      ssl.accept
      peer = ssl.peer_cert && Spiffe::TLS.spiffe_id_of(ssl.peer_cert)
      ssl.write("hello #{peer}\n")
      ssl.close
      peer
    rescue OpenSSL::SSL::SSLError, SystemCallError => e
      e
    ensure
      tcp.close
    end
    thread.report_on_exception = false
    [tcp.addr[1], thread]
  end

  # Connects, reads the greeting; returns [server SPIFFE ID or "", line].
  # With `hostname`, sends SNI and (if the context says so) checks the name.
  def connect(port, context, hostname: nil)
    ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), context)
    ssl.hostname = hostname if hostname
    ssl.connect
    line = ssl.gets
    ssl.close
    [Spiffe::TLS.spiffe_id_of(ssl.peer_cert).to_s, line]
  end

  # A web PKI: `ca` and `ca_key`, and `issue(host)` giving [cert, key].
  class WebPKI
    attr_reader :ca, :ca_key

    def initialize
      @ca_key = OpenSSL::PKey::EC.generate("prime256v1")
      @ca = certificate("/CN=Test Web Root CA", @ca_key, @ca_key, nil) do |ext, cert|
        cert.add_extension(ext.create_extension("basicConstraints", "CA:TRUE", true))
        cert.add_extension(ext.create_extension("keyUsage", "keyCertSign,cRLSign", true))
      end
    end

    # @return [OpenSSL::X509::Store] trusting this CA only
    def store
      OpenSSL::X509::Store.new.tap { |s| s.add_cert(@ca) }
    end

    def issue(host)
      key = OpenSSL::PKey::EC.generate("prime256v1")
      cert = certificate("/CN=#{host}", key, @ca_key, @ca) do |ext, c|
        c.add_extension(ext.create_extension("subjectAltName", "DNS:#{host}", false))
        c.add_extension(ext.create_extension("extendedKeyUsage", "serverAuth", false))
      end
      [cert, key]
    end

    private

    def certificate(subject, key, signer_key, issuer)
      cert = OpenSSL::X509::Certificate.new
      cert.version = 2
      cert.serial = rand(1 << 64)
      cert.subject = OpenSSL::X509::Name.parse(subject)
      cert.issuer = issuer ? issuer.subject : cert.subject
      cert.public_key = key
      cert.not_before = Time.now - 60
      cert.not_after = Time.now + 3600
      ext = OpenSSL::X509::ExtensionFactory.new(issuer || cert, cert)
      yield ext, cert
      cert.sign(signer_key, "SHA256")
      cert
    end
  end
end

RSpec.configure { |c| c.include TLSHelpers }
