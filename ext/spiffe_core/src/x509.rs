//! X.509-SVIDs received from the agent: DER chains split and checked against
//! the X509-SVID profile as go-spiffe checks them, and the private key matched
//! against the leaf.
//!
//! Checking a key costs OpenSSL's PKCS#8 decoder (≈0.5 ms), and an agent
//! returns the same SVID on every fetch until rotation, so [`SvidCache`]
//! remembers the last few checked SVIDs by their exact bytes.

use crate::der::split_concatenated;
use crate::error::{Error, Result};
use crate::id::SpiffeId;
use openssl::pkey::{Id, PKey};
use openssl::x509::X509;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// An X.509-SVID whose chain and key passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Svid {
    pub spiffe_id: SpiffeId,
    /// DER certificates, leaf first.
    pub cert_chain: Vec<Vec<u8>>,
    /// Unencrypted PKCS#8 DER.
    pub private_key: Vec<u8>,
    pub hint: String,
    /// The leaf's notAfter, in seconds since the Unix epoch.
    pub expires_at: i64,
}

fn svid_error(message: String) -> Error {
    Error::svid(format!("x509svid: {message}"))
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing data after certificate".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Splits concatenated DER and checks that each piece is a certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let parts = split_concatenated(bytes).ok_or("malformed DER (bad length or not a SEQUENCE)")?;
    parts
        .into_iter()
        .map(|der| parse_certificate(der).map(|_| der.to_vec()))
        .collect()
}

/// The SPIFFE ID in a certificate's single URI SAN.
pub fn spiffe_id_of(cert: &X509Certificate<'_>) -> Result<SpiffeId, String> {
    let san = cert.subject_alternative_name().map_err(|e| e.to_string())?;
    let mut uris = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let uri = uris.next().ok_or("certificate contains no URI SAN")?;
    if uris.next().is_some() {
        return Err("certificate contains more than one URI SAN".into());
    }
    SpiffeId::parse(uri).map_err(|e| e.message)
}

