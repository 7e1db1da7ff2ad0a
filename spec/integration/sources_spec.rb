# frozen_string_literal: true

require "spec_helper"

RSpec.describe "sources" do
  describe Spiffe::X509Source do
    let(:agent) do
      start_agent(entries: [{ spiffe_id: "spiffe://example.org/a", hint: "a" },
                            { spiffe_id: "spiffe://example.org/b", hint: "b" }], rotation: false)
    end

    it "serves cached snapshots and follows updates", :gc_stress do
      source = described_class.new(socket_path: agent.socket_path, backoff: fast_backoff)
      calls = agent.calls["FetchX509SVID"]
      expect(Array.new(100) { source.x509_svid.spiffe_id.to_s }.uniq).to eq(["spiffe://example.org/a"])
      expect(agent.calls["FetchX509SVID"]).to eq(calls)
      expect(source.x509_bundle_for("example.org")).to eq(agent.x509_bundle)
      updates = Queue.new
      source.on_update { |context| updates << context }
      before = source.x509_svid
      agent.rotate!
      expect(pop_within(updates).default_svid).not_to eq(before)
      expect(source.x509_svid).not_to eq(before)
      source.close
    end

    it "chooses by hint or picker" do
      client = agent.client
      expect(client.x509_source(hint: "b").x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/b")
      picked = client.x509_source(picker: ->(svids) { svids.max_by { |s| s.spiffe_id.to_s } })
      expect(picked.x509_svid.spiffe_id.to_s).to eq("spiffe://example.org/b")
      expect { client.x509_source(hint: "zzz").x509_svid }.to raise_error(Spiffe::SVIDError, /hint "zzz"/)
      client.shutdown
    end

    it "never pairs an SVID with a bundle from another update" do
      agent = start_agent(entries: ["spiffe://example.org/w"], rotation: false)
      source = agent.client.x509_source(backoff: fast_backoff)
      readers = Array.new(4) do
        Thread.new do
          Array.new(300) do
            svid = source.x509_svid
            svid.bundle.cert_store.verify(svid.leaf_certificate)
          end
        end
      end
      5.times do
        agent.rotate_ca!
        sleep 0.02
      end
      expect(readers.flat_map(&:value)).to all(be(true))
      source.close
    end

    it "waits for the first update, then times out with the reason" do
      empty = start_agent(entries: [])
      took = elapsed do
        expect { described_class.new(socket_path: empty.socket_path, timeout: 0.5, backoff: fast_backoff, on_error: ->(_) {}) }
          .to raise_error(Spiffe::TimeoutError, /within 0.5s \(last error: .*no identity issued/)
      end
      expect(took).to be < 3
    end

    it "waits until updated and reports health" do
      short = start_agent(entries: ["spiffe://example.org/w"], x509_svid_ttl: 1, rotation: false)
      source = short.client.x509_source(backoff: fast_backoff)
      expect(source).to be_healthy
      expect(source.wait_until_updated(timeout: 0.1)).to be(false)
      Thread.new { sleep 0.1; short.rotate! }
      expect(source.wait_until_updated(timeout: 3)).to be(true)
      sleep 1.2
      expect(source).not_to be_healthy # the SVID it holds expired
      source.close
      source.close
      expect { source.x509_svid }.to raise_error(Spiffe::ClosedError)
      expect(source).not_to be_healthy
    end

    it "keeps serving the last snapshot while the agent is away, and recovers (20 restarts)" do
      errors = Queue.new
      source = described_class.new(socket_path: agent.socket_path, backoff: fast_backoff, on_error: ->(e) { errors << e })
      threads = Thread.list.size
      fds = open_fds
      20.times do
        held = source.x509_svid
        agent.stop
        expect(pop_within(errors)).to be_a(Spiffe::ConnectionError)
        expect(source.x509_svid).to eq(held)
        expect(source.status).not_to be_connected
        agent.restart
        agent.rotate!
        eventually { source.x509_svid != held }
        expect(source.status).to be_connected
      end
      expect(source.status.reconnects).to be >= 20
      expect(Thread.list.size).to eq(threads)
      expect(open_fds).to be <= fds + 2
    ensure
      source&.close
    end

    it "keeps retrying while no identity is issued and picks it up when one is" do
      agent = start_agent(entries: ["spiffe://example.org/w"], rotation: false)
      source = agent.client.x509_source(backoff: fast_backoff, on_error: ->(_) {})
      agent.remove_entry("spiffe://example.org/w")
      eventually { source.status.last_error.is_a?(Spiffe::NoIdentityIssuedError) }
      reconnects = source.status.reconnects
      sleep 0.5
      expect(source.status.reconnects - reconnects).to be_between(1, 10) # backs off, no tight loop
      agent.add_entry("spiffe://example.org/back")
      eventually { source.x509_svid.spiffe_id.to_s == "spiffe://example.org/back" }
    end

    it "stops for good on InvalidArgument" do
      agent = start_agent(entries: ["spiffe://example.org/w"])
      errors = Queue.new
      source = agent.client.x509_source(backoff: fast_backoff, on_error: ->(e) { errors << e })
      agent.inject_fault(methods: ["FetchX509SVID"], status: :invalid_argument, message: "nope")
      agent.drop_connections!
      # The cut itself is reported first; the reconnection meets InvalidArgument.
      eventually { errors.size.positive? && errors.pop.is_a?(Spiffe::InvalidArgumentError) }
      eventually { !source.healthy? }
      expect { source.x509_svid }.not_to raise_error # the last snapshot stays readable
    end
  end

  describe Spiffe::JWTSource do
    let(:agent) { start_agent(entries: ["spiffe://example.org/w"], jwt_svid_ttl: 4) }

    it "reuses a token until half its lifetime, per audience set" do
      source = agent.client.jwt_source
      first = source.jwt_svid(audience: %w[a b])
      expect(source.jwt_svid(audience: %w[b a])).to equal(first)
      expect(source.jwt_svid(audience: "c")).not_to eq(first)
      sleep 2.1
      expect(source.jwt_svid(audience: %w[a b])).not_to eq(first)
      expect(source.jwt_bundle_for("example.org").key_ids.size).to eq(1)
    end

    it "makes one RPC for concurrent requests of the same token" do
      source = agent.client.jwt_source
      agent.inject_fault(methods: ["FetchJWTSVID"], delay: 0.2)
      tokens = Array.new(10) { Thread.new { source.jwt_svid(audience: "shared").token } }.map(&:value)
      expect(tokens.uniq.size).to eq(1)
      expect(agent.calls["FetchJWTSVID"]).to eq(1)
    end

    it "follows JWT bundle rotation" do
      source = agent.client.jwt_source(backoff: fast_backoff)
      updates = Queue.new
      source.on_update { |set| updates << set }
      agent.rotate_jwt_key!
      expect(pop_within(updates)["example.org"].key_ids.size).to eq(2)
    end
  end

  describe Spiffe::BundleSource do
    it "serves X.509 and JWT bundles" do
      agent = start_agent(entries: [{ spiffe_id: "spiffe://example.org/w", federates_with: ["partner.org"] }],
                          federated_trust_domains: ["partner.org"])
      source = Spiffe::BundleSource.new(socket_path: agent.socket_path)
      expect(source.x509_bundle_for("partner.org")).to eq(agent.x509_bundle("partner.org"))
      expect(source.jwt_bundle_for("example.org").key_ids.size).to eq(1)
      expect(source).to be_healthy
      source.close
      expect { source.x509_bundles }.to raise_error(Spiffe::ClosedError)
    end
  end
end
