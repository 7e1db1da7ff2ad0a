//! JWT-SVIDs: compact JWS decoding and the claim checks go-spiffe applies to
//! tokens it receives (`ParseInsecure`: no signature check, since the token came
//! from the agent over a local socket).

use crate::error::{Error, ErrorKind, Result};
use crate::id::SpiffeId;
use crate::jws::{Algorithm, ALLOWED};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use openssl::pkey::{PKey, Public};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, as SPIRE and go-jose do.
pub const LEEWAY_SECS: i64 = 60;

const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn decode_b64(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    LENIENT_B64.decode(text)
}

pub(crate) fn encode_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A compact JWS split and decoded, signature not yet checked.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub alg: Algorithm,
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

impl Decoded<'_> {
    pub fn kid(&self) -> Option<&str> {
        self.header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|kid| !kid.is_empty())
    }

    pub fn subject(&self) -> Option<&str> {
        self.claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `aud` as a list, whether the token has a string or an array.
    pub fn audience(&self) -> Vec<String> {
        audience_of(&self.claims)
    }

    pub fn time_claim(&self, name: &str) -> Option<i64> {
        self.claims
            .get(name)
            .and_then(Value::as_f64)
            .map(|v| v as i64)
    }
}

pub fn audience_of(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn json_object(part: &str, what: &str) -> std::result::Result<Map<String, Value>, String> {
    let bytes = decode_b64(part).map_err(|e| format!("illegal base64 data in {what}: {e}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{what} is not a JSON object")),
        Err(e) => Err(format!("invalid JSON in {what}: {e}")),
    }
}

/// Splits and decodes a compact JWS. Errors read like go-jose's.
pub fn decode(token: &str) -> std::result::Result<Decoded<'_>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err("compact JWS format must have three parts".into());
    }
    let header = json_object(parts[0], "header")?;
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = Algorithm::parse(alg_name).ok_or_else(|| {
        let allowed: Vec<String> = ALLOWED.iter().map(|a| format!("{a:?}")).collect();
        format!(
            "unexpected signature algorithm {alg_name:?}; expected [{}]",
            allowed.join(" ")
        )
    })?;
    let claims = json_object(parts[1], "payload")?;
    let signature =
        decode_b64(parts[2]).map_err(|e| format!("illegal base64 data in signature: {e}"))?;
    let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
    Ok(Decoded {
        alg,
        header,
        claims,
        signing_input,
        signature,
    })
}

/// A JWT-SVID whose claims passed the checks.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSvid {
    pub token: String,
    pub spiffe_id: SpiffeId,
    pub audience: Vec<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
    pub claims: Map<String, Value>,
    pub hint: String,
}

fn typed(kind: ErrorKind, message: impl std::fmt::Display) -> Error {
    Error::new(kind, format!("jwtsvid: {message}"))
}

/// Claim check failures, typed; go-jose's own time errors keep their text.
fn claims_error(message: String) -> Error {
    if message.starts_with("expected audience") {
        typed(ErrorKind::JwtAudience, message)
    } else if message.starts_with("go-jose/") {
        Error::new(ErrorKind::JwtExpired, message)
    } else {
        typed(ErrorKind::JwtExpired, message)
    }
}

/// How [`parse_and_validate`] finds the signing key.
pub enum Authority {
    /// The token's trust domain has no bundle.
    NoBundle,
    /// The bundle has no key with the token's `kid`.
    NoKey,
    Key(PKey<Public>),
}

/// The checks that need no key: the token parses with an allowed `alg`,
/// `typ` is JWT or JOSE, `sub` is a SPIFFE ID and `exp` is present.
fn preflight(token: &str) -> Result<(Decoded<'_>, SpiffeId, i64)> {
    let decoded =
        decode(token).map_err(|_| typed(ErrorKind::JwtMalformed, "unable to parse JWT token"))?;
    if let Some(typ) = decoded.header.get("typ") {
        if typ != "JWT" && typ != "JOSE" {
            return Err(typed(
                ErrorKind::JwtMalformed,
                "token header type not equal to either JWT or JOSE",
            ));
        }
    }
    let subject = decoded
        .subject()
        .ok_or_else(|| typed(ErrorKind::JwtMalformed, "token missing subject claim"))?;
    let expires_at = decoded
        .time_claim("exp")
        .ok_or_else(|| typed(ErrorKind::JwtMalformed, "token missing exp claim"))?;
    let spiffe_id = SpiffeId::parse(subject).map_err(|e| {
        typed(
            ErrorKind::JwtMalformed,
            format!("token has an invalid subject claim: {e}"),
        )
    })?;
    Ok((decoded, spiffe_id, expires_at))
}

