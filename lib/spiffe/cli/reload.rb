# frozen_string_literal: true

module Spiffe
  class CLI
    # What `spiffe x509 --daemon` does after writing new files: run a command
    # and/or signal a process, logging the outcome.
    # @api private
    class Reload
      # @param exec [String, nil] a shell command
      # @param signal [String, nil] `PID:SIG` or `PIDFILE:SIG`
      # @param log [#call]
      def initialize(exec:, signal:, log:)
        @exec = exec
        @log = log
        @target, @signal = parse_signal(signal) if signal
      end

      # Runs the command and/or sends the signal.
      # @return [void]
      def call
        run_command if @exec
        send_signal if @signal
      end

      private

      def parse_signal(spec)
        target, _, name = spec.rpartition(":")
        raise Failure.new("--signal wants PID:SIG or PIDFILE:SIG, got #{spec.inspect}", EXIT_USAGE) if target.empty? || name.empty?

        name = name.delete_prefix("SIG").upcase
        raise Failure.new("--signal: unknown signal #{name.inspect}", EXIT_USAGE) unless Signal.list.key?(name)

        [target, name]
      end

      def run_command
        ok = system(@exec)
        @log.call(ok ? "ran #{@exec.inspect}" : "#{@exec.inspect} failed (#{$?&.exitstatus || 'not run'})") # rubocop:disable Style/SpecialGlobalVars
      end

      def send_signal
        pid = @target.match?(/\A\d+\z/) ? Integer(@target) : Integer(File.read(@target).strip)
        Process.kill(@signal, pid)
        @log.call("sent SIG#{@signal} to #{pid}")
      rescue SystemCallError, ArgumentError => e
        @log.call("cannot signal #{@target}: #{e.message}")
      end
    end
  end
end
