//! The agent's certificate authority: a self-signed root (optionally with an
//! intermediate) minting X.509-SVIDs with SPIRE's certificate profile.

use crate::error::{Error, Result};
use crate::id::{SpiffeId, TrustDomain};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name, X509NameBuilder, X509};
use serde::Deserialize;
use std::time::Duration;

/// Key types for SVIDs and authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    #[default]
    EcP256,
    EcP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    Ed25519,
}

impl KeyType {
    pub fn generate(self) -> Result<PKey<Private>> {
        let ec = |nid| {
            EcGroup::from_curve_name(nid)
                .and_then(|g| EcKey::generate(&g))
                .and_then(PKey::from_ec_key)
        };
        match self {
            KeyType::EcP256 => ec(Nid::X9_62_PRIME256V1),
            KeyType::EcP384 => ec(Nid::SECP384R1),
            KeyType::Rsa2048 => Rsa::generate(2048).and_then(PKey::from_rsa),
            KeyType::Ed25519 => PKey::generate_ed25519(),
        }
        .map_err(|e| Error::internal(format!("key generation failed: {e}")))
    }
}

fn ssl(e: openssl::error::ErrorStack) -> Error {
    Error::internal(format!("certificate minting failed: {e}"))
}

fn digest_for(key: &PKey<Private>) -> MessageDigest {
    // Ed25519 signs the message itself; everything else hashes with SHA-256.
    if key.id() == Id::ED25519 {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    }
}

fn name(organization: &str) -> Result<X509Name> {
    let mut builder = X509NameBuilder::new().map_err(ssl)?;
    builder
        .append_entry_by_nid(Nid::COUNTRYNAME, "US")
        .map_err(ssl)?;
    builder
        .append_entry_by_nid(Nid::ORGANIZATIONNAME, organization)
        .map_err(ssl)?;
    Ok(builder.build())
}

fn random_serial() -> Result<Asn1Integer> {
    let mut serial = BigNum::new().map_err(ssl)?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(ssl)?;
    serial.to_asn1_integer().map_err(ssl)
}

fn time_from_now(offset_secs: i64) -> Result<Asn1Time> {
    let now = crate::jwt::now_unix();
    Asn1Time::from_unix(now + offset_secs).map_err(ssl)
}

/// A signing certificate and its key.
pub struct Authority {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// What a minted leaf should look like; the defaults follow SPIRE, the rest
/// exists so tests can mint certificates that break the profile.
#[derive(Debug, Clone, Copy)]
pub struct LeafProfile {
    pub ca: bool,
    pub digital_signature: bool,
    pub key_cert_sign: bool,
    pub with_uri: bool,
}

impl Default for LeafProfile {
    fn default() -> Self {
        Self {
            ca: false,
            digital_signature: true,
            key_cert_sign: false,
            with_uri: true,
        }
    }
}

impl Authority {
    /// A self-signed root for `td` (SPIRE's CA profile).
    pub fn root(td: &TrustDomain, key_type: KeyType, ttl: Duration) -> Result<Self> {
        let key = key_type.generate()?;
        let subject = name("SPIFFE")?;
        let cert = Self::build_ca(td, &key, &subject, None, ttl)?;
        Ok(Self { cert, key })
    }

    /// An intermediate CA signed by `self`.
    pub fn intermediate(&self, td: &TrustDomain, key_type: KeyType, ttl: Duration) -> Result<Self> {
        let key = key_type.generate()?;
        let subject = name("SPIFFE")?;
        let cert = Self::build_ca(td, &key, &subject, Some(self), ttl)?;
        Ok(Self { cert, key })
    }

    fn build_ca(
        td: &TrustDomain,
        key: &PKey<Private>,
        subject: &X509Name,
        issuer: Option<&Authority>,
        ttl: Duration,
    ) -> Result<X509> {
        let mut b = X509Builder::new().map_err(ssl)?;
        b.set_version(2).map_err(ssl)?;
        b.set_serial_number(&*random_serial()?).map_err(ssl)?;
        b.set_subject_name(subject).map_err(ssl)?;
        b.set_issuer_name(issuer.map_or(subject, |i| i.cert.subject_name()))
            .map_err(ssl)?;
        b.set_not_before(&*time_from_now(-10)?).map_err(ssl)?;
        b.set_not_after(&*time_from_now(ttl.as_secs() as i64)?)
            .map_err(ssl)?;
        b.set_pubkey(key).map_err(ssl)?;
        b.append_extension(
            BasicConstraints::new()
                .critical()
                .ca()
                .build()
                .map_err(ssl)?,
        )
        .map_err(ssl)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .map_err(ssl)?,
        )
        .map_err(ssl)?;
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
            .map_err(ssl)?;
        b.append_extension(ski).map_err(ssl)?;
        if issuer.is_some() {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .map_err(ssl)?;
            b.append_extension(aki).map_err(ssl)?;
        }
        let san = SubjectAlternativeName::new()
            .uri(&td.id_string())
            .build(&b.x509v3_context(None, None))
            .map_err(ssl)?;
        b.append_extension(san).map_err(ssl)?;
        let signer = issuer.map_or(key, |i| &i.key);
        b.sign(signer, digest_for(signer)).map_err(ssl)?;
        Ok(b.build())
    }

    /// Mints a leaf X.509-SVID for `id` over `leaf_key` (SPIRE's profile by default).
    pub fn mint_leaf(
        &self,
        id: &SpiffeId,
        leaf_key: &PKey<Private>,
        ttl: Duration,
        profile: LeafProfile,
    ) -> Result<X509> {
        let mut b = X509Builder::new().map_err(ssl)?;
        b.set_version(2).map_err(ssl)?;
        b.set_serial_number(&*random_serial()?).map_err(ssl)?;
        b.set_subject_name(&*name("SPIRE")?).map_err(ssl)?;
        b.set_issuer_name(self.cert.subject_name()).map_err(ssl)?;
        b.set_not_before(&*time_from_now(-10)?).map_err(ssl)?;
        let not_after = time_from_now(ttl.as_secs() as i64)?;
        // SPIRE caps a leaf's lifetime at its issuer's.
        let capped = if self.cert.not_after() < not_after {
            self.cert.not_after()
        } else {
            &not_after
        };
        b.set_not_after(capped).map_err(ssl)?;
        b.set_pubkey(leaf_key).map_err(ssl)?;
        let mut bc = BasicConstraints::new();
        bc.critical();
        if profile.ca {
            bc.ca();
        }
        b.append_extension(bc.build().map_err(ssl)?).map_err(ssl)?;
        let mut ku = KeyUsage::new();
        ku.critical().key_encipherment().key_agreement();
        if profile.digital_signature {
            ku.digital_signature();
        }
        if profile.key_cert_sign {
            ku.key_cert_sign();
        }
        b.append_extension(ku.build().map_err(ssl)?).map_err(ssl)?;
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()
                .map_err(ssl)?,
        )
        .map_err(ssl)?;
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(Some(&self.cert), None))
            .map_err(ssl)?;
        b.append_extension(ski).map_err(ssl)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .map_err(ssl)?;
        b.append_extension(aki).map_err(ssl)?;
        if profile.with_uri {
            let san = SubjectAlternativeName::new()
                .uri(&id.to_string())
                .build(&b.x509v3_context(None, None))
                .map_err(ssl)?;
            b.append_extension(san).map_err(ssl)?;
        }
        b.sign(&self.key, digest_for(&self.key)).map_err(ssl)?;
        Ok(b.build())
    }
}