fn check_leaf(leaf: &X509Certificate<'_>) -> Result<SpiffeId, String> {
    let id =
        spiffe_id_of(leaf).map_err(|e| format!("cannot get leaf certificate SPIFFE ID: {e}"))?;
    if id.path().is_empty() {
        return Err("leaf certificate SPIFFE ID must have a non-root path".into());
    }
    if is_ca(leaf)? {
        return Err("leaf certificate must not have CA flag set to true".into());
    }
    let usage = leaf
        .key_usage()
        .map_err(|e| e.to_string())?
        .map(|ext| *ext.value);
    match usage {
        Some(ku) if !ku.digital_signature() => {
            Err("leaf certificate must have 'digitalSignature' set as key usage".into())
        }
        None => Err("leaf certificate must have 'digitalSignature' set as key usage".into()),
        Some(ku) if ku.key_cert_sign() => {
            Err("leaf certificate must not have 'keyCertSign' set as key usage".into())
        }
        Some(ku) if ku.crl_sign() => {
            Err("leaf certificate must not have 'cRLSign' set as key usage".into())
        }
        Some(_) => Ok(id),
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> Result<bool, String> {
    Ok(cert
        .basic_constraints()
        .map_err(|e| e.to_string())?
        .is_some_and(|bc| bc.value.ca))
}

fn check_signing_certificate(cert: &X509Certificate<'_>) -> Result<(), String> {
    if !is_ca(cert)? {
        return Err("signing certificate must have CA flag set to true".into());
    }
    let usage = cert.key_usage().map_err(|e| e.to_string())?;
    if !usage.is_some_and(|ku| ku.value.key_cert_sign()) {
        return Err("signing certificate must have 'keyCertSign' set as key usage".into());
    }
    Ok(())
}

fn check_key(private_key: &[u8], leaf_der: &[u8]) -> Result<(), Error> {
    let key = PKey::private_key_from_pkcs8(private_key).map_err(|_| {
        svid_error("cannot parse DER encoded private key: not an unencrypted PKCS#8 key".into())
    })?;
    let key_error = |what: &str| svid_error(format!("private key validation failed: {what}"));
    if !matches!(key.id(), Id::RSA | Id::EC | Id::ED25519) {
        return Err(key_error(&format!(
            "unsupported private key type {:?}",
            key.id()
        )));
    }
    let leaf_key = X509::from_der(leaf_der)
        .and_then(|cert| cert.public_key())
        .map_err(|_| key_error("cannot read the leaf certificate's public key"))?;
    if !key.public_eq(&leaf_key) {
        return Err(key_error("leaf certificate does not match private key"));
    }
    Ok(())
}

/// Parses and checks one SVID from the wire: `chain` is concatenated DER,
/// leaf first; `private_key` is PKCS#8 DER. The SPIFFE ID comes from the leaf.
pub fn parse_svid(chain: &[u8], private_key: &[u8], hint: &str) -> Result<X509Svid> {
    let certs = parse_certificates(chain)
        .map_err(|e| svid_error(format!("cannot parse DER encoded certificate: {e}")))?;
    let Some(leaf_der) = certs.first() else {
        return Err(svid_error(
            "certificate validation failed: no certificates found".into(),
        ));
    };
    let validation = |e: String| svid_error(format!("certificate validation failed: {e}"));
    let leaf = parse_certificate(leaf_der).map_err(validation)?;
    let spiffe_id = check_leaf(&leaf).map_err(validation)?;
    for der in &certs[1..] {
        check_signing_certificate(&parse_certificate(der).map_err(validation)?)
            .map_err(validation)?;
    }
    check_key(private_key, leaf_der)?;
    let expires_at = leaf.validity().not_after.timestamp();
    Ok(X509Svid {
        spiffe_id,
        cert_chain: certs,
        private_key: private_key.to_vec(),
        hint: hint.to_owned(),
        expires_at,
    })
}

/// Remembers recently checked SVIDs by their exact wire bytes, so fetching
/// an unchanged SVID again costs a comparison instead of a key decode (a
/// PKCS#8 decode costs hundreds of µs in OpenSSL 3).
#[derive(Default)]
pub struct SvidCache {
    recent: Mutex<Recent>,
}

/// Checked SVIDs with their wire chain, most recent first.
type Recent = VecDeque<(Vec<u8>, X509Svid)>;

const CACHE_CAPACITY: usize = 8;

impl SvidCache {
    /// The process-wide cache that every client shares, so a new client
    /// does not check an SVID another one already checked. The result
    /// depends only on the bytes, whichever client sees them.
    pub fn shared() -> &'static SvidCache {
        static SHARED: OnceLock<SvidCache> = OnceLock::new();
        SHARED.get_or_init(SvidCache::default)
    }

    pub fn parse(&self, chain: &[u8], private_key: &[u8], hint: &str) -> Result<X509Svid> {
        let hit = |(raw_chain, svid): &(Vec<u8>, X509Svid)| {
            raw_chain == chain && svid.private_key == private_key
        };
        if let Some(recent) = self.try_lock() {
            if let Some((_, svid)) = recent.iter().find(|entry| hit(entry)) {
                return Ok(X509Svid {
                    hint: hint.to_owned(),
                    ..svid.clone()
                });
            }
        }
        let svid = parse_svid(chain, private_key, hint)?;
        if let Some(mut recent) = self.try_lock() {
            if recent.len() == CACHE_CAPACITY {
                recent.pop_back();
            }
            recent.push_front((chain.to_vec(), svid.clone()));
        }
        Ok(svid)
    }

    /// Best effort: a lock held elsewhere (or by a thread that did not
    /// survive a fork) means no caching this time, never a wait.
    fn try_lock(&self) -> Option<MutexGuard<'_, Recent>> {
        match self.recent.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ca::{Authority, KeyType, LeafProfile};
    use crate::id::TrustDomain;
    use std::time::Duration;

    struct Minted {
        chain: Vec<u8>,
        key: Vec<u8>,
    }

    fn ca() -> Authority {
        Authority::root(
            &TrustDomain::parse("example.org").unwrap(),
            KeyType::EcP256,
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    fn mint(ca: &Authority, id: &str, profile: LeafProfile) -> Minted {
        let key = KeyType::EcP256.generate().unwrap();
        let leaf = ca
            .mint_leaf(
                &SpiffeId::parse(id).unwrap(),
                &key,
                Duration::from_secs(600),
                profile,
            )
            .unwrap();
        Minted {
            chain: leaf.to_der().unwrap(),
            key: key.private_key_to_pkcs8().unwrap(),
        }
    }

    fn error(minted: &Minted) -> String {
        parse_svid(&minted.chain, &minted.key, "")
            .unwrap_err()
            .message
    }

    #[test]
    fn accepts_spire_profile_and_takes_id_from_the_leaf() {
        let ca = ca();
        let minted = mint(&ca, "spiffe://example.org/w", LeafProfile::default());
        let chain = [minted.chain.clone(), ca.cert.to_der().unwrap()].concat();
        let svid = parse_svid(&chain, &minted.key, "h").unwrap();
        assert_eq!(svid.spiffe_id.to_string(), "spiffe://example.org/w");
        assert_eq!(svid.cert_chain.len(), 2);
        assert_eq!(svid.hint, "h");
        assert!(svid.expires_at > crate::jwt::now_unix() + 500);
    }

    #[test]
    fn rejects_leaf_profile_violations_with_go_spiffe_messages() {
        let ca = ca();
        let prefix = "x509svid: certificate validation failed: ";
        let cases = [
            (
                LeafProfile {
                    with_uri: false,
                    ..LeafProfile::default()
                },
                "spiffe://example.org/w",
                "cannot get leaf certificate SPIFFE ID: certificate contains no URI SAN",
            ),
            (
                LeafProfile::default(),
                "spiffe://example.org",
                "leaf certificate SPIFFE ID must have a non-root path",
            ),
            (
                LeafProfile {
                    ca: true,
                    ..LeafProfile::default()
                },
                "spiffe://example.org/w",
                "leaf certificate must not have CA flag set to true",
            ),
            (
                LeafProfile {
                    digital_signature: false,
                    ..LeafProfile::default()
                },
                "spiffe://example.org/w",
                "leaf certificate must have 'digitalSignature' set as key usage",
            ),
            (
                LeafProfile {
                    key_cert_sign: true,
                    ..LeafProfile::default()
                },
                "spiffe://example.org/w",
                "leaf certificate must not have 'keyCertSign' set as key usage",
            ),
        ];
        for (profile, id, message) in cases {
            assert_eq!(error(&mint(&ca, id, profile)), format!("{prefix}{message}"));
        }
    }

    #[test]
    fn rejects_a_non_ca_signing_certificate() {
        let ca = ca();
        let a = mint(&ca, "spiffe://example.org/a", LeafProfile::default());
        let b = mint(&ca, "spiffe://example.org/b", LeafProfile::default());
        let chain = [a.chain, b.chain].concat();
        assert_eq!(
            parse_svid(&chain, &a.key, "").unwrap_err().message,
            "x509svid: certificate validation failed: signing certificate must have CA flag set to true"
        );
    }

    #[test]
    fn requires_a_matching_pkcs8_key() {
        let ca = ca();
        let a = mint(&ca, "spiffe://example.org/a", LeafProfile::default());
        let b = mint(&ca, "spiffe://example.org/b", LeafProfile::default());
        assert_eq!(
            parse_svid(&a.chain, &b.key, "").unwrap_err().message,
            "x509svid: private key validation failed: leaf certificate does not match private key"
        );
        let sec1 = openssl::pkey::PKey::private_key_from_pkcs8(&a.key)
            .unwrap()
            .ec_key()
            .unwrap()
            .private_key_to_der()
            .unwrap();
        assert!(parse_svid(&a.chain, &sec1, "")
            .unwrap_err()
            .message
            .starts_with("x509svid: cannot parse DER encoded private key"));
        assert!(parse_svid(&a.chain[..10], &a.key, "")
            .unwrap_err()
            .message
            .starts_with("x509svid: cannot parse DER encoded certificate"));
        assert_eq!(
            parse_svid(&[], &a.key, "").unwrap_err().message,
            "x509svid: certificate validation failed: no certificates found"
        );
    }

    #[test]
    fn cache_returns_the_same_svid_with_the_new_hint() {
        let ca = ca();
        let a = mint(&ca, "spiffe://example.org/a", LeafProfile::default());
        let cache = SvidCache::default();
        let first = cache.parse(&a.chain, &a.key, "one").unwrap();
        let second = cache.parse(&a.chain, &a.key, "two").unwrap();
        assert_eq!(first.cert_chain, second.cert_chain);
        assert_eq!(second.hint, "two");
        let b = mint(&ca, "spiffe://example.org/b", LeafProfile::default());
        assert!(
            cache.parse(&a.chain, &b.key, "").is_err(),
            "a changed key is checked again"
        );
    }

    #[test]
    fn cache_is_shared_and_never_waits() {
        assert!(std::ptr::eq(SvidCache::shared(), SvidCache::shared()));
        let ca = ca();
        let a = mint(&ca, "spiffe://example.org/a", LeafProfile::default());
        let cache = SvidCache::default();
        // As if a thread that did not survive a fork held the lock.
        let _held = cache.recent.lock().unwrap();
        let svid = cache.parse(&a.chain, &a.key, "h").unwrap();
        assert_eq!(svid.spiffe_id.to_string(), "spiffe://example.org/a");
    }
}
