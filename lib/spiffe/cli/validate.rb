# frozen_string_literal: true

require "time"
require "spiffe/cli/command"

module Spiffe
  class CLI
    # `spiffe validate`: ask the agent whether a JWT-SVID is valid.
    class Validate < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe validate TOKEN --audience AUD [--json]

        Validates a JWT-SVID with the Workload API (signature, expiry, audience,
        trust domain) and prints its SPIFFE ID and expiry, or its claims with
        --json. TOKEN may be - to read it from stdin (keeps it out of `ps`).
        Exits 65 if the token is not valid.

        Options:
      TEXT

      private

      def options(opts)
        workload_api_options(opts)
        opts.on("-a", "--audience AUD", "the audience this service expects (required)") { |v| @audience = v }
        opts.on("--json", "print the claims as JSON") { @json = true }
      end

      def execute(arguments)
        usage!("give exactly one TOKEN (or - for stdin)") unless arguments.size == 1
        usage!("--audience is required") unless @audience

        token = arguments.first == "-" ? $stdin.read.to_s.strip : arguments.first
        usage!("the token is empty") if token.empty?
        svid = client.validate_jwt_svid(token, audience: @audience)
        return json(svid.claims) if @json

        @out.puts("valid: #{svid.spiffe_id} audience=#{svid.audience.join(',')} expires=#{time(svid.expires_at)}")
        EXIT_OK
      end
    end
  end
end
