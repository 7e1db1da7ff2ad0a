# Writes the database password from Vault to a file only root can read.
#   VAULT_ADDR=https://vault.internal:8200 puppet apply --modulepath examples/puppet/modules \
#     examples/puppet/manifests/db_password.pp
# (FACTER_spire_vault_target=/some/path moves the file, for trying it out.)
$target = $facts['spire_vault_target'] ? {
  undef   => '/etc/app/db_password',
  default => $facts['spire_vault_target'],
}

file { $target:
  ensure  => file,
  mode    => '0600',
  content => Deferred('spire_vault::lookup', ['app/db', { 'field' => 'password' }]),
}
