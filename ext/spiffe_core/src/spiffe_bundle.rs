//! The SPIFFE bundle format (SPIFFE Trust Domain and Bundle §4): one JWK Set
//! holding a trust domain's X.509 authorities (`use: x509-svid`, `x5c`) and
//! JWT authorities (`use: jwt-svid`, `kid`), with `spiffe_sequence` and
//! `spiffe_refresh_hint`. This is what federation endpoints serve and what
//! operators keep in files.

use crate::bundle::JwtAuthority;
use crate::error::{Error, Result};
use crate::id::TrustDomain;
use crate::jws::{jwk_to_key, key_to_jwk};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde_json::{json, Map, Value};

const X509_SVID_USE: &str = "x509-svid";
const JWT_SVID_USE: &str = "jwt-svid";
/// Key types this implementation can use; others are ignored (§4.2.1).
const KNOWN_KEY_TYPES: [&str; 3] = ["EC", "RSA", "OKP"];

/// A trust domain's SPIFFE bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeBundle {
    pub trust_domain: TrustDomain,
    /// DER root certificates, without duplicates, in document order.
    pub x509_authorities: Vec<Vec<u8>>,
    /// JWT keys in document order; a repeated `kid` keeps the last key.
    pub jwt_authorities: Vec<JwtAuthority>,
    pub sequence_number: Option<u64>,
    /// Seconds.
    pub refresh_hint: Option<i64>,
}

fn error(message: impl std::fmt::Display) -> Error {
    Error::bundle(format!("spiffebundle: {message}"))
}

fn optional_integer<T>(
    doc: &Value,
    name: &str,
    convert: fn(&Value) -> Option<T>,
) -> Result<Option<T>> {
    match doc.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => convert(value)
            .map(Some)
            .ok_or_else(|| error(format!("{name} must be an integer, got {value}"))),
    }
}

/// Parses a SPIFFE bundle document. Entries with a missing or unknown `use`,
/// an unknown key type, or an `x509-svid` entry without `x5c` are ignored, as
/// the standard requires; a malformed entry of a known kind is an error.
pub fn parse(trust_domain: TrustDomain, document: &[u8]) -> Result<SpiffeBundle> {
    let doc: Value = serde_json::from_slice(document)
        .map_err(|e| error(format!("unable to parse JWKS: {e}")))?;
    if !doc.is_object() {
        return Err(error("unable to parse JWKS: not a JSON object"));
    }
    let sequence_number = optional_integer(&doc, "spiffe_sequence", Value::as_u64)?;
    let refresh_hint = optional_integer(&doc, "spiffe_refresh_hint", Value::as_i64)?;
    let keys = match doc.get("keys") {
        Some(Value::Array(keys)) => keys,
        Some(_) => return Err(error("\"keys\" must be an array")),
        None => return Err(error("no keys found")),
    };
    let mut bundle = SpiffeBundle {
        trust_domain,
        x509_authorities: Vec::new(),
        jwt_authorities: Vec::new(),
        sequence_number,
        refresh_hint,
    };
    for (index, jwk) in keys.iter().enumerate() {
        match jwk.get("use").and_then(Value::as_str) {
            Some(X509_SVID_USE) => {
                if let Some(der) = x509_entry(jwk, index)? {
                    if !bundle.x509_authorities.contains(&der) {
                        bundle.x509_authorities.push(der);
                    }
                }
            }
            Some(JWT_SVID_USE) => {
                if let Some(authority) = jwt_entry(jwk, index)? {
                    bundle
                        .jwt_authorities
                        .retain(|a| a.key_id != authority.key_id);
                    bundle.jwt_authorities.push(authority);
                }
            }
            _ => {}
        }
    }
    Ok(bundle)
}

/// The first certificate of `x5c` (X509-SVID §6.2), or `None` if there is none.
fn x509_entry(jwk: &Value, index: usize) -> Result<Option<Vec<u8>>> {
    let Some(first) = jwk
        .get("x5c")
        .and_then(Value::as_array)
        .and_then(|certs| certs.first())
    else {
        return Ok(None);
    };
    let bad = |why: &str| error(format!("x509-svid entry {index}: {why}"));
    let der = first
        .as_str()
        .and_then(|text| STANDARD.decode(text).ok())
        .ok_or_else(|| bad("x5c is not base64"))?;
    X509::from_der(&der).map_err(|_| bad("x5c does not hold a DER certificate"))?;
    Ok(Some(der))
}

