# frozen_string_literal: true

module Spiffe
  # Restarts watches in a forked child (Puma, Unicorn, Sidekiq preforking):
  # a child inherits no threads and must open its own connection, so that the
  # agent attests the child. Hooks `Process._fork` (Ruby >= 3.1).
  # @api private
  module ForkTracker
    @watches = ObjectSpace::WeakMap.new
    @lock = Mutex.new

    class << self
      # Closed watches stay until collected and skip themselves after fork
      # (WeakMap#delete needs Ruby 3.3).
      def register(watch)
        @lock.synchronize { @watches[watch] = watch }
      end

      # Runs in the child right after fork, on the forking thread.
      def after_fork_in_child
        @lock = Mutex.new
        @watches.keys.each(&:after_fork_in_child)
      end
    end

    # Prepended to Process's singleton class.
    module Hook
      # Ruby's fork hook (3.1+): notifies the tracker in the child.
      # @return [Integer, nil] what `fork` returns
      def _fork
        pid = super
        ForkTracker.after_fork_in_child if pid.zero?
        pid
      end
    end

    Process.singleton_class.prepend(Hook)
  end
end