/// The claim checks shared by both parsers, then the SVID.
fn accept(
    token: &str,
    decoded: Decoded<'_>,
    spiffe_id: SpiffeId,
    expires_at: i64,
    expected_audience: &[String],
    now: i64,
    hint: &str,
) -> Result<JwtSvid> {
    check_claims(&decoded, expected_audience, now).map_err(claims_error)?;
    Ok(JwtSvid {
        token: token.to_owned(),
        spiffe_id,
        audience: decoded.audience(),
        expires_at,
        claims: decoded.claims,
        hint: hint.to_owned(),
    })
}

/// Which key a token needs: its subject's trust domain and its `kid` (if any).
pub fn peek(token: &str) -> Result<(SpiffeId, Option<String>)> {
    let (decoded, spiffe_id, _) = preflight(token)?;
    Ok((spiffe_id, decoded.kid().map(str::to_owned)))
}

/// go-spiffe's `jwtsvid.ParseAndValidate`: the checks of [`parse_insecure`]
/// plus a required `kid`, the key looked up by the token's trust domain and
/// `kid`, and the signature verified with it (the algorithm must fit the key).
pub fn parse_and_validate(
    token: &str,
    expected_audience: &[String],
    authority: impl FnOnce(&SpiffeId, &str) -> Authority,
    now: i64,
) -> Result<JwtSvid> {
    let (decoded, spiffe_id, expires_at) = preflight(token)?;
    let kid = decoded
        .kid()
        .ok_or_else(|| typed(ErrorKind::JwtMalformed, "token header missing key id"))?;
    let td = spiffe_id.trust_domain().name().to_owned();
    let key = match authority(&spiffe_id, kid) {
        Authority::Key(key) => key,
        Authority::NoBundle => {
            return Err(typed(
                ErrorKind::JwtAuthorityNotFound,
                format!("no bundle found for trust domain {td:?}"),
            ))
        }
        Authority::NoKey => {
            return Err(typed(
                ErrorKind::JwtAuthorityNotFound,
                format!("no JWT authority {kid:?} found for trust domain {td:?}"),
            ))
        }
    };
    match crate::jws::verify(
        decoded.alg,
        &key,
        decoded.signing_input.as_bytes(),
        &decoded.signature,
    ) {
        Ok(true) => {}
        _ => return Err(typed(
            ErrorKind::JwtSignature,
            "unable to get claims from token: go-jose/go-jose: error in cryptographic primitive",
        )),
    }
    accept(
        token,
        decoded,
        spiffe_id,
        expires_at,
        expected_audience,
        now,
        "",
    )
}