fn jwt_entry(jwk: &Value, index: usize) -> Result<Option<JwtAuthority>> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
    if !KNOWN_KEY_TYPES.contains(&kty) {
        return Ok(None);
    }
    let key_id = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
    let context =
        |message: String| error(format!("error adding authority {index} of JWKS: {message}"));
    if key_id.is_empty() {
        return Err(context("keyID cannot be empty".into()));
    }
    let public_key = jwk_to_key(jwk)
        .and_then(|key| {
            key.public_key_to_der()
                .map_err(|_| Error::bundle("cannot encode key"))
        })
        .map_err(|e| context(e.message))?;
    Ok(Some(JwtAuthority {
        key_id: key_id.to_owned(),
        public_key,
    }))
}

/// The JWK of a JWT authority, as a SPIFFE bundle or a JWKS holds it.
fn jwt_jwk(authority: &JwtAuthority, with_use: bool) -> Result<Value> {
    let key = PKey::public_key_from_der(&authority.public_key)
        .map_err(|_| error(format!("key {:?} is not a public key", authority.key_id)))?;
    let mut jwk = key_to_jwk(&key, &authority.key_id)?;
    if with_use {
        jwk["use"] = json!(JWT_SVID_USE);
    }
    Ok(jwk)
}

impl SpiffeBundle {
    /// The bundle as a SPIFFE bundle document (JSON). The trust domain is not
    /// part of the document; it travels beside it.
    pub fn marshal(&self) -> Result<String> {
        let mut keys = Vec::with_capacity(self.x509_authorities.len() + self.jwt_authorities.len());
        for der in &self.x509_authorities {
            let cert = X509::from_der(der)
                .map_err(|_| error("an X.509 authority is not a DER certificate"))?;
            let key = cert
                .public_key()
                .map_err(|_| error("cannot read an X.509 authority's key"))?;
            let mut jwk = key_to_jwk(&key, "")?;
            if let Some(fields) = jwk.as_object_mut() {
                fields.remove("kid");
            }
            jwk["use"] = json!(X509_SVID_USE);
            jwk["x5c"] = json!([STANDARD.encode(der)]);
            keys.push(jwk);
        }
        for authority in &self.jwt_authorities {
            keys.push(jwt_jwk(authority, true)?);
        }
        let mut doc = Map::new();
        doc.insert("keys".into(), Value::Array(keys));
        if let Some(sequence) = self.sequence_number {
            doc.insert("spiffe_sequence".into(), json!(sequence));
        }
        if let Some(hint) = self.refresh_hint {
            doc.insert("spiffe_refresh_hint".into(), json!(hint));
        }
        Ok(Value::Object(doc).to_string())
    }
}

