# frozen_string_literal: true

require "spiffe/testing"

module Spiffe
  module Testing
    # RSpec helpers for suites of apps that use SPIFFE.
    #
    # @example spec/spec_helper.rb
    #   require "spiffe/testing/rspec"
    #   RSpec.configure { |c| c.include Spiffe::Testing::RSpec }
    #
    # @example a group whose code finds the agent through SPIFFE_ENDPOINT_SOCKET
    #   RSpec.describe PaymentsClient do
    #     use_spiffe_agent(entries: ["spiffe://example.org/payments"])
    #
    #     it "authenticates" do
    #       expect(PaymentsClient.new.identity).to eq("spiffe://example.org/payments")
    #       spiffe_agent.rotate!   # the agent is there to drive, too
    #     end
    #   end
    module RSpec
      # The environment variable the helpers set to the agent's address.
      ENDPOINT_ENV = "SPIFFE_ENDPOINT_SOCKET"

      # Class-level helpers.
      module ClassMethods
        # Starts an agent for each example, exposed as `spiffe_agent`, with
        # SPIFFE_ENDPOINT_SOCKET pointing at it during the example.
        # @param options [Hash] see {Agent.start}
        def use_spiffe_agent(**options)
          let(:spiffe_agent) { start_spiffe_agent(**options) }
          around do |example|
            saved = ENV.fetch(ENDPOINT_ENV, nil)
            ENV[ENDPOINT_ENV] = spiffe_agent.address
            example.run
          ensure
            saved ? ENV[ENDPOINT_ENV] = saved : ENV.delete(ENDPOINT_ENV)
          end
        end
      end

      # Adds the helpers to an example group.
      # @param group [Module]
      # @return [void]
      def self.included(group)
        group.extend(ClassMethods)
        group.after { @spiffe_agents&.each(&:close) }
      end

      # Starts an agent that is closed after the example.
      # @param options [Hash] see {Agent.start}
      # @return [Agent]
      def start_spiffe_agent(**options)
        agent = Agent.start(**options)
        (@spiffe_agents ||= []) << agent
        agent
      end
    end
  end
end
