# frozen_string_literal: true

require "optparse"
require "json"
require "yaml"

module Spiffe
  # The `spiffe` command.
  class CLI
    # A failure a script can rely on: message on stderr, exit status.
    class Failure < StandardError
      attr_reader :status

      def initialize(message, status = 1)
        super(message)
        @status = status
      end
    end

    USAGE = <<~TEXT
      Usage: spiffe COMMAND [options]

      Commands:
        agent    run the embedded Workload API agent (for development and tests)

      Run `spiffe COMMAND --help` for a command's options.
    TEXT

    # @param argv [Array<String>]
    # @return [Integer] the exit status
    def self.run(argv, out: $stdout, err: $stderr)
      new(out, err).run(argv)
    end

    def initialize(out, err)
      @out = out
      @err = err
    end

    # @return [Integer] the exit status
    def run(argv)
      command, *rest = argv
      case command
      when "agent" then agent(rest)
      when "--version", "-v" then @out.puts(Spiffe::VERSION) || 0
      when nil, "--help", "-h", "help" then @out.puts(USAGE) || 0
      else raise Failure.new("unknown command #{command.inspect}\n\n#{USAGE}", 64)
      end
    rescue Failure => e
      @err.puts("spiffe: #{e.message}")
      e.status
    rescue OptionParser::ParseError => e
      @err.puts("spiffe: #{e.message}")
      64
    rescue Spiffe::Error => e
      @err.puts("spiffe: #{e.class.name.split('::').last}: #{e.message}")
      1
    end

    private

    AGENT_HELP = <<~TEXT
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

    DEFAULT_SOCKET = "/tmp/spire-agent/public/api.sock"

    def agent(argv)
      config_path = nil
      socket = nil
      parser = OptionParser.new do |opts|
        opts.banner = AGENT_HELP
        opts.on("--config FILE", "YAML or JSON configuration") { |v| config_path = v }
        opts.on("--socket PATH", "socket path (overrides the config)") { |v| socket = v }
        opts.on("-h", "--help", "this help") do
          @out.puts(opts)
          return 0
        end
      end
      parser.parse!(argv)
      raise Failure.new("agent: --config FILE is required\n\n#{parser}", 64) unless config_path

      options = load_config(config_path)
      options[:socket_path] = socket || options[:socket_path] || DEFAULT_SOCKET
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
      # Self-pipe: trap handlers may not block, and a Queue with no other
      # thread alive trips Ruby's deadlock detection.
      wake, signaled = IO.pipe
      %w[INT TERM].each { |signal| trap(signal) { signaled.write_nonblock("#{signal}\n", exception: false) } }
      entries = Array(options[:entries]).size
      @err.puts("spiffe agent: serving trust domain #{agent.trust_domain} (#{entries} entries); Ctrl-C to stop")
      @out.puts("SPIFFE_ENDPOINT_SOCKET=#{agent.address}")
      @out.flush
      signal = wake.gets.chomp
      @err.puts("spiffe agent: #{signal} received, stopping")
      0
    ensure
      agent&.close
    end
  end
end
