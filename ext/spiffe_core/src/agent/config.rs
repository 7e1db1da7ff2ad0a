//! The agent's configuration, also its JSON (and the CLI's YAML) format.

use super::ca::KeyType;
use crate::error::{Error, Result};
use crate::jws::Algorithm;
use serde::Deserialize;
use std::path::PathBuf;

/// The selector types of SPIRE's unix workload attestor.
pub const SELECTOR_TYPES: [&str; 8] = [
    "uid",
    "user",
    "gid",
    "group",
    "supplementary_gid",
    "supplementary_group",
    "path",
    "sha256",
];

/// A registration entry: who (selectors) gets which SPIFFE ID.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    pub spiffe_id: String,
    /// `unix:uid:1000`, `unix:path:/usr/bin/ruby3.1`, ...: a caller gets the
    /// entry if it has every one. No selectors: every caller gets it.
    #[serde(default)]
    pub selectors: Vec<String>,
    #[serde(default)]
    pub hint: String,
    /// Sort key (SPIRE orders SVIDs by entry ID); default: creation order.
    #[serde(default)]
    pub entry_id: Option<String>,
    /// Seconds; default: the agent's.
    #[serde(default)]
    pub x509_svid_ttl: Option<f64>,
    #[serde(default)]
    pub jwt_svid_ttl: Option<f64>,
    /// Foreign trust domains whose bundles this entry's callers receive.
    #[serde(default)]
    pub federates_with: Vec<String>,
}

fn default_x509_ttl() -> f64 {
    3600.0
}

fn default_jwt_ttl() -> f64 {
    300.0
}

fn default_ca_ttl() -> f64 {
    24.0 * 3600.0
}

fn default_true() -> bool {
    true
}

/// Everything the agent serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub trust_domain: String,
    pub socket_path: PathBuf,
    #[serde(default)]
    pub entries: Vec<EntryConfig>,
    /// X.509-SVID lifetime in seconds (SPIRE: 1 h).
    #[serde(default = "default_x509_ttl")]
    pub x509_svid_ttl: f64,
    /// JWT-SVID lifetime in seconds (SPIRE: 5 min).
    #[serde(default = "default_jwt_ttl")]
    pub jwt_svid_ttl: f64,
    /// CA lifetime in seconds (SPIRE: 24 h).
    #[serde(default = "default_ca_ttl")]
    pub ca_ttl: f64,
    /// Key type of minted X.509-SVIDs (SPIRE: EC P-256).
    #[serde(default)]
    pub svid_key_type: KeyType,
    /// Key type of the CAs (SPIRE: EC P-256).
    #[serde(default)]
    pub ca_key_type: KeyType,
    /// JWT signing algorithm: ES256 (default), ES384, RS256 or PS256.
    #[serde(default)]
    pub jwt_algorithm: Option<String>,
    /// Sign SVIDs with an intermediate CA, so chains have two certificates.
    #[serde(default)]
    pub intermediate: bool,
    /// Foreign trust domains the agent has bundles for (each gets its own CA
    /// and JWT key, so tests can mint foreign SVIDs).
    #[serde(default)]
    pub federated_trust_domains: Vec<String>,
    /// Re-issue SVIDs when half their lifetime is left, as SPIRE does.
    #[serde(default = "default_true")]
    pub rotation: bool,
    /// Serve bundles to callers without an identity (SPIRE option of that name).
    #[serde(default)]
    pub allow_unauthenticated_verifiers: bool,
}

impl AgentConfig {
    pub fn from_json(json: &str) -> Result<Self> {
        let config: Self = serde_json::from_str(json)
            .map_err(|e| Error::config(format!("invalid agent configuration: {e}")))?;
        config.jwt_alg()?;
        for entry in &config.entries {
            validate_selectors(&entry.selectors)?;
        }
        Ok(config)
    }

    /// The JWT signing algorithm and the key type it needs.
    pub fn jwt_alg(&self) -> Result<(Algorithm, KeyType)> {
        match self.jwt_algorithm.as_deref().unwrap_or("ES256") {
            "ES256" => Ok((Algorithm::ES256, KeyType::EcP256)),
            "ES384" => Ok((Algorithm::ES384, KeyType::EcP384)),
            "RS256" => Ok((Algorithm::RS256, KeyType::Rsa2048)),
            "PS256" => Ok((Algorithm::PS256, KeyType::Rsa2048)),
            other => Err(Error::config(format!(
                "jwt_algorithm must be ES256, ES384, RS256 or PS256 (got {other:?})"
            ))),
        }
    }
}

/// Checks selectors are `unix:<type>:<value>` with a known type.
pub fn validate_selectors(selectors: &[String]) -> Result<()> {
    for selector in selectors {
        let mut parts = selector.splitn(3, ':');
        let (kind, name, value) = (parts.next(), parts.next(), parts.next());
        let known = kind == Some("unix")
            && name.is_some_and(|n| SELECTOR_TYPES.contains(&n))
            && value.is_some_and(|v| !v.is_empty());
        if !known {
            return Err(Error::config(format!(
                "invalid selector {selector:?}: expected unix:<type>:<value> with type one of {}",
                SELECTOR_TYPES.join(", ")
            )));
        }
    }
    Ok(())
}

/// An injectable misbehavior, applied where SPIRE attests the caller (after
/// the header and argument checks).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Only these RPCs (e.g. "FetchJWTSVID"); empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Wait this long (seconds) before answering.
    #[serde(default)]
    pub delay: f64,
    /// Never answer.
    #[serde(default)]
    pub hang: bool,
    /// Answer with this gRPC status code name (e.g. "unavailable") ...
    #[serde(default)]
    pub status: Option<String>,
    /// ... and this message.
    #[serde(default)]
    pub message: String,
    /// Send a malformed response: "svid_der", "key_mismatch", "bundle_der",
    /// "empty_svids", "jwks", "jwt".
    #[serde(default)]
    pub corrupt: Option<String>,
}

impl Fault {
    pub fn applies_to(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_selectors_and_algorithms() {
        assert!(
            validate_selectors(&["unix:uid:0".into(), "unix:path:/usr/bin/ruby".into()]).is_ok()
        );
        assert!(validate_selectors(&["k8s:ns:x".into()])
            .unwrap_err()
            .message
            .contains("invalid selector"));
        assert!(validate_selectors(&["unix:uid:".into()]).is_err());
        let json = r#"{"trust_domain": "td", "socket_path": "/tmp/x", "jwt_algorithm": "HS256"}"#;
        assert!(AgentConfig::from_json(json)
            .unwrap_err()
            .message
            .contains("jwt_algorithm"));
        let json = r#"{"trust_domain": "td", "socket_path": "/tmp/x", "bogus": 1}"#;
        assert!(AgentConfig::from_json(json)
            .unwrap_err()
            .message
            .contains("unknown field"));
    }
}
