//! Ruby-agnostic core of spiffe-workload.
//!
//! Everything here is plain Rust, tested with `cargo test`: SPIFFE IDs, Workload
//! API endpoint addresses, the gRPC client, parsing and checking of what an
//! agent returns (X.509-SVIDs, JWT-SVIDs, bundles), JWS signing/verification,
//! and an embedded Workload API server for tests and demos.

pub mod agent;
pub mod bundle;
pub mod client;
pub mod der;
pub mod endpoint;
pub mod error;
pub mod id;
pub mod jws;
pub mod jwt;
pub mod proto;
pub mod spiffe_bundle;
pub mod watch;
pub mod x509;

pub use error::{Error, ErrorKind, Result};
