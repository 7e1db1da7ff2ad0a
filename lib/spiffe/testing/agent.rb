# frozen_string_literal: true

require "json"
require "tmpdir"
require "fileutils"

module Spiffe
  module Testing
    # An embedded Workload API server that behaves like the SPIRE agent: the
    # security header, SPIRE's status codes and messages, streams that send a
    # snapshot at once and on every change. It runs its own CA and JWT signing
    # key and serves from this process (its own background thread).
    #
    # @example
    #   Spiffe::Testing::Agent.start(entries: ["spiffe://example.org/web"]) do |agent|
    #     client = Spiffe.workload_api_client(socket_path: agent.socket_path)
    #     client.x509_svid.spiffe_id.to_s  # => "spiffe://example.org/web"
    #   end
    class Agent
      # Starts an agent. With a block, yields it and stops it afterwards.
      #
      # @param trust_domain [String]
      # @param entries [Array<String, Hash>] SPIFFE IDs, or hashes with
      #   `:spiffe_id`, `:hint` and `:entry_id` (SVIDs are ordered by entry ID)
      # @param socket_path [String, nil] default: a fresh temporary directory
      # @param x509_svid_ttl [Numeric] seconds (SPIRE: 3600)
      # @param jwt_svid_ttl [Numeric] seconds (SPIRE: 300)
      # @param svid_key_type [Symbol] `:ec_p256` (default), `:ec_p384`, `:rsa_2048`, `:ed25519`
      # @param ca_key_type [Symbol] key type of the CA and the JWT signing key
      # @param intermediate [Boolean] sign SVIDs with an intermediate CA (chains of 2)
      # @yieldparam agent [Agent]
      # @return [Agent, Object] the agent, or the block's value
      def self.start(**options)
        agent = new(**options)
        return agent unless block_given?

        begin
          yield agent
        ensure
          agent.stop
        end
      end

      # @return [String] the Unix socket path
      attr_reader :socket_path
      # @return [String]
      attr_reader :trust_domain

      # @see .start
      def initialize(trust_domain: "example.org", entries: [], socket_path: nil, x509_svid_ttl: 3600,
                     jwt_svid_ttl: 300, svid_key_type: :ec_p256, ca_key_type: :ec_p256, intermediate: false)
        @tmpdir = Dir.mktmpdir("spiffe-agent") unless socket_path
        @socket_path = socket_path || File.join(@tmpdir, "agent.sock")
        @trust_domain = trust_domain
        config = {
          trust_domain: trust_domain, socket_path: @socket_path, entries: entries.map { |e| entry_hash(e) },
          x509_svid_ttl: x509_svid_ttl.to_f, jwt_svid_ttl: jwt_svid_ttl.to_f,
          svid_key_type: key_type(svid_key_type), ca_key_type: key_type(ca_key_type), intermediate: intermediate
        }
        @native = Native::Agent.start(JSON.generate(config))
      rescue StandardError
        FileUtils.rm_rf(@tmpdir) if @tmpdir
        raise
      end

      # @return [String] `unix://<socket_path>`, the form SPIFFE_ENDPOINT_SOCKET takes
      def address
        "unix://#{@socket_path}"
      end

      # A client of this agent.
      # @return [WorkloadAPIClient]
      def client(timeout: WorkloadAPIClient::DEFAULT_TIMEOUT)
        Spiffe.workload_api_client(socket_path: @socket_path, timeout: timeout)
      end

      # @return [X509Bundle] the trust domain's root CA
      def x509_bundle
        X509Bundle.new(@trust_domain, [@native.bundle_der])
      end

      # @return [Array<Integer>] PIDs of the processes that connected, in order,
      #   as the kernel reported them (SO_PEERCRED)
      def peer_pids
        @native.peer_pids
      end

      # @return [String] the JWKS the agent publishes for its trust domain
      def jwks
        @native.jwks
      end

      # Registers an identity; open streams get a new snapshot.
      # @param spiffe_id [String]
      # @param hint [String]
      # @param entry_id [String, nil]
      # @return [String] the entry ID
      def add_entry(spiffe_id, hint: "", entry_id: nil)
        @native.add_entry(JSON.generate(entry_hash({ spiffe_id: spiffe_id, hint: hint, entry_id: entry_id })))
      end

      # Removes every entry with this SPIFFE ID; streams of callers left with
      # no identity end with PermissionDenied "no identity issued".
      # @return [Integer] how many entries were removed
      def remove_entry(spiffe_id)
        @native.remove_entry(spiffe_id.to_s)
      end

      # Makes the agent misbehave until {#clear_fault}, after the header and
      # argument checks (where SPIRE attests callers).
      #
      # @param methods [Array<String>] RPC names (e.g. "FetchJWTSVID"); empty: all
      # @param delay [Numeric] seconds to wait before answering
      # @param hang [Boolean] never answer
      # @param status [Symbol, String, nil] answer with this gRPC code (e.g. `:unavailable`) ...
      # @param message [String] ... and message (e.g. "workload attestation failed")
      # @param corrupt [Symbol, nil] send a malformed response: `:svid_der`,
      #   `:key_mismatch`, `:bundle_der`, `:empty_svids`, `:jwks`, `:jwt`
      # @return [void]
      def inject_fault(methods: [], delay: 0, hang: false, status: nil, message: "", corrupt: nil)
        @native.fault = JSON.generate(methods: Array(methods).map(&:to_s), delay: delay.to_f, hang: hang,
                                      status: status&.to_s, message: message, corrupt: corrupt&.to_s)
      end

      # Ends any injected fault.
      def clear_fault
        inject_fault
      end

      # Stops serving, ends open streams and removes the socket. Idempotent.
      def stop
        @native.stop
        FileUtils.rm_rf(@tmpdir) if @tmpdir
        nil
      end

      # @return [Boolean]
      def running?
        @native.running?
      end

      def inspect
        "#<Spiffe::Testing::Agent #{@trust_domain} #{@socket_path}#{running? ? '' : ' stopped'}>"
      end

      private

      def entry_hash(entry)
        entry = { spiffe_id: entry } unless entry.is_a?(Hash)
        hash = { spiffe_id: entry.fetch(:spiffe_id).to_s, hint: (entry[:hint] || "").to_s }
        hash[:entry_id] = entry[:entry_id].to_s if entry[:entry_id]
        hash
      end

      def key_type(type)
        type.to_s.tr("_", "-")
      end
    end
  end
end
