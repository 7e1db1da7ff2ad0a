# frozen_string_literal: true

module Spiffe
  # What every auto-updating source shares: a client (its own, closed with
  # it, or a shared one), error reporting, update callbacks and lifecycle.
  module Source
    # Calls the block with each new update (never with an unchanged one), on
    # the source's thread. Exceptions are reported, not raised.
    # @return [Proc] the block (pass it to {#remove_callback})
    def on_update(&block)
      @callbacks.add(block)
    end

    # @param block [Proc] as returned by {#on_update}
    def remove_callback(block)
      @callbacks.delete(block)
    end

    # Waits for the next update.
    # @param timeout [Numeric, nil] seconds; nil waits forever
    # @return [Boolean] false on timeout
    def wait_until_updated(timeout: nil)
      watches.first.wait_until_updated(timeout)
    end

    # @return [Watch::Status] connected?, last_error, reconnects, updated_at
    def status
      watches.first.status
    end

    # Stops following the agent; later reads raise {ClosedError}. Idempotent.
    def close
      @closed = true
      watches.each(&:close)
      @client.shutdown if @owns_client && @client
      nil
    end

    def closed?
      @closed || watches.any?(&:closed?)
    end

    private

    def setup_source(client:, socket_path:, timeout:, logger:, on_error:)
      @owns_client = client.nil?
      @client = client || Spiffe.workload_api_client(socket_path: socket_path)
      @timeout = timeout
      @reporter = ErrorReporter.new(logger: logger)
      @reporter.add(on_error) if on_error
      @callbacks = Callbacks.new(@reporter)
      @watches = []
    end

    # Starts following a stream; its updates go to the {#on_update} blocks.
    def follow(kind, backoff)
      watch = @client.send(:start_watch, kind, backoff, @reporter) { |value| @callbacks.call(value) }
      @watches << watch
      watch
    end

    def read(watch)
      raise ClosedError, "the #{self.class.name.split('::').last} was closed" if closed?

      watch.value!(@timeout)
    end

    def watches
      @watches || []
    end
  end
end
