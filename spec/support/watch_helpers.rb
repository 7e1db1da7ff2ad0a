# frozen_string_literal: true

# For specs that follow rotations.
module WatchHelpers
  # Reconnect quickly in tests.
  def fast_backoff
    Spiffe::Backoff.new(initial: 0.02, max: 0.2, multiplier: 2, jitter: 0.1)
  end

  # Waits are wall-clock; under GC_STRESS=1 everything is ~20x slower.
  def self.scale(seconds)
    ENV["GC_STRESS"] == "1" ? seconds * 20 : seconds
  end

  # Pops from a queue, failing instead of hanging.
  def pop_within(queue, seconds = 5)
    seconds = WatchHelpers.scale(seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    loop do
      return queue.pop(true)
    rescue ThreadError
      raise "nothing arrived within #{seconds}s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.005
    end
  end

  # Waits until the block is true.
  def eventually(seconds = 5)
    seconds = WatchHelpers.scale(seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    until yield
      raise "condition not met within #{seconds}s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.01
    end
  end

  def open_fds
    Dir.children("/proc/self/fd").size
  end
end

RSpec.configure { |c| c.include WatchHelpers }
