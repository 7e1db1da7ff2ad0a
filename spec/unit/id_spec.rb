# frozen_string_literal: true

require "spec_helper"

RSpec.describe Spiffe::ID do
  it "parses an ID into trust domain and path" do
    id = described_class.parse("spiffe://example.org/ns/prod/web")
    expect(id.trust_domain).to eq(Spiffe::TrustDomain.new("example.org"))
    expect(id.path).to eq("/ns/prod/web")
    expect(id.to_s).to eq("spiffe://example.org/ns/prod/web")
    expect(id).to be_frozen
  end

  it "compares by value and works as a hash key" do
    a = described_class.parse("spiffe://example.org/a")
    expect(a).to eq(described_class.new("spiffe://example.org/a"))
    expect({ a => 1 }[described_class.parse("spiffe://example.org/a")]).to eq(1)
    expect(a).not_to eq(described_class.parse("spiffe://example.org/b"))
  end

  it "checks trust domain membership" do
    id = described_class.parse("spiffe://example.org/a")
    expect(id.member_of?("example.org")).to be(true)
    expect(id.member_of?(Spiffe::TrustDomain.new("other.org"))).to be(false)
  end

  describe "path helpers" do
    it "builds IDs from a path or from segments" do
      expect(described_class.from_path("example.org", "/ns/prod").to_s).to eq("spiffe://example.org/ns/prod")
      expect(described_class.from_path("example.org", "")).to be_root
      id = described_class.from_segments("example.org", "ns", "prod", "sa", "web")
      expect(id.to_s).to eq("spiffe://example.org/ns/prod/sa/web")
      expect(id.segments).to eq(%w[ns prod sa web])
      expect(Spiffe::TrustDomain.new("example.org").id("ns", "prod")).to eq(described_class.parse("spiffe://example.org/ns/prod"))
    end

    it "validates each segment alone, so input cannot add a slash or a dot segment" do
      expect { described_class.from_segments("example.org", "ns", "a/b") }
        .to raise_error(Spiffe::InvalidIDError, "path segment characters are limited to letters, numbers, dots, dashes, and underscores")
      expect { described_class.from_segments("example.org", "..") }
        .to raise_error(Spiffe::InvalidIDError, "path cannot contain dot segments")
      expect { described_class.from_segments("example.org", "") }
        .to raise_error(Spiffe::InvalidIDError, "path cannot contain empty segments")
      expect { described_class.from_path("example.org", "ns") }
        .to raise_error(Spiffe::InvalidIDError, "path must have a leading slash")
      expect { described_class.from_path("example.org", "/#{'a' * 2100}") }
        .to raise_error(Spiffe::InvalidIDError, "SPIFFE ID is longer than 2048 bytes")
      expect { described_class.from_path("Bad", "/a") }.to raise_error(Spiffe::InvalidIDError, /lowercase letters/)
    end

    it "appends and replaces paths, staying in the trust domain" do
      base = described_class.parse("spiffe://example.org/ns/prod")
      expect(base.append_segments("web").to_s).to eq("spiffe://example.org/ns/prod/web")
      expect(base.append_path("/sa/web").to_s).to eq("spiffe://example.org/ns/prod/sa/web")
      expect(base.replace_path("/db").to_s).to eq("spiffe://example.org/db")
      expect(base.replace_segments("a", "b").to_s).to eq("spiffe://example.org/a/b")
      expect { base.append_path("web") }.to raise_error(Spiffe::InvalidIDError, "path must have a leading slash")
      expect(base).to eq(described_class.parse("spiffe://example.org/ns/prod"))
    end

    it "sorts by URI" do
      ids = %w[spiffe://b.org/a spiffe://a.org/z spiffe://a.org/b].map { |s| described_class.parse(s) }
      expect(ids.sort.map(&:to_s)).to eq(%w[spiffe://a.org/b spiffe://a.org/z spiffe://b.org/a])
    end
  end

  {
    "" => "cannot be empty",
    "http://example.org/a" => "scheme is missing or invalid",
    "spiffe:///a" => "trust domain is missing",
    "spiffe://Example.org/a" => "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores",
    "spiffe://example.org/a//b" => "path cannot contain empty segments",
    "spiffe://example.org/a/../b" => "path cannot contain dot segments",
    "spiffe://example.org/a/" => "path cannot have a trailing slash",
    "spiffe://example.org/a b" => "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
  }.each do |input, message|
    it "rejects #{input.inspect} with go-spiffe's message" do
      expect { described_class.parse(input) }.to raise_error(Spiffe::InvalidIDError, message)
    end
  end
end

RSpec.describe Spiffe::TrustDomain do
  it "accepts a name or an ID" do
    expect(described_class.parse("spiffe://example.org/x").name).to eq("example.org")
    expect(described_class.new("example.org").id_string).to eq("spiffe://example.org")
    expect(described_class.new("example.org").id.to_s).to eq("spiffe://example.org")
  end

  it "rejects invalid names" do
    expect { described_class.new("Bad") }.to raise_error(Spiffe::InvalidIDError, /lowercase letters/)
    expect { described_class.new("") }.to raise_error(Spiffe::InvalidIDError, "trust domain is missing")
  end
end
