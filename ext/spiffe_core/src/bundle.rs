//! Trust bundles: X.509 roots and JWT authorities (JWKS), per trust domain.

use crate::error::{Error, Result};
use crate::id::TrustDomain;
use crate::jws::jwk_to_key;
use crate::x509::parse_certificates;
use serde_json::Value;
use std::collections::BTreeMap;

/// The X.509 authorities (DER roots) of one trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Bundle {
    pub trust_domain: TrustDomain,
    pub authorities: Vec<Vec<u8>>,
}

/// One JWT signing key of a trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthority {
    pub key_id: String,
    /// SubjectPublicKeyInfo DER of the key.
    pub public_key: Vec<u8>,
}

/// The JWT authorities of one trust domain, and the JWKS they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBundle {
    pub trust_domain: TrustDomain,
    pub authorities: Vec<JwtAuthority>,
    pub jwks: String,
}

/// Parses a bundle-map key: `spiffe://td` (SPIRE) or a bare `td` (go-spiffe's fake).
pub fn trust_domain_key(key: &str) -> Result<TrustDomain> {
    TrustDomain::parse(key)
        .map_err(|e| Error::bundle(format!("bundle key {key:?} is not a trust domain: {e}")))
}

/// Parses concatenated DER roots. Empty bytes give an empty bundle.
pub fn parse_x509_bundle(trust_domain: TrustDomain, der: &[u8]) -> Result<X509Bundle> {
    let authorities = parse_certificates(der).map_err(|e| {
        Error::bundle(format!(
            "x509bundle: cannot parse certificate for trust domain {trust_domain:?}: {e}"
        ))
    })?;
    Ok(X509Bundle {
        trust_domain,
        authorities,
    })
}

/// Parses a Workload API bundle map (`key => concatenated DER`).
pub fn parse_x509_bundle_map<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a Vec<u8>)>,
) -> Result<BTreeMap<TrustDomain, X509Bundle>> {
    let mut bundles = BTreeMap::new();
    for (key, der) in map {
        let td = trust_domain_key(key)?;
        bundles.insert(td.clone(), parse_x509_bundle(td, der)?);
    }
    Ok(bundles)
}

/// Parses a JWKS document into a trust domain's JWT authorities. Every key
/// must carry a `kid`, as go-spiffe requires.
pub fn parse_jwt_bundle(trust_domain: TrustDomain, jwks: &[u8]) -> Result<JwtBundle> {
    let doc: Value = serde_json::from_slice(jwks)
        .map_err(|e| Error::bundle(format!("jwtbundle: unable to parse JWKS: {e}")))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::bundle("jwtbundle: unable to parse JWKS: no \"keys\" array"))?;
    let mut authorities = Vec::with_capacity(keys.len());
    for (index, jwk) in keys.iter().enumerate() {
        // SPIFFE bundles may hold X.509 roots too; only JWT authorities count here.
        if jwk.get("use").and_then(Value::as_str) == Some("x509-svid") {
            continue;
        }
        let key_id = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
        if key_id.is_empty() {
            return Err(Error::bundle(format!(
                "jwtbundle: error adding authority {index} of JWKS: keyID cannot be empty"
            )));
        }
        let public_key = jwk_to_key(jwk)
            .and_then(|key| {
                key.public_key_to_der()
                    .map_err(|_| Error::bundle("cannot encode key"))
            })
            .map_err(|e| {
                e.context(&format!(
                    "jwtbundle: error adding authority {index} of JWKS"
                ))
            })?;
        authorities.push(JwtAuthority {
            key_id: key_id.to_owned(),
            public_key,
        });
    }
    let jwks = String::from_utf8_lossy(jwks).into_owned();
    Ok(JwtBundle {
        trust_domain,
        authorities,
        jwks,
    })
}

/// Parses a Workload API JWT bundle map (`key => JWKS bytes`).
pub fn parse_jwt_bundle_map<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a Vec<u8>)>,
) -> Result<BTreeMap<TrustDomain, JwtBundle>> {
    let mut bundles = BTreeMap::new();
    for (key, jwks) in map {
        let td = trust_domain_key(key)?;
        bundles.insert(td.clone(), parse_jwt_bundle(td, jwks)?);
    }
    Ok(bundles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::key_to_jwk;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use serde_json::json;

    fn td(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    #[test]
    fn parses_jwks_with_kids() {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let jwks = json!({"keys": [key_to_jwk(&key, "abc").unwrap()]}).to_string();
        let bundle = parse_jwt_bundle(td("example.org"), jwks.as_bytes()).unwrap();
        assert_eq!(bundle.authorities.len(), 1);
        assert_eq!(bundle.authorities[0].key_id, "abc");
        assert_eq!(
            bundle.authorities[0].public_key,
            key.public_key_to_der().unwrap()
        );
    }

    #[test]
    fn rejects_bad_jwks() {
        let err = |doc: &str| {
            parse_jwt_bundle(td("td"), doc.as_bytes())
                .unwrap_err()
                .message
        };
        assert!(err("not json").starts_with("jwtbundle: unable to parse JWKS"));
        assert!(err("{}").contains("no \"keys\""));
        assert_eq!(
            err(r#"{"keys":[{"kty":"EC"}]}"#),
            "jwtbundle: error adding authority 0 of JWKS: keyID cannot be empty"
        );
        assert!(
            err(r#"{"keys":[{"kty":"EC","kid":"k","crv":"P-256","x":"AA","y":"AA"}]}"#)
                .contains("authority 0")
        );
        assert_eq!(
            parse_jwt_bundle(td("td"), br#"{"keys":[]}"#)
                .unwrap()
                .authorities
                .len(),
            0
        );
    }

    #[test]
    fn parses_bundle_keys_in_both_forms() {
        assert_eq!(
            trust_domain_key("spiffe://example.org").unwrap(),
            td("example.org")
        );
        assert_eq!(trust_domain_key("example.org").unwrap(), td("example.org"));
        assert!(trust_domain_key("Bad").is_err());
        let empty = parse_x509_bundle(td("td"), &[]).unwrap();
        assert!(empty.authorities.is_empty());
        assert!(parse_x509_bundle(td("td"), &[0x30, 0x03, 1, 2, 3]).is_err());
    }
}
