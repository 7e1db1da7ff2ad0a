# frozen_string_literal: true

# Starts an embedded agent per example and stops it afterwards.
module AgentHelpers
  def start_agent(**options)
    agent = Spiffe::Testing::Agent.start(**options)
    (@started_agents ||= []) << agent
    agent
  end

  def self.included(base)
    base.after { @started_agents&.each(&:close) }
  end

  # Seconds taken by the block.
  def elapsed
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    yield
    Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
  end
end

RSpec.configure { |c| c.include AgentHelpers }
