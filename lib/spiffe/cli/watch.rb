# frozen_string_literal: true

require "time"
require "spiffe/cli/command"

module Spiffe
  class CLI
    # `spiffe watch`: a line per X.509-SVID update, until interrupted.
    class Watch < Command
      # The command's --help text.
      HELP = <<~TEXT
        Usage: spiffe watch [--hint H]

        Prints a line for the current X.509-SVID and one for every rotation
        (time, SPIFFE ID, serial, expiry), until SIGINT or SIGTERM. Errors while
        following the agent (it restarted, it has no identity for us) go to
        stderr; the watch reconnects by itself.

        Options:
      TEXT

      private

      def waits_for_signal?
        true
      end

      def options(opts)
        workload_api_options(opts)
        opts.on("--hint HINT", "follow the SVID with this hint") { |v| @hint = v }
      end

      def execute(arguments)
        usage!("unexpected argument #{arguments.first.inspect}") unless arguments.empty?

        source = client.x509_source(hint: @hint, on_error: ->(e) { log("#{e.class.name.split('::').last}: #{e.message}") })
        lock = Mutex.new
        # Follow first, then print: a rotation in between is not missed.
        source.on_update { lock.synchronize { print_line(source.x509_svid) } }
        lock.synchronize { print_line(source.x509_svid) }
        log("#{wait_for_signal} received, stopping")
        EXIT_OK
      ensure
        source&.close
      end

      def print_line(svid)
        @out.puts("#{time(Time.now)} #{svid.spiffe_id} serial=#{svid.leaf_certificate.serial.to_s(16)} " \
                  "expires=#{time(svid.expires_at)}")
        @out.flush
      end
    end
  end
end
