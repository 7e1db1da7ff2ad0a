//! One trust domain's authorities: its X.509 root (and optional intermediate)
//! and JWT signing keys, with rotation. After a rotation the bundle keeps the
//! previous root and the JWKS the previous key until what they signed expires.

use super::ca::{Authority, KeyType, LeafProfile};
use super::jwt_issuer::SigningKey;
use crate::error::{Error, Result};
use crate::id::{SpiffeId, TrustDomain};
use crate::jws::Algorithm;
use openssl::pkey::{PKey, Public};
use openssl::x509::X509;
use serde_json::{json, Value};
use std::time::Duration;

/// How a domain mints and rotates.
#[derive(Debug, Clone, Copy)]
pub struct DomainSettings {
    pub ca_key_type: KeyType,
    pub jwt: (Algorithm, KeyType),
    pub intermediate: bool,
    pub ca_ttl: Duration,
}

/// A previous authority still trusted until `until` (unix seconds).
struct Retired<T> {
    item: T,
    until: f64,
}

pub struct Domain {
    pub trust_domain: TrustDomain,
    settings: DomainSettings,
    root: Authority,
    issuer: Authority,
    retired_roots: Vec<Retired<X509>>,
    jwt_key: SigningKey,
    retired_jwt_keys: Vec<Retired<SigningKey>>,
}

/// An SVID as minted: chain (leaf first, no root), PKCS#8 key, lifetime.
#[derive(Clone)]
pub struct Minted {
    pub chain: Vec<u8>,
    pub key: Vec<u8>,
    pub issued_at: f64,
    pub expires_at: f64,
}

