//! Core errors to Ruby exceptions, in one table. The classes are defined in
//! Ruby (`lib/spiffe/errors.rb`) and looked up here by name.

use magnus::value::ReprValue;
use magnus::{Error, Exception, ExceptionClass, Module, RModule, Ruby, Symbol};
use spiffe_core::{Error as CoreError, ErrorKind};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The Ruby class (under `Spiffe`) raised for each kind of core error.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Configuration => "ConfigurationError",
        ErrorKind::SocketNotFound => "SocketNotFoundError",
        ErrorKind::ConnectionRefused => "ConnectionRefusedError",
        ErrorKind::SocketPermission => "SocketPermissionError",
        ErrorKind::Unavailable => "ConnectionError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::PermissionDenied => "PermissionDeniedError",
        ErrorKind::NoIdentityIssued => "NoIdentityIssuedError",
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::Canceled => "CanceledError",
        ErrorKind::Status => "WorkloadAPIError",
        ErrorKind::Svid => "SVIDError",
        ErrorKind::Bundle => "BundleError",
        ErrorKind::Jwt => "JWTError",
        ErrorKind::JwtMalformed => "JWTMalformedError",
        ErrorKind::JwtExpired => "JWTExpiredError",
        ErrorKind::JwtAudience => "JWTAudienceError",
        ErrorKind::JwtSignature => "JWTSignatureError",
        ErrorKind::JwtAuthorityNotFound => "JWTAuthorityNotFoundError",
        ErrorKind::InvalidId => "InvalidIDError",
        ErrorKind::Closed => "ClosedError",
        ErrorKind::Internal => "Error",
    }
}

/// gRPC code names as Ruby symbols (`:unavailable`, `:permission_denied`).
fn code_symbol(ruby: &Ruby, code: tonic::Code) -> Symbol {
    let name = format!("{code:?}");
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    ruby.to_symbol(snake)
}

fn lookup(ruby: &Ruby, name: &str) -> Result<ExceptionClass, Error> {
    let spiffe: RModule = ruby.class_object().const_get("Spiffe")?;
    spiffe.const_get(name)
}

/// Builds the Ruby exception for a core error (`Class.new(message, code)`).
pub fn to_ruby(ruby: &Ruby, error: CoreError) -> Error {
    let build = || -> Result<Exception, Error> {
        let class = lookup(ruby, class_name(error.kind))?;
        let code = error.grpc_code.map(|c| code_symbol(ruby, c));
        class.funcall("new", (error.message.as_str(), code))
    };
    match build() {
        Ok(exception) => exception.into(),
        Err(lookup_failed) => lookup_failed,
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// `Spiffe::Error` for a caught panic.
pub fn panic_error(ruby: &Ruby, message: &str) -> Error {
    to_ruby(
        ruby,
        CoreError::internal(format!(
            "internal error in spiffe-workload (please report it): {message}"
        )),
    )
}

/// Runs a native method body, turning a Rust panic into `Spiffe::Error`
/// instead of letting it become Ruby's `fatal`.
pub fn guard<T>(ruby: &Ruby, body: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => Err(panic_error(ruby, &panic_message(payload.as_ref()))),
    }
}

/// Maps a core result into a Ruby one.
pub trait IntoRuby<T> {
    fn or_raise(self, ruby: &Ruby) -> Result<T, Error>;
}

impl<T> IntoRuby<T> for Result<T, CoreError> {
    fn or_raise(self, ruby: &Ruby) -> Result<T, Error> {
        self.map_err(|e| to_ruby(ruby, e))
    }
}
