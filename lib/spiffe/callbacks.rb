# frozen_string_literal: true

module Spiffe
  # Subscribers of an event, each called in turn. An exception in one is
  # reported and does not stop the others or the watch that fired them.
  # @api private
  class Callbacks
    # @param reporter [ErrorReporter]
    def initialize(reporter)
      @reporter = reporter
      @blocks = []
      @lock = Mutex.new
    end

    # @return [Proc] the block, to pass to {#delete}
    def add(block)
      raise ArgumentError, "a block is required" unless block

      @lock.synchronize { @blocks = [*@blocks, block].freeze }
      block
    end

    # @param block [Proc] a callback given to {#add}
    # @return [Proc, nil] the removed callback
    def delete(block)
      @lock.synchronize { @blocks = (@blocks - [block]).freeze }
    end

    # Calls every callback with the arguments; a callback that raises is
    # reported, not propagated.
    # @return [void]
    def call(*args)
      @blocks.each do |block|
        block.call(*args)
      rescue StandardError => e
        @reporter.report(e, "a #{block.class} registered with spiffe-workload raised")
      end
    end

    def empty?
      @blocks.empty?
    end
  end

  # Where errors seen while watching go: `on_error` handlers, else a logger,
  # else a warning on stderr. Messages never contain keys or tokens.
  # @api private
  class ErrorReporter
    def initialize(logger: nil)
      @logger = logger
      @handlers = Callbacks.new(self)
    end

    # Where errors go when no callback is registered: anything with `#warn`, or nil.
    attr_writer :logger

    # @param block [Proc] called with each error
    # @return [Proc] the block, for {Callbacks#delete}
    def add(block)
      @handlers.add(block)
    end

    # Hands an error to the callbacks, or to the logger if there are none.
    # @param error [Exception]
    # @return [void]
    def report(error, context = nil)
      text = "spiffe-workload: #{context ? "#{context}: " : ''}#{error.class}: #{error.message}"
      if !@handlers.empty?
        @handlers.call(error)
      elsif @logger
        @logger.warn(text)
      else
        warn(text)
      end
    rescue StandardError => e
      warn("spiffe-workload: an on_error handler raised #{e.class}: #{e.message}")
    end
  end
end
