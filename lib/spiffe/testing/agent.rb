# frozen_string_literal: true

require "json"
require "tmpdir"
require "fileutils"

module Spiffe
  module Testing
    # An embedded Workload API server that behaves like the SPIRE agent. It
    # attests each caller from the socket's peer credentials (pid, uid, gid,
    # executable) and issues the identities of the registration entries whose
    # selectors the caller has. It runs its own CA and JWT signing key, rotates
    # SVIDs at half their lifetime, and serves from this process (a background
    # thread), so no SPIRE is needed.
    #
    # @example
    #   Spiffe::Testing::Agent.start(entries: ["spiffe://example.org/web"]) do |agent|
    #     client = Spiffe.workload_api_client(socket_path: agent.socket_path)
    #     client.x509_svid.spiffe_id.to_s  # => "spiffe://example.org/web"
    #   end
    class Agent
      # Key type names accepted for `svid_key_type:` and `ca_key_type:`.
      KEY_TYPES = %i[ec_p256 ec_p384 rsa_2048 ed25519].freeze

      # Starts an agent. With a block, yields it and closes it afterwards.
      #
      # @param options [Hash] the settings below
      # @option options [String] :trust_domain
      # @option options [Array<String, Hash>] :entries registration entries: a SPIFFE ID
      #   (given to every caller), or a Hash with `:spiffe_id` and optionally
      #   `:selectors` (e.g. `["unix:uid:1000", "unix:path:/usr/bin/ruby3.1"]`;
      #   a caller needs all of them), `:hint`, `:entry_id` (SVIDs are ordered
      #   by it), `:x509_svid_ttl`, `:jwt_svid_ttl`, `:federates_with`
      # @option options [String, nil] :socket_path default: a fresh temporary directory
      # @option options [Numeric] :x509_svid_ttl seconds (SPIRE: 3600); SVIDs rotate at half of it
      # @option options [Numeric] :jwt_svid_ttl seconds (SPIRE: 300)
      # @option options [Numeric] :ca_ttl seconds (SPIRE: 86400)
      # @option options [Symbol] :svid_key_type `:ec_p256` (default), `:ec_p384`, `:rsa_2048`, `:ed25519`
      # @option options [Symbol] :ca_key_type key type of the CA
      # @option options [String] :jwt_algorithm "ES256" (default), "ES384", "RS256" or "PS256"
      # @option options [Boolean] :intermediate sign SVIDs with an intermediate CA (chains of 2)
      # @option options [Array<String>] :federated_trust_domains foreign trust domains the
      #   agent has bundles for (each with its own CA and JWT key)
      # @option options [Boolean] :rotation re-issue SVIDs at half their lifetime (default true)
      # @option options [Boolean] :allow_unauthenticated_verifiers serve bundles to callers without identity
      # @yieldparam agent [Agent]
      # @return [Agent, Object] the agent, or the block's value
      def self.start(**options)
        agent = new(**options)
        return agent unless block_given?

        begin
          yield agent
        ensure
          agent.close
        end
      end

      # @return [String] the Unix socket path
      attr_reader :socket_path
      # @return [String]
      attr_reader :trust_domain

      # @see .start
      def initialize(trust_domain: "example.org", entries: [], socket_path: nil, x509_svid_ttl: 3600,
                     jwt_svid_ttl: 300, ca_ttl: 86_400, svid_key_type: :ec_p256, ca_key_type: :ec_p256,
                     jwt_algorithm: "ES256", intermediate: false, federated_trust_domains: [], rotation: true,
                     allow_unauthenticated_verifiers: false)
        @tmpdir = Dir.mktmpdir("spiffe-agent") unless socket_path
        @socket_path = socket_path || File.join(@tmpdir, "agent.sock")
        @trust_domain = trust_domain
        config = {
          trust_domain: trust_domain, socket_path: @socket_path, entries: entries.map { |e| entry_hash(e) },
          x509_svid_ttl: x509_svid_ttl.to_f, jwt_svid_ttl: jwt_svid_ttl.to_f, ca_ttl: ca_ttl.to_f,
          svid_key_type: key_type(svid_key_type), ca_key_type: key_type(ca_key_type),
          jwt_algorithm: jwt_algorithm.to_s, intermediate: intermediate,
          federated_trust_domains: federated_trust_domains.map(&:to_s), rotation: rotation,
          allow_unauthenticated_verifiers: allow_unauthenticated_verifiers
        }
        @clients = []
        @clients_lock = Mutex.new
        @native = Native::Agent.start(JSON.generate(config))
      rescue StandardError
        FileUtils.rm_rf(@tmpdir) if @tmpdir
        raise
      end

      # @return [String] `unix://<socket_path>`, the form SPIFFE_ENDPOINT_SOCKET takes
      def address
        "unix://#{@socket_path}"
      end

      # A client of this agent; {#close} shuts it down (and its sources).
      # @return [WorkloadAPIClient]
      def client(timeout: WorkloadAPIClient::DEFAULT_TIMEOUT)
        client = Spiffe.workload_api_client(socket_path: @socket_path, timeout: timeout)
        @clients_lock.synchronize { @clients << client }
        client
      end

      # @param trust_domain [String] the own (default) or a federated trust domain
      # @return [X509Bundle] its roots (during a CA rotation, the old root too)
      def x509_bundle(trust_domain = @trust_domain)
        X509Bundle.new(trust_domain, Native.split_der(@native.bundle_der(trust_domain.to_s)))
      end

      # @param trust_domain [String] the own (default) or a federated trust domain
      # @return [String] the JWKS the agent publishes for it
      def jwks(trust_domain = @trust_domain)
        @native.jwks(trust_domain.to_s)
      end

      # @return [Array<Integer>] PIDs of the processes that connected, in order,
      #   as the kernel reported them (SO_PEERCRED)
      def peer_pids
        @native.peer_pids
      end

      # @return [Hash{String => Integer}] calls received per RPC name
      #   (e.g. "FetchJWTSVID"), counted after the security header check
      def calls
        @native.calls
      end

      # Registers an identity; open streams get a new snapshot.
      # @param spiffe_id [String]
      # @param options [Hash] `:selectors`, `:hint`, `:entry_id`, `:x509_svid_ttl`,
      #   `:jwt_svid_ttl`, `:federates_with` (see {.start})
      # @return [String] the entry ID
      def add_entry(spiffe_id, **options)
        @native.add_entry(JSON.generate(entry_hash(options.merge(spiffe_id: spiffe_id))))
      end

      # Removes an entry by entry ID, or every entry with this SPIFFE ID.
      # Streams of callers left with no identity end with PermissionDenied.
      # @return [Integer] how many entries were removed
      def remove_entry(id)
        @native.remove_entry(id.to_s)
      end

      # Re-issues every X.509-SVID now, as at half-life; streams get the new ones.
      def rotate!
        @native.rotate
        nil
      end

      # Replaces the CA; SVIDs are re-issued by the new one and bundles carry
      # the old root too until the SVIDs it signed have expired.
      def rotate_ca!
        @native.rotate_ca
        nil
      end

      # Replaces the JWT signing key; the JWKS keeps the old key until tokens
      # it signed have expired.
      def rotate_jwt_key!
        @native.rotate_jwt_key
        nil
      end

      # Cuts every open connection at once: streams break mid-way, clients
      # must reconnect. The agent keeps serving.
      def drop_connections!
        @native.drop_connections
        nil
      end

      # Mints an X.509-SVID outside the Workload API for any SPIFFE ID in a
      # trust domain the agent knows (own or federated): peers for TLS tests.
      # @return [X509SVID]
      def mint_x509_svid(spiffe_id, ttl: 3600)
        chain, key = @native.mint_x509_svid(spiffe_id.to_s, ttl.to_f)
        id = ID.parse(spiffe_id)
        certs = Native.split_der(chain)
        expires_at = OpenSSL::X509::Certificate.new(certs.first).not_after
        X509SVID.new(spiffe_id: id, cert_chain_der: certs, private_key_der: key, expires_at: expires_at,
                     bundle: x509_bundle(id.trust_domain.name))
      end

      # Mints a JWT-SVID for any SPIFFE ID in a trust domain the agent knows.
      # @param ttl [Numeric] seconds; negative mints a token that has already expired
      # @return [String] the token
      def mint_jwt_svid(spiffe_id, audience:, ttl: 300)
        @native.mint_jwt_svid(spiffe_id.to_s, Array(audience).map(&:to_s), ttl.to_f)
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

      # Stops serving: cuts connections and removes the socket. {#restart} serves again.
      def stop
        @native.stop
        nil
      end

      # Serves again on the same socket with the same CA, keys and entries
      # (stopping first if running).
      def restart
        @native.restart
        nil
      end

      # Stops and releases everything: the clients made by {#client}, the
      # socket, the temporary directory. Idempotent.
      def close
        @clients_lock.synchronize { @clients.dup.tap { @clients.clear } }.each(&:shutdown)
        @native.close
        FileUtils.rm_rf(@tmpdir) if @tmpdir
        nil
      end

      # @return [Boolean] whether it is serving
      def running?
        @native.running?
      end

      # @return [String] a summary for debugging (never a key or a token)
      def inspect
        "#<Spiffe::Testing::Agent #{@trust_domain} #{@socket_path}#{running? ? '' : ' stopped'}>"
      end

      private

      ENTRY_KEYS = %i[spiffe_id selectors hint entry_id x509_svid_ttl jwt_svid_ttl federates_with].freeze

      def entry_hash(entry)
        entry = { spiffe_id: entry } unless entry.is_a?(Hash)
        unknown = entry.keys - ENTRY_KEYS
        raise ArgumentError, "unknown entry option #{unknown.first.inspect} (known: #{ENTRY_KEYS.join(', ')})" if unknown.any?

        hash = { spiffe_id: entry.fetch(:spiffe_id).to_s }
        hash[:selectors] = Array(entry[:selectors]).map(&:to_s) if entry[:selectors]
        hash[:hint] = entry[:hint].to_s if entry[:hint]
        hash[:entry_id] = entry[:entry_id].to_s if entry[:entry_id]
        hash[:x509_svid_ttl] = entry[:x509_svid_ttl].to_f if entry[:x509_svid_ttl]
        hash[:jwt_svid_ttl] = entry[:jwt_svid_ttl].to_f if entry[:jwt_svid_ttl]
        hash[:federates_with] = Array(entry[:federates_with]).map(&:to_s) if entry[:federates_with]
        hash
      end

      def key_type(type)
        unless KEY_TYPES.include?(type.to_sym)
          raise ArgumentError, "unknown key type #{type.inspect} (known: #{KEY_TYPES.join(', ')})"
        end

        type.to_s.tr("_", "-")
      end
    end
  end
end
