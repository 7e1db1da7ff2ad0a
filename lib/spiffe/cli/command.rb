# frozen_string_literal: true

require "spiffe/cli"

module Spiffe
  class CLI
    # What every subcommand shares: option parsing with --help, the Workload
    # API options, output streams, and waiting for SIGINT/SIGTERM.
    # @api private
    class Command
      def initialize(name, out, err)
        @name = name
        @out = out
        @err = err
        @socket = nil
        @timeout = WorkloadAPIClient::DEFAULT_TIMEOUT
      end

      # @return [Integer] the exit status
      def run(argv)
        help = nil
        parser = OptionParser.new do |opts|
          opts.banner = self.class::HELP
          options(opts)
          opts.on("-h", "--help", "this help") { help = opts.to_s }
        end
        arguments = parser.parse(argv)
        return @out.puts(help) || EXIT_OK if help
        return execute(arguments) unless waits_for_signal?

        # Trap before anything else, so a signal that comes while the command
        # sets up is not lost: wait_for_signal will see it.
        with_signal_traps { execute(arguments) }
      ensure
        @client&.shutdown
      end

      private

      def workload_api_options(opts)
        opts.on("--socket PATH", "Workload API socket or address (default: SPIFFE_ENDPOINT_SOCKET)") { |v| @socket = v }
        opts.on("--timeout SECONDS", Float, "per-call deadline (default #{@timeout})") { |v| @timeout = v }
      end

      def client
        @client ||= Spiffe.workload_api_client(socket_path: @socket, timeout: @timeout)
      end

      def usage!(message)
        raise Failure.new("#{@name}: #{message} (see `spiffe #{@name} --help`)", EXIT_USAGE)
      end

      def log(message)
        @err.puts("spiffe #{@name}: #{message}")
      end

      def json(value)
        @out.puts(JSON.pretty_generate(value))
        EXIT_OK
      end

      # Whether the command runs until SIGINT or SIGTERM ({#wait_for_signal}).
      def waits_for_signal?
        false
      end

      # A self-pipe: trap handlers must not block or take locks.
      def with_signal_traps
        @signals, writer = IO.pipe
        previous = %w[INT TERM].to_h { |sig| [sig, trap(sig) { writer.write_nonblock("#{sig}\n", exception: false) }] }
        yield
      ensure
        previous&.each { |sig, handler| trap(sig, handler || "DEFAULT") }
        [@signals, writer].each { |io| io&.close }
      end

      # Blocks until SIGINT or SIGTERM (even one that came earlier), then
      # returns the signal's name.
      def wait_for_signal
        @signals.gets.chomp
      end

      def time(value)
        value.utc.iso8601
      end

      def remaining(expires_at)
        seconds = (expires_at - Time.now).round
        seconds >= 120 ? "in #{seconds / 60} min" : "in #{seconds} s"
      end
    end
  end
end
