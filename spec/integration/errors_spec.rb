# frozen_string_literal: true

require "spec_helper"

RSpec.describe "Workload API errors" do
  let(:agent) { start_agent(entries: ["spiffe://example.org/app"]) }
  let(:client) { Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 2) }

  it "says so when no registration entry matches the caller" do
    empty = start_agent(entries: [])
    expect { empty.client.x509_svid }.to raise_error(Spiffe::NoIdentityIssuedError) { |e|
      expect(e.message).to include("no identity issued", "pid #{Process.pid}", "unix:uid:#{Process.uid}")
      expect(e.code).to eq(:permission_denied)
      expect(e).to be_retriable
    }
    expect { empty.client.jwt_svid(audience: "a") }.to raise_error(Spiffe::NoIdentityIssuedError)
    expect { empty.client.x509_bundles }.to raise_error(Spiffe::NoIdentityIssuedError)
    expect { empty.client.jwt_bundles }.to raise_error(Spiffe::NoIdentityIssuedError)
  end

  it "tells a missing socket from a dead one" do
    dir = Dir.mktmpdir
    missing = Spiffe.workload_api_client(socket_path: File.join(dir, "none.sock"))
    expect { missing.x509_svid }.to raise_error(Spiffe::SocketNotFoundError) { |e|
      expect(e.message).to include("no Workload API socket at #{dir}/none.sock", "is the SPIRE agent running?",
                                   "SPIFFE_ENDPOINT_SOCKET")
      expect(e.code).to eq(:unavailable)
    }
    stale = File.join(dir, "stale.sock")
    UNIXServer.new(stale).close
    expect { Spiffe.workload_api_client(socket_path: stale).x509_svid }
      .to raise_error(Spiffe::ConnectionRefusedError, /nothing is listening on the Workload API socket/)
  ensure
    FileUtils.rm_rf(dir)
  end

  it "reports an agent that stopped" do
    client.x509_svid
    agent.stop
    expect { client.x509_svid }.to raise_error(Spiffe::SocketNotFoundError)
  end

  it "maps the agent's status codes to the error tree" do
    {
      unavailable: Spiffe::ConnectionError,
      permission_denied: Spiffe::PermissionDeniedError,
      invalid_argument: Spiffe::InvalidArgumentError,
      internal: Spiffe::WorkloadAPIError,
      unimplemented: Spiffe::WorkloadAPIError
    }.each do |status, klass|
      agent.inject_fault(status: status, message: "workload attestation failed")
      expect { client.x509_svid }.to raise_error(klass, /workload attestation failed/) { |e|
        expect(e).to be_an_instance_of(klass)
        expect(e.code).to eq(status)
      }
    end
    agent.clear_fault
    expect(client.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/app")
  end

  it "limits every call to timeout:" do
    agent.inject_fault(hang: true)
    quick = Spiffe.workload_api_client(socket_path: agent.socket_path, timeout: 0.3)
    took = elapsed do
      expect { quick.x509_svid }.to raise_error(Spiffe::TimeoutError, /did not answer within 300ms/) { |e|
        expect(e.code).to eq(:deadline_exceeded)
      }
    end
    expect(took).to be < 2
    expect { quick.jwt_svid(audience: "a") }.to raise_error(Spiffe::TimeoutError)
    agent.clear_fault
    expect(quick.x509_svid).to be_a(Spiffe::X509SVID)
  end

  it "only delays the RPCs a fault names" do
    agent.inject_fault(methods: ["FetchJWTSVID"], status: :unavailable)
    expect(client.x509_svid).to be_a(Spiffe::X509SVID)
    expect { client.jwt_svid(audience: "a") }.to raise_error(Spiffe::ConnectionError)
  end

  {
    svid_der: [Spiffe::SVIDError, /x509svid: cannot parse DER encoded certificate/],
    key_mismatch: [Spiffe::SVIDError, /leaf certificate does not match private key/],
    bundle_der: [Spiffe::BundleError, /x509bundle: cannot parse certificate/],
    empty_svids: [Spiffe::SVIDError, /no SVIDs in response/]
  }.each do |corrupt, (klass, message)|
    it "raises #{klass} for a malformed response (#{corrupt})" do
      agent.inject_fault(corrupt: corrupt)
      expect { client.x509_svid }.to raise_error(klass, message)
    end
  end

  it "raises BundleError for a malformed JWKS and JWTError for a malformed token" do
    agent.inject_fault(corrupt: :jwks)
    expect { client.jwt_bundles }.to raise_error(Spiffe::BundleError, /keyID cannot be empty/)
    agent.inject_fault(corrupt: :bundle_der)
    expect { client.x509_bundles }.to raise_error(Spiffe::BundleError)
    agent.inject_fault(corrupt: :jwt)
    expect { client.jwt_svid(audience: "a") }.to raise_error(Spiffe::JWTError, /unable to parse JWT token/)
  end
end
