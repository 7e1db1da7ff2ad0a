# frozen_string_literal: true

require "spec_helper"
require "net/http"

# Real Sinatra and Rails apps (examples/sinatra, examples/rails) served by
# Puma, authenticating callers with Spiffe::Rack::JWTAuth.
RSpec.describe "JWT-SVID authentication in real Rack apps" do
  let(:agent) do
    start_agent(entries: [{ spiffe_id: "spiffe://example.org/caller", selectors: ["unix:uid:#{Process.uid}"] }],
                federated_trust_domains: ["partner.org"])
  end
  let(:examples) { File.expand_path("../../examples", __dir__) }

  after do
    if @pid
      Process.kill("TERM", @pid)
      Process.wait(@pid)
    end
  end

  def start_puma(app)
    port = free_port
    @log = Tempfile.new("puma")
    env = { "SPIFFE_ENDPOINT_SOCKET" => agent.address, "RUBYLIB" => File.expand_path("../../lib", __dir__) }
    @pid = spawn(env, "puma", "-b", "tcp://127.0.0.1:#{port}", "-t", "1:4", File.join(examples, app, "config.ru"),
                 out: @log.path, err: @log.path, chdir: File.join(examples, app))
    eventually(60) do
      raise "puma exited:\n#{File.read(@log.path)}" if Process.waitpid(@pid, Process::WNOHANG)

      (get(port, nil) rescue nil) # rubocop:disable Style/RescueModifier
    end
    port
  end

  def get(port, token)
    request = Net::HTTP::Get.new("/invoices")
    request["Authorization"] = "Bearer #{token}" if token
    Net::HTTP.start("127.0.0.1", port, open_timeout: 5, read_timeout: 5) { |http| http.request(request) }
  end

  { "Sinatra" => "sinatra", "Rails 6.1" => "rails" }.each do |name, app|
    it "#{name}: serves callers with a valid JWT-SVID and refuses the others" do
      port = start_puma(app)
      response = get(port, agent.client.jwt_svid(audience: "billing").token)
      expect([response.code, response.body]).to eq(["200", "invoices for spiffe://example.org/caller\n"])

      response = get(port, nil)
      expect([response.code, response["www-authenticate"]]).to eq(["401", 'Bearer realm="spiffe"'])
      response = get(port, agent.client.jwt_svid(audience: "shipping").token)
      expect([response.code, response["www-authenticate"]]).to match(["401", /error="invalid_token".*audience/])
      response = get(port, agent.mint_jwt_svid("spiffe://example.org/caller", audience: "billing", ttl: -120))
      expect([response.code, response["www-authenticate"]]).to match(["401", /expired/])
      response = get(port, agent.mint_jwt_svid("spiffe://partner.org/caller", audience: "billing"))
      expect([response.code, response.body]).to eq(["403", "spiffe://partner.org/caller is not authorized\n"])

      # The app's bundle source follows the agent's JWT key rotation.
      agent.rotate_jwt_key!
      agent.rotate_jwt_key! # the first key is gone from the bundle now
      fresh = agent.client.jwt_svid(audience: "billing").token
      eventually(10) { get(port, fresh).code == "200" }
    end
  end
end
