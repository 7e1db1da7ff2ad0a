//! Generated Workload API messages, client and server (see `proto/workload.proto`).
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("_");

/// Metadata every Workload API call must carry (SPIFFE Workload Endpoint spec).
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
