# frozen_string_literal: true

require "faraday"
require "spiffe"

module Spiffe
  # Faraday support: `require "spiffe/faraday"` (Faraday is not a dependency
  # of this gem; bring your own).
  module Faraday
    # A Net::HTTP adapter for SPIFFE mTLS. Faraday's own Net::HTTP adapter
    # cannot pass a verify callback nor turn host name checks off, so it can
    # neither authorize the server's SPIFFE ID nor accept an SVID (which names
    # no host). This one sets each new connection up with
    # {Spiffe::TLS.configure_net_http}: it presents the source's current SVID
    # and accepts only servers whose SPIFFE ID `authorize` allows, so
    # rotation needs nothing from the caller.
    #
    # @example
    #   require "spiffe/faraday"
    #   source = Spiffe.workload_api_client.x509_source
    #   conn = Faraday.new("https://billing.internal:8443") do |f|
    #     f.adapter :spiffe, source: source, authorize: Spiffe::Authorize.id("spiffe://example.org/billing")
    #   end
    #   conn.get("/invoices")
    class Adapter < ::Faraday::Adapter::NetHttp
      # @param app [#call]
      # @param opts [Hash] `source:` (an {X509Source} or anything with
      #   `#x509_svid` and `#x509_bundle_for`) and `authorize:` (see {Authorize}),
      #   plus the Net::HTTP adapter's own options
      def initialize(app = nil, opts = {}, &block)
        opts = opts.dup
        @source = opts.delete(:source) || raise(ArgumentError, "the :spiffe adapter needs source: (an X509Source)")
        @authorize = opts.delete(:authorize)
        raise ArgumentError, "the :spiffe adapter needs authorize: (see Spiffe::Authorize)" unless @authorize.respond_to?(:call)

        super(app, opts, &block)
      end

      private

      # Replaces Faraday's `ssl:` options: trust, identity and authorization
      # all come from SPIFFE.
      def configure_ssl(http, _ssl)
        return unless http.use_ssl?

        Spiffe::TLS.configure_net_http(http, @source, authorize: @authorize)
      end
    end
  end
end

Faraday::Adapter.register_middleware(spiffe: Spiffe::Faraday::Adapter)
