# frozen_string_literal: true

require "json"
require "net/http"
require "uri"
require "spiffe"

module Spiffe
  # Trades a JWT-SVID for a Vault (or OpenBao) token through Vault's JWT auth
  # method, and reads KV v2 secrets with it: secrets without a secret to
  # bootstrap them. This is what the `spire_vault::lookup` Puppet function
  # (examples/puppet) runs.
  #
  # On the Vault side: a JWT auth mount that trusts the trust domain's JWT
  # keys (`jwt_validation_pubkeys`, or `jwks_url` of a SPIRE OIDC discovery
  # provider) and a role binding the audience and the SPIFFE ID:
  #
  #   bao write auth/jwt/role/puppet role_type=jwt user_claim=sub \
  #     bound_audiences=vault bound_subject=spiffe://example.org/puppet token_policies=read-secrets
  #
  # Neither the JWT-SVID nor the Vault token is ever logged or put in an error.
  #
  # @example
  #   vault = Spiffe::Vault.new(address: "https://vault.internal:8200", role: "puppet")
  #   vault.read("db", field: "password")   # => "s3cr3t"
  class Vault
    # @return [String]
    attr_reader :address, :role, :audience

    # @param address [String] Vault's address (default: VAULT_ADDR)
    # @param role [String] the JWT auth role to log in with
    # @param audience [String] the JWT-SVID audience the role expects (`bound_audiences`)
    # @param auth_mount [String] where the JWT auth method is mounted
    # @param spiffe_id [String, nil] which of this process's identities (default: the first)
    # @param client [WorkloadAPIClient, nil] default: a new one from `socket_path`, closed after each login
    # @param socket_path [String, nil] the Workload API (default: SPIFFE_ENDPOINT_SOCKET)
    # @param ca_file [String, nil] CA bundle to verify Vault's HTTPS certificate (default: the system's)
    # @param namespace [String, nil] Vault Enterprise / OpenBao namespace
    # @param timeout [Numeric] seconds, for the Workload API and each HTTP request
    # @raise [ArgumentError] if no address is given or set in VAULT_ADDR
    def initialize(role:, address: ENV.fetch("VAULT_ADDR", nil), audience: "vault", auth_mount: "jwt", spiffe_id: nil,
                   client: nil, socket_path: nil, ca_file: nil, namespace: nil, timeout: 5)
      raise ArgumentError, "no Vault address: pass address: or set VAULT_ADDR" if address.to_s.empty?

      @address = address.to_s.chomp("/")
      @uri = URI(@address)
      @role = role.to_s
      @audience = audience.to_s
      @auth_mount = auth_mount.to_s.delete_prefix("/").chomp("/")
      @spiffe_id = spiffe_id
      @client = client
      @socket_path = socket_path
      @ca_file = ca_file
      @namespace = namespace
      @timeout = timeout
    end

    # Logs in with a fresh JWT-SVID.
    # @return [String] a Vault token (keep it secret)
    # @raise [VaultError] when Vault refuses the login, naming the role and what it checks
    # @raise [WorkloadAPIError] when there is no JWT-SVID to log in with
    def login
      svid = with_client { |client| client.jwt_svid(audience: @audience, spiffe_id: @spiffe_id) }
      response = request(Net::HTTP::Post.new(path("auth", @auth_mount, "login")), { role: @role, jwt: svid.token })
      return JSON.parse(response.body).dig("auth", "client_token") if response.is_a?(Net::HTTPSuccess)

      raise VaultError.new("Vault at #{@address} refused the JWT-SVID of #{svid.spiffe_id} (aud #{@audience.inspect}) " \
                           "for role #{@role.inspect} at auth/#{@auth_mount}: #{errors(response)}. Check the role's " \
                           "bound_audiences, bound_subject and the mount's JWT keys", response.code.to_i)
    end

    # Reads a KV version 2 secret.
    # @param secret_path [String] the secret's path under the mount (e.g. "db" or "app/db")
    # @param field [String, nil] one field of the secret; nil returns them all
    # @param mount [String] the KV v2 mount
    # @param token [String, nil] a token from {#login}; default: log in now
    # @return [String, Hash{String => Object}] the field's value, or all fields
    # @raise [VaultError] when the secret or field does not exist or may not be read
    def read(secret_path, field: nil, mount: "secret", token: nil)
      token ||= login
      location = "#{mount}/data/#{secret_path.to_s.delete_prefix('/')}"
      get = Net::HTTP::Get.new(path(location))
      get["X-Vault-Token"] = token
      response = request(get)
      case response
      when Net::HTTPSuccess then pick(JSON.parse(response.body).dig("data", "data") || {}, field, location)
      when Net::HTTPNotFound then raise VaultError.new("no secret at #{location} in Vault at #{@address}", 404)
      when Net::HTTPForbidden
        raise VaultError.new("role #{@role.inspect} may not read #{location}: #{errors(response)}. Check its token_policies", 403)
      else raise VaultError.new("reading #{location} from Vault at #{@address} failed: #{errors(response)}", response.code.to_i)
      end
    end

    # @return [String] a summary for debugging (never a key or a token)
    def inspect
      "#<Spiffe::Vault #{@address} role=#{@role} audience=#{@audience}>"
    end

    private

    def pick(data, field, location)
      return data unless field
      return data[field.to_s] if data.key?(field.to_s)

      raise VaultError.new("the secret at #{location} has no field #{field.to_s.inspect} (fields: #{data.keys.sort.join(', ')})", 404)
    end

    def with_client
      return yield(@client) if @client

      client = Spiffe.workload_api_client(socket_path: @socket_path, timeout: @timeout)
      begin
        yield client
      ensure
        client.shutdown
      end
    end

    def path(*parts)
      "#{@uri.path.chomp('/')}/v1/#{parts.join('/')}"
    end

    def request(request, body = nil)
      request["Content-Type"] = "application/json"
      request["X-Vault-Namespace"] = @namespace if @namespace
      request.body = JSON.generate(body) if body
      http = Net::HTTP.new(@uri.host, @uri.port)
      http.use_ssl = @uri.scheme == "https"
      http.ca_file = @ca_file if @ca_file
      http.open_timeout = http.read_timeout = http.write_timeout = @timeout
      http.start { |connection| connection.request(request) }
    rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout, Net::WriteTimeout, OpenSSL::SSL::SSLError, SocketError => e
      raise VaultError, "cannot reach Vault at #{@address}: #{e.message}"
    end

    def errors(response)
      messages = JSON.parse(response.body.to_s)["errors"]
      return "HTTP #{response.code}" unless messages.is_a?(Array) && !messages.empty?

      # Vault nests multierrors: "1 error occurred:\n\t* permission denied\n\n".
      messages.map { |m| m.to_s.sub(/\A\d+ errors? occurred:/, "").gsub(/\s*\*\s+/, " ").split.join(" ") }.join("; ")
    rescue JSON::ParserError
      "HTTP #{response.code}"
    end
  end
end
