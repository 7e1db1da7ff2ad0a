# frozen_string_literal: true

require_relative "lib/spiffe/version"

Gem::Specification.new do |spec|
  spec.name = "spiffe-workload"
  spec.version = Spiffe::VERSION
  spec.summary = "Native SPIFFE Workload API client for Ruby: X.509 and JWT SVIDs, bundles, mTLS"
  spec.description = <<~DESC
    Fetches X.509-SVIDs and JWT-SVIDs from the SPIFFE Workload API (SPIRE agent) over its
    Unix socket from inside the Ruby process, so the agent attests Ruby itself. The core is
    Rust (tokio, tonic); calls release the GVL and are interruptible and fork-safe.
  DESC
  spec.authors = ["spiffe-workload developers"]
  spec.license = "Apache-2.0"
  spec.required_ruby_version = ">= 3.1"
  spec.files = Dir[
    "lib/**/*.rb", "exe/*", "sig/**/*.rbs", "README.md",
    "Cargo.toml", "Cargo.lock",
    "ext/spiffe_workload/extconf.rb", "ext/*/Cargo.toml", "ext/*/build.rs",
    "ext/*/src/**/*.rs", "ext/*/proto/*.proto"
  ]
  spec.bindir = "exe"
  spec.executables = ["spiffe"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/spiffe_workload/extconf.rb"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