fn quoted_list(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The audience and time checks (60 s leeway), in go-jose's order. An empty
/// `expected` skips the audience check.
pub fn check_claims(
    decoded: &Decoded<'_>,
    expected: &[String],
    now: i64,
) -> std::result::Result<(), String> {
    let audience = decoded.audience();
    if !expected.is_empty() && !expected.iter().any(|want| audience.contains(want)) {
        return Err(format!(
            "expected audience in [{}] (audience=[{}])",
            quoted_list(expected),
            quoted_list(&audience)
        ));
    }
    if decoded
        .time_claim("nbf")
        .is_some_and(|nbf| now + LEEWAY_SECS < nbf)
    {
        return Err("go-jose/go-jose/jwt: validation failed, token not valid yet (nbf)".into());
    }
    if decoded
        .time_claim("exp")
        .is_some_and(|exp| now - LEEWAY_SECS > exp)
    {
        return Err("token has expired".into());
    }
    if decoded
        .time_claim("iat")
        .is_some_and(|iat| now + LEEWAY_SECS < iat)
    {
        return Err(
            "go-jose/go-jose/jwt: validation field, token issued in the future (iat)".into(),
        );
    }
    Ok(())
}

/// go-spiffe's `ParseInsecure`: decodes and checks `typ`, `sub`, `exp`,
/// audience and times, without a signature check.
pub fn parse_insecure(
    token: &str,
    expected_audience: &[String],
    hint: &str,
    now: i64,
) -> Result<JwtSvid> {
    let (decoded, spiffe_id, expires_at) = preflight(token)?;
    accept(
        token,
        decoded,
        spiffe_id,
        expires_at,
        expected_audience,
        now,
        hint,
    )
}

#[cfg(test)]
mod validate_tests {
    use super::*;
    use crate::jws::{self, Algorithm};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::Private;
    use openssl::rsa::Rsa;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn sign(alg: Algorithm, key: &PKey<Private>, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            encode_b64(header.to_string().as_bytes()),
            encode_b64(claims.to_string().as_bytes())
        );
        format!(
            "{input}.{}",
            encode_b64(&jws::sign(alg, key, input.as_bytes()).unwrap())
        )
    }

    fn public(key: &PKey<Private>) -> PKey<Public> {
        PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap()
    }

    fn claims() -> Value {
        json!({"sub": "spiffe://example.org/w", "aud": ["api"], "exp": NOW + 300, "iat": NOW})
    }

    fn validate(token: &str, key: &PKey<Private>) -> Result<JwtSvid> {
        let public = public(key);
        parse_and_validate(
            token,
            &["api".into()],
            |id, kid| match (id.trust_domain().name(), kid) {
                ("example.org", "k1") => Authority::Key(public),
                ("example.org", _) => Authority::NoKey,
                _ => Authority::NoBundle,
            },
            NOW,
        )
    }

    #[test]
    fn validates_every_allowed_algorithm() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let ec = |nid| {
            PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap())
                .unwrap()
        };
        let cases = [
            (Algorithm::ES256, ec(Nid::X9_62_PRIME256V1)),
            (Algorithm::ES384, ec(Nid::SECP384R1)),
            (Algorithm::ES512, ec(Nid::SECP521R1)),
            (Algorithm::RS256, rsa.clone()),
            (Algorithm::RS384, rsa.clone()),
            (Algorithm::RS512, rsa.clone()),
            (Algorithm::PS256, rsa.clone()),
            (Algorithm::PS384, rsa.clone()),
            (Algorithm::PS512, rsa),
        ];
        for (alg, key) in cases {
            let token = sign(
                alg,
                &key,
                json!({"alg": alg.name(), "kid": "k1", "typ": "JWT"}),
                claims(),
            );
            let svid = validate(&token, &key).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(svid.spiffe_id.to_string(), "spiffe://example.org/w");
        }
    }

    #[test]
    fn rejects_with_typed_go_spiffe_errors() {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let header = json!({"alg": "ES256", "kid": "k1"});
        let fail = |token: String| validate(&token, &key).unwrap_err();
        let none = format!(
            "{}.{}.",
            encode_b64(br#"{"alg":"none","kid":"k1"}"#),
            encode_b64(claims().to_string().as_bytes())
        );
        assert_eq!(fail(none).kind, ErrorKind::JwtMalformed);
        let hs = format!(
            "{}.{}.AAAA",
            encode_b64(br#"{"alg":"HS256","kid":"k1"}"#),
            encode_b64(claims().to_string().as_bytes())
        );
        assert_eq!(fail(hs).message, "jwtsvid: unable to parse JWT token");
        let expired = fail(sign(
            Algorithm::ES256,
            &key,
            header.clone(),
            json!({"sub": "spiffe://example.org/w", "aud": ["api"], "exp": NOW - 61}),
        ));
        assert_eq!(
            (expired.kind, expired.message.as_str()),
            (ErrorKind::JwtExpired, "jwtsvid: token has expired")
        );
        let audience = fail(sign(
            Algorithm::ES256,
            &key,
            header.clone(),
            json!({"sub": "spiffe://example.org/w", "aud": "x", "exp": NOW + 60}),
        ));
        assert_eq!(audience.kind, ErrorKind::JwtAudience);
        let unknown = fail(sign(
            Algorithm::ES256,
            &key,
            json!({"alg": "ES256", "kid": "k2"}),
            claims(),
        ));
        assert_eq!(
            unknown.message,
            "jwtsvid: no JWT authority \"k2\" found for trust domain \"example.org\""
        );
        let foreign = fail(sign(
            Algorithm::ES256,
            &key,
            header.clone(),
            json!({"sub": "spiffe://other.org/w", "aud": ["api"], "exp": NOW + 60}),
        ));
        assert_eq!(
            (foreign.kind, foreign.message.as_str()),
            (
                ErrorKind::JwtAuthorityNotFound,
                "jwtsvid: no bundle found for trust domain \"other.org\""
            )
        );
        let no_kid = fail(sign(
            Algorithm::ES256,
            &key,
            json!({"alg": "ES256"}),
            claims(),
        ));
        assert_eq!(no_kid.message, "jwtsvid: token header missing key id");
        let mut tampered = sign(Algorithm::ES256, &key, header.clone(), claims());
        let at = tampered.find('.').unwrap() + 3;
        tampered.replace_range(
            at..at + 1,
            if &tampered[at..at + 1] == "A" {
                "B"
            } else {
                "A"
            },
        );
        assert!(matches!(
            fail(tampered).kind,
            ErrorKind::JwtSignature | ErrorKind::JwtMalformed
        ));
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mismatch = sign(
            Algorithm::RS256,
            &rsa,
            json!({"alg": "RS256", "kid": "k1"}),
            claims(),
        );
        assert_eq!(
            fail(mismatch).kind,
            ErrorKind::JwtSignature,
            "an RS256 token against an EC key"
        );
        let wrong_key = sign(
            Algorithm::ES256,
            &PKey::from_ec_key(
                EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
            )
            .unwrap(),
            header,
            claims(),
        );
        assert_eq!(fail(wrong_key).kind, ErrorKind::JwtSignature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            encode_b64(header.to_string().as_bytes()),
            encode_b64(claims.to_string().as_bytes()),
            encode_b64(b"sig")
        )
    }

    fn es256(claims: Value) -> String {
        token(json!({"alg": "ES256", "kid": "k", "typ": "JWT"}), claims)
    }

    fn aud(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn parses_a_valid_token() {
        let t = es256(
            json!({"sub": "spiffe://example.org/w", "aud": "a", "exp": NOW + 300, "iat": NOW}),
        );
        let svid = parse_insecure(&t, &aud(&["a"]), "h", NOW).unwrap();
        assert_eq!(svid.spiffe_id.to_string(), "spiffe://example.org/w");
        assert_eq!(svid.audience, vec!["a"]);
        assert_eq!(svid.expires_at, NOW + 300);
        assert_eq!(svid.hint, "h");
        assert_eq!(svid.claims["iat"], json!(NOW));
    }

    #[test]
    fn checks_claims_in_go_spiffe_order() {
        let err =
            |t: &str, want: &[&str]| parse_insecure(t, &aud(want), "", NOW).unwrap_err().message;
        assert_eq!(err("a.b", &["a"]), "jwtsvid: unable to parse JWT token");
        assert_eq!(
            err(&token(json!({"alg": "none"}), json!({})), &["a"]),
            "jwtsvid: unable to parse JWT token"
        );
        assert_eq!(
            err(&token(json!({"alg": "HS256"}), json!({})), &["a"]),
            "jwtsvid: unable to parse JWT token"
        );
        assert_eq!(
            err(
                &token(json!({"alg": "ES256", "typ": "xx"}), json!({})),
                &["a"]
            ),
            "jwtsvid: token header type not equal to either JWT or JOSE"
        );
        assert_eq!(
            err(&es256(json!({"exp": NOW})), &["a"]),
            "jwtsvid: token missing subject claim"
        );
        assert_eq!(
            err(&es256(json!({"sub": "spiffe://td/w"})), &["a"]),
            "jwtsvid: token missing exp claim"
        );
        assert_eq!(
            err(&es256(json!({"sub": "x", "exp": NOW})), &["a"]),
            "jwtsvid: token has an invalid subject claim: scheme is missing or invalid"
        );
        assert_eq!(
            err(
                &es256(json!({"sub": "spiffe://td/w", "exp": NOW - 3600, "aud": ["b", "c"]})),
                &["a"]
            ),
            "jwtsvid: expected audience in [\"a\"] (audience=[\"b\" \"c\"])"
        );
        assert_eq!(
            err(
                &es256(json!({"sub": "spiffe://td/w", "exp": NOW - 61, "aud": "a"})),
                &["a"]
            ),
            "jwtsvid: token has expired"
        );
        assert!(err(
            &es256(json!({"sub": "spiffe://td/w", "exp": NOW + 9, "nbf": NOW + 61, "aud": "a"})),
            &["a"]
        )
        .contains("(nbf)"));
        assert!(err(
            &es256(json!({"sub": "spiffe://td/w", "exp": NOW + 9, "iat": NOW + 61, "aud": "a"})),
            &["a"]
        )
        .contains("(iat)"));
    }

    #[test]
    fn leeway_and_empty_audience() {
        let t = es256(json!({"sub": "spiffe://td/w", "exp": NOW - 59, "aud": ["x"]}));
        assert!(parse_insecure(&t, &[], "", NOW).is_ok());
        assert!(parse_insecure(&t, &aud(&["y", "x"]), "", NOW).is_ok());
    }
}
