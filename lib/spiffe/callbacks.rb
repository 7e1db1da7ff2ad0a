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

    def delete(block)
      @lock.synchronize { @blocks = (@blocks - [block]).freeze }
    end

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

    attr_writer :logger

    def add(block)
      @handlers.add(block)
    end

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