fn der(result: std::result::Result<Vec<u8>, openssl::error::ErrorStack>) -> Result<Vec<u8>> {
    result.map_err(|e| Error::internal(format!("DER encoding failed: {e}")))
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Domain {
    pub fn new(trust_domain: TrustDomain, settings: DomainSettings) -> Result<Self> {
        let (root, issuer) = Self::authorities(&trust_domain, &settings)?;
        let jwt_key = SigningKey::new(settings.jwt.1.generate()?, Some(settings.jwt.0))?;
        Ok(Self {
            trust_domain,
            settings,
            root,
            issuer,
            retired_roots: Vec::new(),
            jwt_key,
            retired_jwt_keys: Vec::new(),
        })
    }

    fn authorities(td: &TrustDomain, settings: &DomainSettings) -> Result<(Authority, Authority)> {
        let root = Authority::root(td, settings.ca_key_type, settings.ca_ttl)?;
        let issuer = if settings.intermediate {
            root.intermediate(td, settings.ca_key_type, settings.ca_ttl)?
        } else {
            Authority {
                cert: root.cert.clone(),
                key: root.key.clone(),
            }
        };
        Ok((root, issuer))
    }

    /// Concatenated DER of every trusted root: the current one first.
    pub fn bundle_der(&self) -> Vec<u8> {
        let mut out = self.root.cert.to_der().unwrap_or_default();
        for retired in &self.retired_roots {
            out.extend(retired.item.to_der().unwrap_or_default());
        }
        out
    }

    /// The signing key for new JWT-SVIDs.
    pub fn jwt_key(&self) -> &SigningKey {
        &self.jwt_key
    }

    /// Every trusted JWT authority: `(kid, public key)`.
    pub fn jwt_authorities(&self) -> Vec<(String, PKey<Public>)> {
        std::iter::once(&self.jwt_key)
            .chain(self.retired_jwt_keys.iter().map(|r| &r.item))
            .filter_map(|k| {
                let public = PKey::public_key_from_der(&k.key.public_key_to_der().ok()?).ok()?;
                Some((k.kid.clone(), public))
            })
            .collect()
    }

    /// The JWKS, formatted as SPIRE does (4-space indent, `kid` on each key, no `use`).
    pub fn jwks_json(&self) -> String {
        let keys: Vec<Value> = std::iter::once(&self.jwt_key)
            .chain(self.retired_jwt_keys.iter().map(|r| &r.item))
            .filter_map(|k| k.jwk().ok())
            .collect();
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            serde_json::ser::PrettyFormatter::with_indent(b"    "),
        );
        serde::Serialize::serialize(&json!({ "keys": keys }), &mut ser)
            .expect("a JSON value always serializes");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// Mints an X.509-SVID in this domain.
    pub fn mint(
        &self,
        id: &SpiffeId,
        key_type: KeyType,
        ttl: Duration,
        profile: LeafProfile,
    ) -> Result<Minted> {
        let key = key_type.generate()?;
        let leaf = self.issuer.mint_leaf(id, &key, ttl, profile)?;
        let mut chain = der(leaf.to_der())?;
        if self.settings.intermediate {
            chain.extend(der(self.issuer.cert.to_der())?);
        }
        let issued_at = now();
        Ok(Minted {
            chain,
            key: der(key.private_key_to_pkcs8())?,
            issued_at,
            expires_at: issued_at + ttl.as_secs_f64(),
        })
    }

    /// A new root (and intermediate); the old root stays in the bundle for `overlap`.
    pub fn rotate_ca(&mut self, overlap: Duration) -> Result<()> {
        let (root, issuer) = Self::authorities(&self.trust_domain, &self.settings)?;
        let old = std::mem::replace(&mut self.root, root);
        self.issuer = issuer;
        self.retired_roots.push(Retired {
            item: old.cert,
            until: now() + overlap.as_secs_f64(),
        });
        Ok(())
    }

    /// A new JWT signing key; the old one stays in the JWKS for `overlap`.
    pub fn rotate_jwt_key(&mut self, overlap: Duration) -> Result<()> {
        let fresh = SigningKey::new(self.settings.jwt.1.generate()?, Some(self.settings.jwt.0))?;
        let old = std::mem::replace(&mut self.jwt_key, fresh);
        self.retired_jwt_keys.push(Retired {
            item: old,
            until: now() + overlap.as_secs_f64(),
        });
        Ok(())
    }

    /// Forgets retired authorities whose overlap ended; true if any went.
    pub fn prune(&mut self, at: f64) -> bool {
        let before = self.retired_roots.len() + self.retired_jwt_keys.len();
        self.retired_roots.retain(|r| r.until > at);
        self.retired_jwt_keys.retain(|r| r.until > at);
        before != self.retired_roots.len() + self.retired_jwt_keys.len()
    }

    /// When the next retired authority leaves, if any.
    pub fn next_prune(&self) -> Option<f64> {
        self.retired_roots
            .iter()
            .map(|r| r.until)
            .chain(self.retired_jwt_keys.iter().map(|r| r.until))
            .reduce(f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        let settings = DomainSettings {
            ca_key_type: KeyType::EcP256,
            jwt: (Algorithm::ES256, KeyType::EcP256),
            intermediate: false,
            ca_ttl: Duration::from_secs(3600),
        };
        Domain::new(TrustDomain::parse("example.org").unwrap(), settings).unwrap()
    }

    #[test]
    fn ca_rotation_keeps_the_old_root_for_the_overlap() {
        let mut d = domain();
        let old_bundle = d.bundle_der();
        d.rotate_ca(Duration::from_secs(60)).unwrap();
        let bundle = d.bundle_der();
        assert!(bundle.ends_with(&old_bundle), "old root still trusted");
        assert!(bundle.len() > old_bundle.len());
        assert_eq!(d.next_prune().map(|t| t > now()), Some(true));
        assert!(d.prune(now() + 61.0));
        assert_eq!(
            crate::der::split_concatenated(&d.bundle_der())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn jwt_key_rotation_keeps_both_keys_for_the_overlap() {
        let mut d = domain();
        let old_kid = d.jwt_key().kid.clone();
        d.rotate_jwt_key(Duration::from_secs(60)).unwrap();
        let kids: Vec<String> = d.jwt_authorities().into_iter().map(|(k, _)| k).collect();
        assert_eq!(kids, vec![d.jwt_key().kid.clone(), old_kid]);
        assert!(d.jwks_json().contains("\n    \"keys\""));
        d.prune(now() + 61.0);
        assert_eq!(d.jwt_authorities().len(), 1);
    }
}
