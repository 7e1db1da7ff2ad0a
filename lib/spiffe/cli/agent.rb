# frozen_string_literal: true

require "yaml"
require "spiffe/cli/command"

module Spiffe
  class CLI
    # `spiffe agent`: the embedded Workload API agent as a process.
    class Agent < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe agent --config FILE [--socket PATH]

        Runs the embedded Workload API agent until SIGINT or SIGTERM. It attests
        callers by their uid, gid, user, group and executable like SPIRE's unix
        attestor, and issues the identities of matching registration entries.

        The config file is YAML or JSON:

          trust_domain: example.org
          socket_path: /tmp/spire-agent/public/api.sock   # default
          x509_svid_ttl: 3600                              # seconds
          jwt_svid_ttl: 300
          federated_trust_domains: [partner.org]
          entries:
            - spiffe_id: spiffe://example.org/web
              selectors: ["unix:uid:1000"]
              hint: web
              federates_with: [partner.org]
            - spiffe_id: spiffe://example.org/cron
              selectors: ["unix:path:/usr/bin/ruby3.1", "unix:user:deploy"]

        It prints the endpoint as SPIFFE_ENDPOINT_SOCKET=unix:///... once serving.

        Options:
      TEXT

      # Where the agent listens unless the config or --socket says otherwise (SPIRE's default).
      DEFAULT_SOCKET = "/tmp/spire-agent/public/api.sock"

      private

      def waits_for_signal?
        true
      end

      def options(opts)
        opts.on("--config FILE", "YAML or JSON configuration") { |v| @config_path = v }
        opts.on("--socket PATH", "socket path (overrides the config)") { |v| @socket = v }
      end

      def execute(arguments)
        usage!("unexpected argument #{arguments.first.inspect}") unless arguments.empty?
        usage!("--config FILE is required") unless @config_path

        options = load_config(@config_path)
        options[:socket_path] = @socket || options[:socket_path] || DEFAULT_SOCKET
        serve(options)
      end

      def load_config(path)
        text = File.read(path)
        data = path.end_with?(".json") ? JSON.parse(text) : YAML.safe_load(text)
        raise Failure, "#{path}: expected a mapping of settings" unless data.is_a?(Hash)

        symbolize(data)
      rescue Errno::ENOENT, Errno::EACCES => e
        raise Failure, "cannot read #{path}: #{e.message}"
      rescue JSON::ParserError, Psych::Exception => e
        raise Failure, "#{path} is not valid YAML or JSON: #{e.message}"
      end

      def symbolize(value)
        case value
        when Hash then value.to_h { |k, v| [k.to_sym, symbolize(v)] }
        when Array then value.map { |v| symbolize(v) }
        else value
        end
      end

      def serve(options)
        require "spiffe/testing"
        agent = begin
          Spiffe::Testing::Agent.new(**options)
        rescue ArgumentError => e
          raise Failure, "invalid configuration: #{e.message}"
        end
        entries = Array(options[:entries]).size
        log("serving trust domain #{agent.trust_domain} (#{entries} entries); Ctrl-C to stop")
        @out.puts("SPIFFE_ENDPOINT_SOCKET=#{agent.address}")
        @out.flush
        log("#{wait_for_signal} received, stopping")
        EXIT_OK
      ensure
        agent&.close
      end
    end
  end
end
