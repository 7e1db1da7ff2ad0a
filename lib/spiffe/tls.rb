# frozen_string_literal: true

require "openssl"

module Spiffe
  # `OpenSSL::SSL::SSLContext`s for SPIFFE (m)TLS, the go-spiffe `tlsconfig`
  # way: the peer's chain must lead to a root in the bundle of the peer's own
  # trust domain (not just any trusted root), its leaf must be an X.509-SVID
  # (one URI SAN, not a CA), and its SPIFFE ID must pass `authorize`. Host
  # names are not checked; the SPIFFE ID is the identity. TLS 1.2 or newer.
  #
  # A source is anything with `#x509_svid` and `#x509_bundle_for(trust_domain)`
  # (and optionally `#x509_bundles`): an {X509Source}, an {X509Context}, or an
  # {X509SVID} (which trusts its own bundle). Contexts are built from the
  # source's current snapshot and frozen; build a new one after rotation
  # (`X509Source#on_update`), since CRuby freezes a context on first use.
  module TLS
    module_function

    # A client that presents its SVID and authorizes the server's SPIFFE ID.
    # @param source [#x509_svid, #x509_bundle_for]
    # @param authorize [#call] see {Authorize}
    # @return [OpenSSL::SSL::SSLContext]
    def mtls_client_context(source, authorize:)
      build(source, authorize: authorize, present: true, verify: :peer)
    end

    # A server that presents its SVID and requires and authorizes client SVIDs.
    # @return [OpenSSL::SSL::SSLContext]
    def mtls_server_context(source, authorize:)
      build(source, authorize: authorize, present: true, verify: :require)
    end

    # A client without an SVID of its own that authorizes the server's SPIFFE ID.
    # @param bundles [#x509_bundle_for] where trust comes from
    # @return [OpenSSL::SSL::SSLContext]
    def tls_client_context(bundles, authorize:)
      build(bundles, authorize: authorize, present: false, verify: :peer)
    end

    # A server that presents its SVID and does not ask for client certificates.
    # @return [OpenSSL::SSL::SSLContext]
    def tls_server_context(source)
      build(source, authorize: nil, present: true, verify: :none)
    end

    # @return [ID, nil] the SPIFFE ID in a certificate's single URI SAN
    def spiffe_id_of(certificate)
      san = certificate.extensions.find { |ext| ext.oid == "subjectAltName" }
      uris = san ? san.value.split(", ").filter_map { |name| name.delete_prefix("URI:") if name.start_with?("URI:") } : []
      uris.size == 1 ? ID.parse(uris.first) : nil
    rescue InvalidIDError
      nil
    end

    # The verify callback: what go-spiffe's `x509svid.Verify` checks, on top
    # of OpenSSL's path validation against every trusted root.
    # @api private
    class Verifier
      def initialize(bundles, authorize)
        @bundles = bundles
        @authorize = authorize
      end

      def call(preverified, store_context)
        return preverified unless store_context.error_depth.zero?
        return false unless preverified

        chain = store_context.chain
        id = TLS.spiffe_id_of(chain.first)
        return reject(store_context) unless id && svid_leaf?(chain.first)

        bundle = @bundles.x509_bundle_for(id.trust_domain)
        return reject(store_context) unless bundle&.authorities_der&.include?(chain.last.to_der)

        @authorize.call(id) ? true : reject(store_context)
      rescue StandardError
        reject(store_context)
      end

      private

      def reject(store_context)
        store_context.error = OpenSSL::X509::V_ERR_APPLICATION_VERIFICATION
        false
      end

      def svid_leaf?(cert)
        constraints = cert.extensions.find { |ext| ext.oid == "basicConstraints" }
        return false if constraints&.value&.include?("CA:TRUE")

        usage = cert.extensions.find { |ext| ext.oid == "keyUsage" }&.value.to_s
        !usage.include?("Certificate Sign") && !usage.include?("CRL Sign")
      end
    end

    # @api private
    def build(source, authorize:, present:, verify:)
      context = OpenSSL::SSL::SSLContext.new
      context.min_version = OpenSSL::SSL::TLS1_2_VERSION
      if present
        svid = source.x509_svid
        context.cert = svid.leaf_certificate
        context.key = svid.private_key
        context.extra_chain_cert = svid.cert_chain.drop(1) if svid.cert_chain.size > 1
      end
      if verify == :none
        context.verify_mode = OpenSSL::SSL::VERIFY_NONE
      else
        raise ArgumentError, "authorize: must respond to #call (see Spiffe::Authorize)" unless authorize.respond_to?(:call)

        bundles = bundle_lookup(source)
        context.cert_store = trust_store(bundles)
        context.verify_mode = OpenSSL::SSL::VERIFY_PEER
        context.verify_mode |= OpenSSL::SSL::VERIFY_FAIL_IF_NO_PEER_CERT if verify == :require
        context.verify_hostname = false
        verifier = Verifier.new(bundles, authorize)
        context.verify_callback = ->(ok, store_context) { verifier.call(ok, store_context) }
      end
      context.freeze # SSLContext#freeze sets it up and returns true, not self
      context
    end

    # A snapshot of the source's bundles, so a handshake sees one update.
    def bundle_lookup(source)
      return source.x509_bundles if source.respond_to?(:x509_bundles)

      source
    end

    def trust_store(bundles)
      store = OpenSSL::X509::Store.new
      authorities = bundles.respond_to?(:each) ? bundles.flat_map(&:x509_authorities) : bundles.x509_authorities
      authorities.uniq(&:to_der).each { |cert| store.add_cert(cert) }
      store
    end
    private_class_method :build, :bundle_lookup, :trust_store
  end
end
