# frozen_string_literal: true

require "spec_helper"

RSpec.describe "X.509-SVIDs outside the Workload API" do
  let(:agent) do
    start_agent(entries: ["spiffe://example.org/w"], federated_trust_domains: ["partner.org"], intermediate: true)
  end
  let(:svid) { agent.client.x509_svid }
  let(:dir) { Dir.mktmpdir }

  after { FileUtils.rm_rf(dir) }

  def pem_chain(svid)
    svid.cert_chain.map(&:to_pem).join
  end

  it "parses PEM and DER, keys in PKCS#8, SEC1 or DER" do
    from_pem = Spiffe::X509SVID.parse(pem_chain(svid), svid.private_key.private_to_pem)
    expect(from_pem).to eq(svid)
    expect(from_pem.cert_chain.size).to eq(2)
    sec1 = svid.private_key.to_pem # EC keys export as SEC1
    expect(Spiffe::X509SVID.parse(svid.cert_chain_der.join, sec1).spiffe_id.to_s).to eq("spiffe://example.org/w")
    expect(Spiffe::X509SVID.parse(pem_chain(svid), svid.private_key_der).private_key_der).to eq(svid.private_key_der)
  end

  it "loads files as spiffe-helper writes them" do
    File.write(File.join(dir, "svid.pem"), pem_chain(svid))
    File.write(File.join(dir, "svid_key.pem"), svid.private_key.private_to_pem)
    loaded = Spiffe::X509SVID.load(File.join(dir, "svid.pem"), File.join(dir, "svid_key.pem"), bundle: svid.bundle)
    expect(loaded).to eq(svid)
    expect(loaded.bundle).to eq(svid.bundle)
    expect { Spiffe::X509SVID.load(File.join(dir, "none.pem"), File.join(dir, "svid_key.pem")) }
      .to raise_error(Spiffe::SVIDError, /cannot read/)
  end

  it "rejects a key that does not match and input that is not an SVID" do
    other = agent.mint_x509_svid("spiffe://example.org/other")
    expect { Spiffe::X509SVID.parse(pem_chain(svid), other.private_key.private_to_pem) }
      .to raise_error(Spiffe::SVIDError, /leaf certificate does not match private key/)
    expect { Spiffe::X509SVID.parse("garbage", svid.private_key.private_to_pem) }
      .to raise_error(Spiffe::SVIDError, /cannot parse DER encoded certificate/)
    expect { Spiffe::X509SVID.parse(pem_chain(svid), "not a key") }.to raise_error(Spiffe::SVIDError, /private key/)
    root = agent.x509_bundle.x509_authorities.first
    expect { Spiffe::X509SVID.parse(root.to_pem, svid.private_key.private_to_pem) }
      .to raise_error(Spiffe::SVIDError, /non-root path/)
  end

  it "verifies a chain against the leaf's own trust domain bundle" do
    id, chain = svid.verify(agent.client.x509_bundles)
    expect(id.to_s).to eq("spiffe://example.org/w")
    expect(chain.map(&:to_der)).to eq(svid.cert_chain_der + agent.x509_bundle.authorities_der)
  end

  it "fails verification with a reason" do
    bundles = agent.client.x509_bundles
    foreign = agent.mint_x509_svid("spiffe://partner.org/api")
    expect { foreign.verify(bundles) }.to raise_error(Spiffe::SVIDError, /no X.509 bundle for trust domain "partner.org"/)
    expect(foreign.verify(Spiffe::X509BundleSet.new([agent.x509_bundle("partner.org")])).first.to_s)
      .to eq("spiffe://partner.org/api")
    expect { svid.verify(bundles, at: Time.now + (2 * 3600)) }.to raise_error(Spiffe::SVIDError, /expired/)
    expect { Spiffe::X509SVID.verify([svid.leaf_certificate], bundles) }
      .to raise_error(Spiffe::SVIDError, /unable to get local issuer certificate/) # intermediate missing
    root = agent.x509_bundle.x509_authorities.first
    expect { Spiffe::X509SVID.verify([root], bundles) }.to raise_error(Spiffe::SVIDError, /must not be a CA/)
  end
end
