//! JWS compact signatures for JWT-SVIDs (RS/PS/ES 256/384/512) and JWK
//! conversion, over OpenSSL.

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use serde_json::{json, Value};

/// The algorithms the JWT-SVID standard allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    ES512,
    PS256,
    PS384,
    PS512,
}

pub const ALLOWED: [&str; 9] = [
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

impl Algorithm {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
        }
    }

    fn digest(self) -> MessageDigest {
        match self {
            Self::RS256 | Self::ES256 | Self::PS256 => MessageDigest::sha256(),
            Self::RS384 | Self::ES384 | Self::PS384 => MessageDigest::sha384(),
            Self::RS512 | Self::ES512 | Self::PS512 => MessageDigest::sha512(),
        }
    }

    /// The curve an ES algorithm requires, and its coordinate size in bytes.
    fn curve(self) -> Option<(Nid, usize)> {
        match self {
            Self::ES256 => Some((Nid::X9_62_PRIME256V1, 32)),
            Self::ES384 => Some((Nid::SECP384R1, 48)),
            Self::ES512 => Some((Nid::SECP521R1, 66)),
            _ => None,
        }
    }

    fn is_pss(self) -> bool {
        matches!(self, Self::PS256 | Self::PS384 | Self::PS512)
    }

    /// The natural algorithm for a signing key (ES* by curve, RS256 for RSA).
    pub fn for_key<T: HasPublic>(key: &PKeyRef<T>) -> Result<Self> {
        match key.id() {
            Id::RSA => Ok(Self::RS256),
            Id::EC => match key.ec_key().ok().and_then(|k| k.group().curve_name()) {
                Some(Nid::X9_62_PRIME256V1) => Ok(Self::ES256),
                Some(Nid::SECP384R1) => Ok(Self::ES384),
                Some(Nid::SECP521R1) => Ok(Self::ES512),
                _ => Err(Error::jwt("unsupported EC curve for JWT signing")),
            },
            other => Err(Error::jwt(format!(
                "unsupported JWT signing key type {other:?}"
            ))),
        }
    }
}

fn crypto_error(_: openssl::error::ErrorStack) -> Error {
    Error::jwt("error in cryptographic primitive")
}

/// Signs `input` (the `header.payload` text) and returns the raw JWS signature.
pub fn sign(alg: Algorithm, key: &PKeyRef<Private>, input: &[u8]) -> Result<Vec<u8>> {
    if let Some((_, size)) = alg.curve() {
        let digest = hash(alg.digest(), input).map_err(crypto_error)?;
        let ec = key.ec_key().map_err(crypto_error)?;
        let sig = EcdsaSig::sign(&digest, &ec).map_err(crypto_error)?;
        let mut raw = sig.r().to_vec_padded(size as i32).map_err(crypto_error)?;
        raw.extend(sig.s().to_vec_padded(size as i32).map_err(crypto_error)?);
        return Ok(raw);
    }
    let mut signer = Signer::new(alg.digest(), key).map_err(crypto_error)?;
    if alg.is_pss() {
        signer
            .set_rsa_padding(Padding::PKCS1_PSS)
            .map_err(crypto_error)?;
        signer
            .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .map_err(crypto_error)?;
    }
    signer.sign_oneshot_to_vec(input).map_err(crypto_error)
}

/// Verifies a raw JWS signature. The key must fit the algorithm (an EC key
/// on the algorithm's curve, or an RSA key for RS*/PS*).
pub fn verify(
    alg: Algorithm,
    key: &PKeyRef<Public>,
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    if let Some((nid, size)) = alg.curve() {
        let ec = key
            .ec_key()
            .map_err(|_| Error::jwt("key type does not match the token's algorithm"))?;
        if ec.group().curve_name() != Some(nid) {
            return Err(Error::jwt("key curve does not match the token's algorithm"));
        }
        if signature.len() != 2 * size {
            return Ok(false);
        }
        let r = BigNum::from_slice(&signature[..size]).map_err(crypto_error)?;
        let s = BigNum::from_slice(&signature[size..]).map_err(crypto_error)?;
        let sig = EcdsaSig::from_private_components(r, s).map_err(crypto_error)?;
        let digest = hash(alg.digest(), input).map_err(crypto_error)?;
        return Ok(sig.verify(&digest, &ec).unwrap_or(false));
    }
    if key.id() != Id::RSA {
        return Err(Error::jwt("key type does not match the token's algorithm"));
    }
    let mut verifier = Verifier::new(alg.digest(), key).map_err(crypto_error)?;
    if alg.is_pss() {
        verifier
            .set_rsa_padding(Padding::PKCS1_PSS)
            .map_err(crypto_error)?;
        verifier
            .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .map_err(crypto_error)?;
    }
    Ok(verifier.verify_oneshot(signature, input).unwrap_or(false))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn field(jwk: &Value, name: &str) -> Result<Vec<u8>> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bundle(format!("JWK is missing \"{name}\"")))?;
    crate::jwt::decode_b64(text)
        .map_err(|_| Error::bundle(format!("JWK \"{name}\" is not base64url")))
}

