# frozen_string_literal: true

# A Puma app whose identity comes from one X509Source built in the master
# (preload_app!) and shared by forked workers: each worker reconnects by itself
# and is attested as itself. Run: SPIFFE_ENDPOINT_SOCKET=unix:///... puma -C puma.rb
require "spiffe"

SOURCE = Spiffe::X509Source.new(timeout: 10)

run lambda { |_env|
  svid = SOURCE.x509_svid
  body = "pid=#{Process.pid} id=#{svid.spiffe_id} serial=#{svid.leaf_certificate.serial.to_s(16)}\n"
  [200, { "content-type" => "text/plain" }, [body]]
}
