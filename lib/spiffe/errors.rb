# frozen_string_literal: true

module Spiffe
  # Root of every error this gem raises.
  #
  # @!attribute [r] code
  #   @return [Symbol, nil] the gRPC status code (e.g. `:unavailable`) when the
  #     error came from the agent or the transport
  class Error < StandardError
    attr_reader :code

    # @param message [String, nil]
    # @param code [Symbol, nil] gRPC status code
    def initialize(message = nil, code = nil)
      super(message)
      @code = code
    end

    # @return [Boolean] whether the same call may succeed if tried again later
    def retriable?
      false
    end
  end

  # A malformed SPIFFE ID or trust domain name.
  class InvalidIDError < Error; end
  # A malformed or invalid X.509-SVID (bad DER, profile violation, key mismatch).
  class SVIDError < Error; end
  # A malformed X.509 or JWT bundle.
  class BundleError < Error; end
  # A malformed or invalid JWT-SVID.
  class JWTError < Error; end
  # Not a JWT-SVID: bad encoding, an algorithm other than RS/PS/ES 256-512
  # (so never `none` or HS*), a bad `typ`, no `sub`, `exp` or `kid`.
  class JWTMalformedError < JWTError; end
  # Past `exp` (or before `nbf`/`iat`), beyond 60 s of leeway.
  class JWTExpiredError < JWTError; end
  # For another audience.
  class JWTAudienceError < JWTError; end
  # The signature does not verify with the key (or the key type does not fit `alg`).
  class JWTSignatureError < JWTError; end
  # No bundle for the token's trust domain, or no key with its `kid`.
  class JWTAuthorityNotFoundError < JWTError; end

  # Vault (or OpenBao) refused the JWT-SVID login or the read, or could not be
  # reached ({Vault}). `status` is the HTTP status, if Vault answered.
  class VaultError < Error
    # @return [Integer, nil]
    attr_reader :status

    def initialize(message = nil, status = nil)
      super(message)
      @status = status
    end

    def retriable?
      status.nil? || status >= 500 || status == 429
    end
  end

  # Anything that went wrong talking to the Workload API.
  class WorkloadAPIError < Error
    # gRPC codes after which the same call may succeed later.
    RETRIABLE_CODES = %i[unavailable deadline_exceeded resource_exhausted aborted].freeze

    def retriable?
      RETRIABLE_CODES.include?(code)
    end
  end

  # The endpoint address (socket_path: or SPIFFE_ENDPOINT_SOCKET) or an option is invalid.
  class ConfigurationError < WorkloadAPIError; end

  # The agent could not be reached, or answered Unavailable.
  class ConnectionError < WorkloadAPIError
    def retriable?
      true
    end
  end

  # No socket file at the configured path: the agent is not running, or the path is wrong.
  class SocketNotFoundError < ConnectionError; end
  # A socket file exists but nothing accepts connections on it (stale socket).
  class ConnectionRefusedError < ConnectionError; end

  # This process may not open the socket: file or directory permissions, or group.
  class SocketPermissionError < ConnectionError
    def retriable?
      false
    end
  end

  # The call did not finish within its deadline (`timeout:`).
  class TimeoutError < ConnectionError; end

  # The agent refused the caller.
  class PermissionDeniedError < WorkloadAPIError; end

  # The agent has no registration entry matching this process. Retriable:
  # entries can be created, and an agent that just started may not have synced yet.
  class NoIdentityIssuedError < PermissionDeniedError
    def retriable?
      true
    end
  end

  # The agent rejected the request's arguments (InvalidArgument).
  class InvalidArgumentError < WorkloadAPIError; end
  # The client (or source) was shut down.
  class ClosedError < WorkloadAPIError; end
  # The call was cancelled.
  class CanceledError < WorkloadAPIError; end
end
