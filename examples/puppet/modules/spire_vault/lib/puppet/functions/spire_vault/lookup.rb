# frozen_string_literal: true

# Reads a secret from Vault (or OpenBao) as this node's SPIFFE identity: a
# JWT-SVID from the SPIRE agent logs in to Vault's JWT auth method, and the
# token reads a KV v2 secret. No secret to bootstrap, nothing in Hiera.
#
# Call it through Deferred so it runs on the node, at apply time:
#
#   file { '/etc/app/db_password':
#     ensure  => file,
#     mode    => '0600',
#     content => Deferred('spire_vault::lookup', ['app/db', { 'field' => 'password' }]),
#   }
#
# Options (all optional): field (one field; default all of them, as a Hash),
# vault_addr (default VAULT_ADDR), role (default 'puppet'), audience (default
# 'vault'), auth_mount ('jwt'), mount (the KV v2 mount, 'secret'), spiffe_id,
# socket_path (default SPIFFE_ENDPOINT_SOCKET), ca_file, namespace, timeout.
# Returns Sensitive, so Puppet never shows the value.
Puppet::Functions.create_function(:'spire_vault::lookup') do
  # @param path the secret's path under the KV v2 mount
  # @param options see above
  # @return [Sensitive] the field's value, or a Hash of all fields
  dispatch :lookup do
    param 'String[1]', :path
    optional_param 'Hash[String[1], Any]', :options
  end

  def lookup(path, options = {})
    require 'spiffe/vault'
    opts = options.transform_keys(&:to_sym)
    vault = Spiffe::Vault.new(
      address: opts.fetch(:vault_addr, ENV.fetch('VAULT_ADDR', nil)),
      role: opts.fetch(:role, 'puppet'), audience: opts.fetch(:audience, 'vault'),
      auth_mount: opts.fetch(:auth_mount, 'jwt'), spiffe_id: opts[:spiffe_id], socket_path: opts[:socket_path],
      ca_file: opts[:ca_file], namespace: opts[:namespace], timeout: opts.fetch(:timeout, 5)
    )
    value = vault.read(path, field: opts[:field], mount: opts.fetch(:mount, 'secret'))
    Puppet::Pops::Types::PSensitiveType::Sensitive.new(value)
  rescue LoadError => e
    raise Puppet::Error, "spire_vault::lookup needs the spiffe-workload gem on the node (#{e.message})"
  rescue Spiffe::Error, ArgumentError => e
    raise Puppet::Error, "spire_vault::lookup('#{path}'): #{e.class.name.split('::').last}: #{e.message}"
  end
end
