# frozen_string_literal: true

require "spec_helper"

RSpec.describe "the error tree" do
  it "roots everything at Spiffe::Error < StandardError" do
    [Spiffe::InvalidIDError, Spiffe::SVIDError, Spiffe::BundleError, Spiffe::JWTError,
     Spiffe::WorkloadAPIError].each { |klass| expect(klass.superclass).to eq(Spiffe::Error) }
    expect(Spiffe::Error.superclass).to eq(StandardError)
  end

  it "puts Workload API failures under WorkloadAPIError" do
    expect(Spiffe::TimeoutError.ancestors).to include(Spiffe::ConnectionError, Spiffe::WorkloadAPIError)
    expect(Spiffe::SocketNotFoundError.superclass).to eq(Spiffe::ConnectionError)
    expect(Spiffe::ConnectionRefusedError.superclass).to eq(Spiffe::ConnectionError)
    expect(Spiffe::SocketPermissionError.superclass).to eq(Spiffe::ConnectionError)
    expect(Spiffe::NoIdentityIssuedError.superclass).to eq(Spiffe::PermissionDeniedError)
    [Spiffe::ConfigurationError, Spiffe::PermissionDeniedError, Spiffe::InvalidArgumentError,
     Spiffe::ClosedError, Spiffe::CanceledError].each do |klass|
      expect(klass.superclass).to eq(Spiffe::WorkloadAPIError)
    end
  end

  it "says which errors are worth retrying" do
    expect(Spiffe::ConnectionError.new("x", :unavailable)).to be_retriable
    expect(Spiffe::TimeoutError.new("x", :deadline_exceeded)).to be_retriable
    expect(Spiffe::NoIdentityIssuedError.new("x", :permission_denied)).to be_retriable
    expect(Spiffe::SocketPermissionError.new("x", :unavailable)).not_to be_retriable
    expect(Spiffe::InvalidArgumentError.new("x", :invalid_argument)).not_to be_retriable
    expect(Spiffe::WorkloadAPIError.new("x", :internal)).not_to be_retriable
    expect(Spiffe::WorkloadAPIError.new("x", :unavailable)).to be_retriable
    expect(Spiffe::ClosedError.new("x")).not_to be_retriable
  end

  it "turns a Rust panic into Spiffe::Error, never a crash or fatal" do
    expect { Spiffe::Native.panic_probe("boom") }
      .to raise_error(Spiffe::Error, /internal error in spiffe-workload.*boom/)
  end
end
