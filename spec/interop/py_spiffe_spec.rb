# frozen_string_literal: true

require "spec_helper"
require "open3"

# The official Python client (py-spiffe, `pip install spiffe`) against our
# embedded agent: it must accept everything the agent sends and see what the gem sees.
RSpec.describe "interop with py-spiffe" do
  let(:agent) { start_agent(entries: [{ spiffe_id: "spiffe://example.org/py", hint: "py" }], intermediate: true) }

  it "fetches the same identity, certificates and bundle as the gem" do
    seen = py_spiffe("fetch", agent.socket_path, "interop")
    svid = agent.client.x509_svid
    expect(seen["spiffe_id"]).to eq(svid.spiffe_id.to_s)
    expect(seen["chain"].map { |b| b.unpack1("m0") }).to eq(svid.cert_chain_der)
    expect(seen["x509_roots"].map { |b| b.unpack1("m0") }).to eq(svid.bundle.authorities_der)
  end

  it "verifies the agent's JWT-SVIDs against the same JWT bundle as the gem" do
    seen = py_spiffe("fetch", agent.socket_path, "interop")
    expect(seen["jwt_verified_subject"]).to eq("spiffe://example.org/py")
    expect(seen["validated"]).to eq("spiffe://example.org/py")
    gem_bundle = agent.client.jwt_bundles["example.org"]
    expect(seen["jwt_keys"].keys).to eq(gem_bundle.key_ids)
    seen["jwt_keys"].each do |kid, der|
      expect(gem_bundle.find_jwt_authority(kid).public_to_der).to eq(der.unpack1("m0"))
    end
    expect(agent.client.validate_jwt_svid(seen["jwt_token"], audience: "interop").spiffe_id.to_s)
      .to eq("spiffe://example.org/py")
  end

  it "streams rotations" do
    rotating = start_agent(entries: ["spiffe://example.org/py"], x509_svid_ttl: 1)
    seen = py_spiffe("stream", rotating.socket_path, "3")
    expect(seen["errors"]).to eq([])
    expect(seen["serials"].size).to be >= 3
    expect(seen["serials"].uniq.size).to eq(seen["serials"].size)
  end

  it "sees PermissionDenied when no entry matches it" do
    only_ruby = start_agent(entries: [{ spiffe_id: "spiffe://example.org/ruby",
                                        selectors: ["unix:path:#{File.realpath(RbConfig.ruby)}"] }])
    seen = py_spiffe("whoami", only_ruby.socket_path)
    expect(seen["error"]).to eq("FetchX509SvidError")
    expect(seen["message"]).to include("no identity issued").and include("PERMISSION_DENIED")
  end
end
