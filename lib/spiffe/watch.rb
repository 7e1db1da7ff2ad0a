# frozen_string_literal: true

module Spiffe
  # One followed Workload API stream: a native watcher whose updates a Ruby
  # thread pulls (waiting without the GVL), turns into Ruby values once,
  # keeps as the current snapshot and hands to a callback. Shared by the
  # sources and the client's watch methods.
  # @api private
  class Watch
    # What a watch reports about its connection.
    Status = Struct.new(:connected, :last_error, :reconnects, :updated_at, keyword_init: true) do
      # @return [Boolean]
      def connected? = connected
    end

    # @return [Symbol] what is watched (:x509_context, :x509_bundles or :jwt_bundles)
    attr_reader :kind

    # @param open [#call] returns a new native watcher (called again after fork)
    # @param convert [#call] payload -> Ruby value
    # @param on_change [#call] called with each new value, on the watch's thread
    # @param on_error [#call] called with each error while watching
    def initialize(kind, open:, convert:, on_change:, on_error:)
      @kind = kind
      @open = open
      @convert = convert
      @on_change = on_change
      @on_error = on_error
      reset_process_state
      @native = @open.call
      ForkTracker.register(self)
    end

    # Follows the stream on a new thread.
    # @return [self]
    def start_thread
      @thread = Thread.new { run(raise_terminal: false) }
      @thread.name = "spiffe-watch-#{@kind}"
      @thread.report_on_exception = false
      self
    end

    # Follows the stream on the calling thread until closed or a terminal
    # error (raised if `raise_terminal`; sources expose it instead).
    def run(raise_terminal: true)
      @running = true
      native = @native
      version = 0
      loop do
        row = native.next(version, nil)
        break unless row

        version, ended = handle(row)
        break if ended
      end
      raise @terminal if raise_terminal && @terminal && !@closed

      nil
    ensure
      @running = false
    end

    # The current value; waits up to `timeout` for the first one in this
    # process (a forked child never serves its parent's identity).
    def value!(timeout)
      @lock.synchronize do
        wait_until(timeout) { @fresh }
        return @value if @fresh

        raise ClosedError, "the #{@kind} source was closed" if @closed
        raise @terminal if @terminal

        raise TimeoutError.new(
          "no #{@kind} update from the Workload API within #{timeout}s" +
            (@status.last_error ? " (last error: #{@status.last_error.message})" : ""),
          :deadline_exceeded
        )
      end
    end

    # @return [Object, nil] the current value, without waiting
    def value
      @value if @fresh
    end

    # Waits for an update after the current one.
    # @return [Boolean] false on timeout
    def wait_until_updated(timeout)
      @lock.synchronize do
        seen = @updates
        wait_until(timeout) { @updates > seen || @closed }
        raise ClosedError, "the #{@kind} source was closed" if @closed

        @updates > seen
      end
    end

    # @return [Status]
    attr_reader :status

    def closed?
      @closed
    end

    # @return [Exception, nil] the error that ended the watch
    attr_reader :terminal

    # Stops following the stream; idempotent. Joins the watch thread.
    def close
      return if @closed

      @closed = true
      @native.close
      @lock.synchronize { @cond.broadcast }
      @thread.join(1) if @thread && @thread != Thread.current
      nil
    end

    # Called by ForkTracker in a forked child.
    def after_fork_in_child
      return if @closed

      was_following = @thread || @running
      reset_process_state
      @native = @open.call
      @thread = nil
      start_thread if was_following
    end

    private

    def reset_process_state
      @lock = Mutex.new
      @cond = ConditionVariable.new
      @native_seq = 0
      @errors_seen = 0
      @fresh = false
      @updates ||= 0
      @closed ||= false
      @terminal = nil
      @running = false
      @status = Status.new(connected: false, last_error: nil, reconnects: 0, updated_at: nil)
    end

    def handle(row)
      version, seq, payload, last_error, errors, terminal, connected, reconnects = row
      if seq > @native_seq && payload
        @native_seq = seq
        publish(@convert.call(payload))
      end
      @status = Status.new(connected: connected, last_error: last_error, reconnects: reconnects,
                           updated_at: @status.updated_at)
      if errors > @errors_seen && last_error
        @errors_seen = errors
        @on_error.call(last_error) unless terminal && @closed
      end
      if terminal
        @terminal = terminal unless @closed
        @lock.synchronize { @cond.broadcast }
      end
      [version, !terminal.nil?]
    end

    def publish(value)
      @lock.synchronize do
        @value = value
        @fresh = true
        @updates += 1
        @status = Status.new(connected: true, last_error: nil, reconnects: @status.reconnects, updated_at: Time.now)
        @cond.broadcast
      end
      @on_change.call(value)
    end

    # Waits on the condition until the block is true, the watch ended, or the timeout.
    def wait_until(timeout)
      deadline = timeout && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout)
      until yield || @closed || @terminal
        remaining = deadline && (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC))
        break if remaining && remaining <= 0

        @cond.wait(@lock, remaining)
      end
    end
  end
end
