# frozen_string_literal: true

module Spiffe
  # How watchers reconnect after a stream ends or fails: waits of
  # `initial * multiplier**n`, capped at `max`, each drawn within ±`jitter`
  # (a fraction) of that, and reset after every update received.
  class Backoff
    attr_reader :initial, :max, :multiplier, :jitter

    # @param initial [Numeric] seconds before the first retry
    # @param max [Numeric] the longest wait, in seconds
    # @param multiplier [Numeric] growth per retry (>= 1)
    # @param jitter [Numeric] 0..1, the random spread of each wait
    def initialize(initial: 0.2, max: 30, multiplier: 2, jitter: 0.2)
      @initial = Float(initial)
      @max = Float(max)
      @multiplier = Float(multiplier)
      @jitter = Float(jitter)
      unless @initial.positive? && @max >= @initial && @multiplier >= 1 && (0..1).cover?(@jitter)
        raise ArgumentError, "backoff needs 0 < initial <= max, multiplier >= 1 and 0 <= jitter <= 1 (got #{inspect})"
      end

      freeze
    end

    # The default: 0.2 s doubling up to 30 s, ±20 %.
    DEFAULT = new

    # @return [Array(Float, Float, Float, Float)] initial, max, multiplier and jitter, for the native watcher
    # @api private
    def to_native
      [@initial, @max, @multiplier, @jitter]
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::Backoff initial=#{@initial} max=#{@max} multiplier=#{@multiplier} jitter=#{@jitter}>"
    end
  end
end
