# frozen_string_literal: true

require "time"
require "spiffe/cli/command"

module Spiffe
  class CLI
    # `spiffe jwt`: fetch a JWT-SVID.
    class JWT < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe jwt --audience AUD [--audience AUD...] [--spiffe-id ID] [--hint H] [--write FILE | --json]

        Fetches a JWT-SVID for the audiences and prints the token alone on
        stdout, for `TOKEN=$(spiffe jwt --audience api)`. With --write FILE the
        token goes to FILE (mode 0600, atomically) and stdout gets its SPIFFE
        ID, audience and expiry instead. --json prints those and the token.

        Options:
      TEXT

      private

      def options(opts)
        workload_api_options(opts)
        @audience = []
        opts.on("-a", "--audience AUD", "audience (repeatable; required)") { |v| @audience << v }
        opts.on("--spiffe-id ID", "which of this process's identities (default: the first)") { |v| @spiffe_id = v }
        opts.on("--hint HINT", "the identity whose registration entry has this hint") { |v| @hint = v }
        opts.on("--write FILE", "write the token to FILE instead of stdout") { |v| @file = v }
        opts.on("--json", "print JSON with the token") { @json = true }
      end

      def execute(arguments)
        usage!("unexpected argument #{arguments.first.inspect}") unless arguments.empty?
        usage!("--audience is required") if @audience.empty?
        usage!("--write and --json do not go together") if @file && @json

        svid = client.jwt_svid(audience: @audience, spiffe_id: @spiffe_id, hint: @hint)
        summary = { spiffe_id: svid.spiffe_id.to_s, audience: svid.audience, expires_at: time(svid.expires_at) }
        return json(summary.merge(hint: svid.hint, token: svid.token)) if @json
        return @out.puts(svid.token) || EXIT_OK unless @file

        Files.write(@file, "#{svid.token}\n", mode: 0o600, error: Failure)
        @out.puts("#{summary[:spiffe_id]} audience=#{svid.audience.join(',')} expires=#{summary[:expires_at]} -> #{@file}")
        EXIT_OK
      end
    end
  end
end
