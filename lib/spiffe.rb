# frozen_string_literal: true

require "spiffe/version"
require "spiffe/errors"
require "spiffe/spiffe_workload"
require "spiffe/trust_domain"
require "spiffe/id"
require "spiffe/files"
require "spiffe/x509_bundle"
require "spiffe/jwt_bundle"
require "spiffe/bundle_set"
require "spiffe/bundle"
require "spiffe/x509_svid"
require "spiffe/jwt_svid"
require "spiffe/backoff"
require "spiffe/callbacks"
require "spiffe/fork_tracker"
require "spiffe/watch"
require "spiffe/workload_api_client"
require "spiffe/source"
require "spiffe/x509_source"
require "spiffe/jwt_source"
require "spiffe/bundle_source"
require "spiffe/authorize"
require "spiffe/tls"

# The SPIFFE Workload API for Ruby. Start at {Spiffe.workload_api_client}.
module Spiffe
  # A Workload API client.
  # @param socket_path [String, nil] the agent's socket path or address;
  #   default `SPIFFE_ENDPOINT_SOCKET`, then `unix:///tmp/spire-agent/public/api.sock`
  # @param timeout [Numeric] seconds each call may take
  # @return [WorkloadAPIClient]
  def self.workload_api_client(socket_path: nil, timeout: WorkloadAPIClient::DEFAULT_TIMEOUT)
    WorkloadAPIClient.new(socket_path: socket_path, timeout: timeout)
  end
end
