# frozen_string_literal: true

# HTTPS that requires client X.509-SVIDs, following rotation without a restart.
#   SPIFFE_ENDPOINT_SOCKET=unix:///run/spire/agent.sock puma -C examples/puma-mtls/puma.rb
require "spiffe/puma"

workers Integer(ENV.fetch("WORKERS", 0))
threads 1, 4
port = Integer(ENV.fetch("PORT", 8443))

# One source for this listener: the SVID it presents and the bundle it trusts.
source = Spiffe.workload_api_client.x509_source
Spiffe::Puma.ssl_bind(self, "127.0.0.1", port, source: source)

rackup File.expand_path("config.ru", __dir__)
