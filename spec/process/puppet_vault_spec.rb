# frozen_string_literal: true

require "spec_helper"
require "open3"

# examples/puppet end to end: the real `puppet apply` (Debian's Puppet 7)
# runs Deferred('spire_vault::lookup', ...) on the node, which logs in to a
# real OpenBao with the node's JWT-SVID and writes the secret to a 0600 file.
RSpec.describe "Puppet's spire_vault::lookup with OpenBao" do
  before(:all) { @bao = OpenBao.new(free_port) } # rubocop:disable RSpec/InstanceVariable
  after(:all) { @bao&.stop }

  let(:bao) { @bao } # rubocop:disable RSpec/InstanceVariable
  let(:puppet_dir) { File.expand_path("../../examples/puppet", __dir__) }
  let(:dir) { Dir.mktmpdir }
  let(:target) { File.join(dir, "db_password") }
  let(:agent) { start_agent(entries: [{ spiffe_id: "spiffe://example.org/puppet", selectors: ["unix:uid:#{Process.uid}"] }]) }

  before do
    bao.configure_jwt(agent.client.jwt_bundles["example.org"], role: "puppet", subject: "spiffe://example.org/puppet", audience: "vault")
    bao.put_secret("app/db", { "password" => "s3cr3t-#{rand(1 << 32)}" })
  end

  after { FileUtils.rm_rf(dir) }

  def secret
    bao.api!(:get, "secret/data/app/db")["data"]["data"]["password"]
  end

  # Runs `puppet apply` on a manifest (a path, or Puppet code); [output, exit status].
  def puppet_apply(manifest, socket: agent.address)
    unless File.exist?(manifest)
      File.write(File.join(dir, "site.pp"), manifest)
      manifest = File.join(dir, "site.pp")
    end
    env = { "SPIFFE_ENDPOINT_SOCKET" => socket, "VAULT_ADDR" => bao.address, "FACTER_spire_vault_target" => target,
            "RUBYLIB" => File.expand_path("../../lib", __dir__) }
    command = ["puppet", "apply", "--detailed-exitcodes", "--color=false", "--modulepath", File.join(puppet_dir, "modules"),
               *%w[vardir confdir codedir logdir rundir].flat_map { |d| ["--#{d}", File.join(dir, d)] }, manifest]
    # Puppet brings its own gems (facter...): run it outside this bundle.
    out, status = Bundler.with_unbundled_env { Open3.capture2e(env, *command) }
    [out.lines.grep_v(%r{Facter: .*/proc/1/environ}).join, status.exitstatus]
  end

  def lookup_manifest(path, options)
    <<~PUPPET
      file { '#{target}':
        ensure  => file,
        mode    => '0600',
        content => Deferred('spire_vault::lookup', ['#{path}', #{options}]),
      }
    PUPPET
  end

  it "writes the secret to a 0600 file and never shows it" do
    out, status = puppet_apply(File.join(puppet_dir, "manifests", "db_password.pp"))
    expect(status).to eq(2), out # 2: changes applied, no failures
    expect(File.read(target)).to eq(secret)
    expect(File.stat(target).mode & 0o777).to eq(0o600)
    expect(out).to include("changed [redacted]")
    expect(out).not_to include(secret)

    _, status = puppet_apply(File.join(puppet_dir, "manifests", "db_password.pp"))
    expect(status).to eq(0) # nothing to change
  end

  it "fails the run with a message that says what to fix" do
    stranger = start_agent(entries: [{ spiffe_id: "spiffe://example.org/x", selectors: ["unix:uid:4242424"] }])
    out, status = puppet_apply(File.join(puppet_dir, "manifests", "db_password.pp"), socket: stranger.address)
    expect(status).to eq(1)
    expect(out).to include("spire_vault::lookup('app/db'): NoIdentityIssuedError", "no registration entry matching this process")

    out, status = puppet_apply(lookup_manifest("app/db", "{ 'field' => 'password', 'audience' => 'not-vault' }"))
    expect(status).to eq(1)
    expect(out).to include("refused the JWT-SVID of spiffe://example.org/puppet", "bound_audiences")

    out, status = puppet_apply(lookup_manifest("app/missing", "{ 'field' => 'password' }"))
    expect(status).to eq(1)
    expect(out).to include("no secret at secret/data/app/missing")
    expect(File.exist?(target)).to be(false)
  end
end
