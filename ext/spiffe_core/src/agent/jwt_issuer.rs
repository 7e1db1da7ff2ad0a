//! JWT-SVID minting (cached per SPIFFE ID and audience set until half their
//! lifetime, as SPIRE does) and SPIRE's ValidateJWTSVID checks and messages.

use crate::error::{Error, Result};
use crate::id::SpiffeId;
use crate::jws::{self, Algorithm};
use crate::jwt::{self, now_unix};
use openssl::pkey::{PKey, Private, Public};
use openssl::rand::rand_bytes;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A JWT signing key with SPIRE-style 32-character alphanumeric key ID.
pub struct SigningKey {
    pub kid: String,
    pub key: PKey<Private>,
    pub alg: Algorithm,
}

/// A SPIRE-style key ID: 32 random alphanumeric characters.
pub fn random_kid() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    rand_bytes(&mut bytes)
        .map_err(|e| Error::internal(format!("no randomness for a key ID: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

impl SigningKey {
    pub fn new(key: PKey<Private>, alg: Option<Algorithm>) -> Result<Self> {
        let alg = match alg {
            Some(alg) => alg,
            None => Algorithm::for_key(&key)?,
        };
        Ok(Self {
            kid: random_kid()?,
            key,
            alg,
        })
    }

    pub fn jwk(&self) -> Result<Value> {
        jws::key_to_jwk(&self.key, &self.kid)
    }

    /// Signs `claims` into a compact JWS with `alg`, `kid` and `typ: JWT`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let header = json!({ "alg": self.alg.name(), "kid": self.kid, "typ": "JWT" });
        let input = format!(
            "{}.{}",
            jwt::encode_b64(header.to_string().as_bytes()),
            jwt::encode_b64(claims.to_string().as_bytes())
        );
        let signature = jws::sign(self.alg, &self.key, input.as_bytes())?;
        Ok(format!("{input}.{}", jwt::encode_b64(&signature)))
    }
}

struct Cached {
    token: String,
    issued_at: i64,
    expires_at: i64,
}

/// Issues JWT-SVIDs and keeps SPIRE's per-(ID, audience set) token cache.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, Vec<String>), Cached>>,
}

impl TokenCache {
    pub fn clear(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn token(
        &self,
        signer: &SigningKey,
        id: &SpiffeId,
        audience: &[String],
        ttl: Duration,
    ) -> Result<String> {
        let mut key_audience: Vec<String> =
            audience.iter().filter(|a| !a.is_empty()).cloned().collect();
        if key_audience.is_empty() {
            return Err(Error::jwt("audience must not be empty"));
        }
        let claims_audience = key_audience.clone();
        key_audience.sort();
        let now = now_unix();
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let key = (id.to_string(), key_audience);
        if let Some(cached) = tokens.get(&key) {
            if now < cached.issued_at + (cached.expires_at - cached.issued_at) / 2 {
                return Ok(cached.token.clone());
            }
        }
        let expires_at = now + ttl.as_secs().max(1) as i64;
        let claims =
            json!({ "sub": id.to_string(), "aud": claims_audience, "exp": expires_at, "iat": now });
        let token = signer.sign(&claims)?;
        tokens.insert(
            key,
            Cached {
                token: token.clone(),
                issued_at: now,
                expires_at,
            },
        );
        Ok(token)
    }
}

/// Validates `token` for `audience` with SPIRE's checks, order and messages.
/// `keys_for` returns the JWT authorities of a trust domain, if known.
pub fn validate(
    token: &str,
    audience: &str,
    keys_for: impl Fn(&str) -> Option<Vec<(String, PKey<Public>)>>,
) -> std::result::Result<(SpiffeId, Map<String, Value>), String> {
    let decoded = jwt::decode(token)
        .map_err(|e| format!("unable to parse JWT token: go-jose/go-jose: {e}"))?;
    let kid = decoded
        .kid()
        .ok_or("token header missing key id")?
        .to_owned();
    let subject = decoded.subject().ok_or("token missing subject claim")?;
    if decoded.time_claim("exp").is_none() {
        return Err("token missing exp claim".into());
    }
    let id =
        SpiffeId::parse(subject).map_err(|e| format!("token has in invalid subject claim: {e}"))?;
    let td = id.trust_domain().name();
    let keys = keys_for(td).ok_or_else(|| format!("no keys found for trust domain {td:?}"))?;
    let (_, key) = keys
        .iter()
        .find(|(k, _)| *k == kid)
        .ok_or_else(|| format!("public key {kid:?} not found in trust domain {td:?}"))?;
    match jws::verify(
        decoded.alg,
        key,
        decoded.signing_input.as_bytes(),
        &decoded.signature,
    ) {
        Ok(true) => {}
        _ => return Err("go-jose/go-jose: error in cryptographic primitive".into()),
    }
    jwt::check_claims(&decoded, &[audience.to_owned()], now_unix())?;
    let mut claims = decoded.claims;
    // SPIRE always reports `aud` as a list.
    let aud = jwt::audience_of(&claims);
    claims.insert("aud".into(), json!(aud));
    Ok((id, claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ca::KeyType;

    fn signer() -> SigningKey {
        SigningKey::new(KeyType::EcP256.generate().unwrap(), None).unwrap()
    }

    fn public(signer: &SigningKey) -> PKey<Public> {
        PKey::public_key_from_der(&signer.key.public_key_to_der().unwrap()).unwrap()
    }

    #[test]
    fn tokens_are_cached_per_sorted_audience() {
        let signer = signer();
        let cache = TokenCache::default();
        let id = SpiffeId::parse("spiffe://example.org/w").unwrap();
        let a = cache
            .token(
                &signer,
                &id,
                &["x".into(), "y".into()],
                Duration::from_secs(300),
            )
            .unwrap();
        let b = cache
            .token(
                &signer,
                &id,
                &["y".into(), "x".into()],
                Duration::from_secs(300),
            )
            .unwrap();
        assert_eq!(a, b);
        let c = cache
            .token(&signer, &id, &["z".into()], Duration::from_secs(300))
            .unwrap();
        assert_ne!(a, c);
        assert_eq!(signer.kid.len(), 32);
    }

    #[test]
    fn validates_with_spire_messages() {
        let signer = signer();
        let id = SpiffeId::parse("spiffe://example.org/w").unwrap();
        let token = TokenCache::default()
            .token(&signer, &id, &["aud1".into()], Duration::from_secs(300))
            .unwrap();
        let key = public(&signer);
        let keys =
            |td: &str| (td == "example.org").then(|| vec![(signer.kid.clone(), key.clone())]);
        let (got, claims) = validate(&token, "aud1", keys).unwrap();
        assert_eq!(got, id);
        assert_eq!(claims["aud"], json!(["aud1"]));
        assert_eq!(
            validate(&token, "other", keys).unwrap_err(),
            "expected audience in [\"other\"] (audience=[\"aud1\"])"
        );
        assert_eq!(
            validate("a.b", "x", keys).unwrap_err(),
            "unable to parse JWT token: go-jose/go-jose: compact JWS format must have three parts"
        );
        let foreign = signer
            .sign(&json!({"sub": "spiffe://domain2.test/w", "exp": now_unix() + 60, "aud": ["x"]}))
            .unwrap();
        assert_eq!(
            validate(&foreign, "x", keys).unwrap_err(),
            "no keys found for trust domain \"domain2.test\""
        );
        let other = SigningKey::new(KeyType::EcP256.generate().unwrap(), None).unwrap();
        let unknown = other
            .sign(&json!({"sub": "spiffe://example.org/w", "exp": now_unix() + 60, "aud": ["x"]}))
            .unwrap();
        assert_eq!(
            validate(&unknown, "x", keys).unwrap_err(),
            format!(
                "public key {:?} not found in trust domain \"example.org\"",
                other.kid
            )
        );
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 5.., "AAAAA");
        assert_eq!(
            validate(&tampered, "aud1", keys).unwrap_err(),
            "go-jose/go-jose: error in cryptographic primitive"
        );
        let expired = signer
            .sign(&json!({"sub": "spiffe://example.org/w", "exp": now_unix() - 61, "aud": ["x"]}))
            .unwrap();
        assert_eq!(
            validate(&expired, "x", keys).unwrap_err(),
            "token has expired"
        );
        let bad_sub = signer
            .sign(&json!({"sub": "nope", "exp": now_unix() + 60}))
            .unwrap();
        assert_eq!(
            validate(&bad_sub, "x", keys).unwrap_err(),
            "token has in invalid subject claim: scheme is missing or invalid"
        );
    }
}
