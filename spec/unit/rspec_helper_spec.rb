# frozen_string_literal: true

require "spec_helper"
require "spiffe/testing/rspec"

RSpec.describe Spiffe::Testing::RSpec do
  include described_class

  describe "use_spiffe_agent" do
    use_spiffe_agent(entries: ["spiffe://example.org/helper"])

    it "points SPIFFE_ENDPOINT_SOCKET at a running agent" do
      expect(ENV.fetch("SPIFFE_ENDPOINT_SOCKET")).to eq(spiffe_agent.address)
      expect(Spiffe.workload_api_client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/helper")
    end
  end

  it "closes agents it started after the example" do
    agent = start_spiffe_agent(entries: ["spiffe://example.org/x"])
    expect(agent).to be_running
    @spiffe_agents.each(&:close)
    expect(agent).not_to be_running
  end

  it "leaves SPIFFE_ENDPOINT_SOCKET as it found it" do
    expect(ENV.fetch("SPIFFE_ENDPOINT_SOCKET", nil)).to be_nil
  end
end
