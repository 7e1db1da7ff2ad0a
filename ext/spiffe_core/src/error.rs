//! One error type for the core, with a kind the Ruby bridge maps to its
//! exception tree in a single table.

use std::fmt;

/// What went wrong, at the granularity a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The endpoint address is missing or malformed.
    Configuration,
    /// No socket file at the configured path.
    SocketNotFound,
    /// A socket file exists but nobody accepts connections on it.
    ConnectionRefused,
    /// The process may not open the socket (file permissions).
    SocketPermission,
    /// The agent is unreachable or answered `Unavailable`.
    Unavailable,
    /// The call did not finish within its deadline.
    Timeout,
    /// The agent refused the caller (`PermissionDenied`).
    PermissionDenied,
    /// `PermissionDenied` "no identity issued": no registration entry matches.
    NoIdentityIssued,
    /// The agent rejected the request's arguments (`InvalidArgument`).
    InvalidArgument,
    /// The call was cancelled.
    Canceled,
    /// Any other gRPC status; see [`Error::grpc_code`].
    Status,
    /// A malformed or invalid X.509-SVID.
    Svid,
    /// A malformed bundle.
    Bundle,
    /// A malformed or invalid JWT-SVID.
    Jwt,
    /// A JWT that does not parse, or lacks required header fields or claims.
    JwtMalformed,
    /// A JWT past its `exp` (or before `nbf`/`iat`), with 60 s leeway.
    JwtExpired,
    /// A JWT whose `aud` has none of the expected audiences.
    JwtAudience,
    /// A JWT whose signature does not verify with its authority's key.
    JwtSignature,
    /// No bundle for the JWT's trust domain, or no key with its `kid`.
    JwtAuthorityNotFound,
    /// A malformed SPIFFE ID or trust domain.
    InvalidId,
    /// The client was shut down.
    Closed,
    /// A bug: a panic caught at a boundary, or a state that should not happen.
    Internal,
}

/// An error from the core: a kind, a message for people, and the gRPC status
/// code when the agent sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub grpc_code: Option<tonic::Code>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            grpc_code: None,
        }
    }

    pub fn with_code(mut self, code: tonic::Code) -> Self {
        self.grpc_code = Some(code);
        self
    }

    /// Prefixes the message, keeping the kind (`context: message`).
    pub fn context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn svid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Svid, message)
    }

    pub fn bundle(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Bundle, message)
    }

    pub fn jwt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Jwt, message)
    }

    pub fn invalid_id(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidId, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Configuration, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