/// A plain JWKS (keys with `kid`, no `use`), as go-spiffe's `jwtbundle.Marshal`.
pub fn marshal_jwks(authorities: &[JwtAuthority]) -> Result<String> {
    let keys = authorities
        .iter()
        .map(|authority| jwt_jwk(authority, false))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({ "keys": keys }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::Private;

    fn td() -> TrustDomain {
        TrustDomain::parse("example.org").unwrap()
    }

    fn ec_key() -> PKey<Private> {
        PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap()
    }

    fn root_der(key: &PKey<Private>) -> Vec<u8> {
        let mut builder = X509::builder().unwrap();
        builder.set_pubkey(key).unwrap();
        let not_before = openssl::asn1::Asn1Time::days_from_now(0).unwrap();
        let not_after = openssl::asn1::Asn1Time::days_from_now(1).unwrap();
        builder.set_not_before(&not_before).unwrap();
        builder.set_not_after(&not_after).unwrap();
        builder
            .sign(key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        builder.build().to_der().unwrap()
    }

    fn sample() -> SpiffeBundle {
        let root_key = ec_key();
        let jwt_key = ec_key();
        SpiffeBundle {
            trust_domain: td(),
            x509_authorities: vec![root_der(&root_key)],
            jwt_authorities: vec![JwtAuthority {
                key_id: "k1".into(),
                public_key: jwt_key.public_key_to_der().unwrap(),
            }],
            sequence_number: Some(7),
            refresh_hint: Some(300),
        }
    }

    #[test]
    fn marshal_and_parse_round_trip() {
        let bundle = sample();
        let document = bundle.marshal().unwrap();
        let doc: Value = serde_json::from_str(&document).unwrap();
        assert_eq!(doc["spiffe_sequence"], 7);
        assert_eq!(doc["spiffe_refresh_hint"], 300);
        assert_eq!(doc["keys"][0]["use"], "x509-svid");
        assert!(
            doc["keys"][0].get("kid").is_none(),
            "x509-svid entries carry no kid"
        );
        assert_eq!(doc["keys"][1]["use"], "jwt-svid");
        assert_eq!(doc["keys"][1]["kid"], "k1");
        assert_eq!(parse(td(), document.as_bytes()).unwrap(), bundle);
    }

    #[test]
    fn ignores_what_the_standard_says_to_ignore() {
        let bundle = sample();
        let doc: Value = serde_json::from_str(&bundle.marshal().unwrap()).unwrap();
        let (x509, jwt) = (doc["keys"][0].clone(), doc["keys"][1].clone());
        let mut no_use = jwt.clone();
        no_use.as_object_mut().unwrap().remove("use");
        let mut other_use = jwt.clone();
        other_use["use"] = json!("wit-svid");
        let mut no_x5c = x509.clone();
        no_x5c.as_object_mut().unwrap().remove("x5c");
        let unknown_kty = json!({"use": "jwt-svid", "kty": "oct", "kid": "s", "k": "AA"});
        let document =
            json!({"keys": [no_use, other_use, no_x5c, unknown_kty, x509.clone(), x509, jwt]});
        let parsed = parse(td(), document.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.x509_authorities, bundle.x509_authorities);
        assert_eq!(parsed.jwt_authorities, bundle.jwt_authorities);
        assert_eq!((parsed.sequence_number, parsed.refresh_hint), (None, None));
    }

    #[test]
    fn rejects_malformed_documents() {
        let err = |doc: &str| parse(td(), doc.as_bytes()).unwrap_err().message;
        assert!(err("nope").starts_with("spiffebundle: unable to parse JWKS"));
        assert_eq!(
            err("[]"),
            "spiffebundle: unable to parse JWKS: not a JSON object"
        );
        assert_eq!(err("{}"), "spiffebundle: no keys found");
        assert_eq!(
            err(r#"{"keys":[],"spiffe_sequence":-1}"#),
            "spiffebundle: spiffe_sequence must be an integer, got -1"
        );
        assert_eq!(
            err(r#"{"keys":[{"use":"x509-svid","x5c":["%%"]}]}"#),
            "spiffebundle: x509-svid entry 0: x5c is not base64"
        );
        assert_eq!(
            err(r#"{"keys":[{"use":"x509-svid","x5c":["AAAA"]}]}"#),
            "spiffebundle: x509-svid entry 0: x5c does not hold a DER certificate"
        );
        assert_eq!(
            err(r#"{"keys":[{"use":"jwt-svid","kty":"EC"}]}"#),
            "spiffebundle: error adding authority 0 of JWKS: keyID cannot be empty"
        );
        assert!(err(
            r#"{"keys":[{"use":"jwt-svid","kty":"EC","kid":"a","crv":"P-256","x":"AA","y":"AA"}]}"#
        )
        .starts_with("spiffebundle: error adding authority 0 of JWKS: invalid JWK"));
        let empty = parse(td(), br#"{"keys":[]}"#).unwrap();
        assert!(empty.x509_authorities.is_empty() && empty.jwt_authorities.is_empty());
    }

    #[test]
    fn marshals_plain_jwks() {
        let bundle = sample();
        let jwks = marshal_jwks(&bundle.jwt_authorities).unwrap();
        let parsed = crate::bundle::parse_jwt_bundle(td(), jwks.as_bytes()).unwrap();
        assert_eq!(parsed.authorities, bundle.jwt_authorities);
        assert!(!jwks.contains("\"use\""));
    }
}