/// Converts a public JWK (EC P-256/384/521, RSA, OKP Ed25519) to a key.
pub fn jwk_to_key(jwk: &Value) -> Result<PKey<Public>> {
    let bad = |what: &str| Error::bundle(format!("invalid JWK: {what}"));
    match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => {
            let nid = match jwk.get("crv").and_then(Value::as_str) {
                Some("P-256") => Nid::X9_62_PRIME256V1,
                Some("P-384") => Nid::SECP384R1,
                Some("P-521") => Nid::SECP521R1,
                other => return Err(bad(&format!("unsupported curve {other:?}"))),
            };
            let group = EcGroup::from_curve_name(nid).map_err(|_| bad("curve"))?;
            let x = BigNum::from_slice(&field(jwk, "x")?).map_err(|_| bad("x"))?;
            let y = BigNum::from_slice(&field(jwk, "y")?).map_err(|_| bad("y"))?;
            let ec = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
                .map_err(|_| bad("point not on curve"))?;
            PKey::from_ec_key(ec).map_err(|_| bad("EC key"))
        }
        Some("RSA") => {
            let n = BigNum::from_slice(&field(jwk, "n")?).map_err(|_| bad("n"))?;
            let e = BigNum::from_slice(&field(jwk, "e")?).map_err(|_| bad("e"))?;
            let rsa = Rsa::from_public_components(n, e).map_err(|_| bad("RSA key"))?;
            PKey::from_rsa(rsa).map_err(|_| bad("RSA key"))
        }
        Some("OKP") if jwk.get("crv").and_then(Value::as_str) == Some("Ed25519") => {
            PKey::public_key_from_raw_bytes(&field(jwk, "x")?, Id::ED25519)
                .map_err(|_| bad("Ed25519 key"))
        }
        other => Err(bad(&format!("unsupported key type {other:?}"))),
    }
}

/// The public JWK of a key, with its `kid` (as SPIRE publishes JWT authorities).
pub fn key_to_jwk<T: HasPublic>(key: &PKeyRef<T>, kid: &str) -> Result<Value> {
    match key.id() {
        Id::EC => {
            let ec = key.ec_key().map_err(crypto_error)?;
            let (crv, size) = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => ("P-256", 32),
                Some(Nid::SECP384R1) => ("P-384", 48),
                Some(Nid::SECP521R1) => ("P-521", 66),
                _ => return Err(Error::jwt("unsupported curve")),
            };
            let mut ctx = BigNumContext::new().map_err(crypto_error)?;
            let (mut x, mut y) = (
                BigNum::new().map_err(crypto_error)?,
                BigNum::new().map_err(crypto_error)?,
            );
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .map_err(crypto_error)?;
            Ok(json!({
                "kty": "EC", "kid": kid, "crv": crv,
                "x": b64(&x.to_vec_padded(size).map_err(crypto_error)?),
                "y": b64(&y.to_vec_padded(size).map_err(crypto_error)?),
            }))
        }
        Id::RSA => {
            let rsa = key.rsa().map_err(crypto_error)?;
            Ok(
                json!({ "kty": "RSA", "kid": kid, "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()) }),
            )
        }
        Id::ED25519 => {
            let raw = key.raw_public_key().map_err(crypto_error)?;
            Ok(json!({ "kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(&raw) }))
        }
        other => Err(Error::jwt(format!("unsupported key type {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_key(nid: Nid) -> PKey<Private> {
        PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
            .unwrap()
    }

    fn public(key: &PKey<Private>) -> PKey<Public> {
        PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap()
    }

    #[test]
    fn signs_and_verifies_every_algorithm() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let cases = [
            (Algorithm::ES256, ec_key(Nid::X9_62_PRIME256V1)),
            (Algorithm::ES384, ec_key(Nid::SECP384R1)),
            (Algorithm::ES512, ec_key(Nid::SECP521R1)),
            (Algorithm::RS256, rsa.clone()),
            (Algorithm::RS384, rsa.clone()),
            (Algorithm::RS512, rsa.clone()),
            (Algorithm::PS256, rsa.clone()),
            (Algorithm::PS384, rsa.clone()),
            (Algorithm::PS512, rsa.clone()),
        ];
        for (alg, key) in cases {
            let sig = sign(alg, &key, b"header.payload").unwrap();
            let public = public(&key);
            assert!(
                verify(alg, &public, b"header.payload", &sig).unwrap(),
                "{alg:?}"
            );
            assert!(
                !verify(alg, &public, b"header.tampered", &sig).unwrap(),
                "{alg:?}"
            );
            let jwk = key_to_jwk(&key, "kid-1").unwrap();
            assert_eq!(jwk["kid"], "kid-1");
            assert!(jwk_to_key(&jwk).unwrap().public_eq(&public), "{alg:?}");
        }
    }

    #[test]
    fn rejects_key_type_mismatch() {
        let ec = public(&ec_key(Nid::X9_62_PRIME256V1));
        assert!(verify(Algorithm::RS256, &ec, b"x", b"sig").is_err());
        assert!(verify(Algorithm::ES384, &ec, b"x", &[0; 96]).is_err());
    }

    #[test]
    fn ed25519_jwk_round_trips() {
        let key = PKey::generate_ed25519().unwrap();
        let jwk = key_to_jwk(&key, "k").unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert!(jwk_to_key(&jwk).unwrap().public_eq(&key));
    }

    #[test]
    fn rejects_bad_jwks() {
        assert!(jwk_to_key(&json!({"kty": "oct", "k": "AA"})).is_err());
        assert!(jwk_to_key(&json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})).is_err());
        assert!(jwk_to_key(&json!({"kty": "RSA", "n": "!!"})).is_err());
    }
}
