# frozen_string_literal: true

require "optparse"
require "json"
require "spiffe"

module Spiffe
  # The `spiffe` command: a dispatcher over one class per subcommand
  # (`lib/spiffe/cli/*.rb`), with exit codes a script can rely on.
  class CLI
    # Exit statuses (sysexits.h where one fits).
    EXIT_OK = 0
    # Anything not listed below.
    EXIT_FAILURE = 1
    # Bad command line or configuration (EX_USAGE).
    EXIT_USAGE = 64
    # A token, SVID or bundle that is invalid (EX_DATAERR).
    EXIT_INVALID = 65
    # No Workload API answered: socket missing, refused, timed out (EX_UNAVAILABLE).
    EXIT_UNAVAILABLE = 69
    # The agent has no identity for this process, or refused it (EX_NOPERM).
    EXIT_NO_IDENTITY = 77

    # A failure with a message for stderr and an exit status.
    class Failure < StandardError
      attr_reader :status

      def initialize(message, status = EXIT_FAILURE)
        super(message)
        @status = status
      end
    end

    # Subcommand name => [file to require, class name, summary].
    COMMANDS = {
      "x509" => ["spiffe/cli/x509", :X509, "fetch the X.509-SVID: print it, write it, keep it fresh (--daemon)"],
      "jwt" => ["spiffe/cli/jwt", :JWT, "fetch a JWT-SVID for an audience"],
      "bundles" => ["spiffe/cli/bundles", :Bundles, "print or write the trust bundles (X.509 or --jwt)"],
      "validate" => ["spiffe/cli/validate", :Validate, "validate a JWT-SVID with the agent"],
      "watch" => ["spiffe/cli/watch", :Watch, "print every X.509-SVID rotation until interrupted"],
      "agent" => ["spiffe/cli/agent", :Agent, "run the embedded Workload API agent (development, tests)"],
      "demo" => ["spiffe/cli/demo", :Demo, "a short tour on the embedded agent"]
    }.freeze

    # The top-level --help text.
    USAGE = <<~TEXT
      Usage: spiffe COMMAND [options]

      Commands:
      #{COMMANDS.map { |name, (_, _, about)| format('  %-9s %s', name, about) }.join("\n")}

      Every command that talks to the Workload API takes --socket PATH (else
      SPIFFE_ENDPOINT_SOCKET, else SPIRE's default) and --timeout SECONDS.
      Run `spiffe COMMAND --help` for a command's options.

      Exit status:
        0   success
        1   any other failure
        64  bad usage or configuration
        65  invalid token, SVID or bundle
        69  the Workload API is unavailable (no socket, refused, timed out)
        77  no identity issued to this process, or permission denied
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
      name, *rest = argv
      case name
      when "--version", "-v" then @out.puts(Spiffe::VERSION) || EXIT_OK
      when nil, "--help", "-h", "help" then @out.puts(USAGE) || EXIT_OK
      else command(name).new(name, @out, @err).run(rest)
      end
    rescue Failure => e
      fail_with(e.message, e.status)
    rescue OptionParser::ParseError => e
      fail_with("#{e.message} (see `spiffe #{name} --help`)", EXIT_USAGE)
    rescue Spiffe::Error => e
      fail_with("#{e.class.name.split('::').last}: #{e.message}", self.class.status_for(e))
    end

    # @return [Integer] the exit status for a library error
    def self.status_for(error)
      case error
      when ConnectionError then EXIT_UNAVAILABLE
      when PermissionDeniedError then EXIT_NO_IDENTITY
      when ConfigurationError then EXIT_USAGE
      when JWTError, SVIDError, BundleError, InvalidIDError, InvalidArgumentError then EXIT_INVALID
      else EXIT_FAILURE
      end
    end

    private

    def command(name)
      path, constant, = COMMANDS.fetch(name) { raise Failure.new("unknown command #{name.inspect}\n\n#{USAGE}", EXIT_USAGE) }
      require path
      CLI.const_get(constant)
    end

    def fail_with(message, status)
      @err.puts("spiffe: #{message}")
      status
    end
  end
end
