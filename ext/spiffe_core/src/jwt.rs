//! JWT-SVIDs: compact JWS decoding and the claim checks go-spiffe applies to
//! tokens it receives (`ParseInsecure`: no signature check, since the token came
//! from the agent over a local socket).

use crate::error::{Error, Result};
use crate::id::SpiffeId;
use crate::jws::{Algorithm, ALLOWED};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
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

fn jwt_error(message: impl std::fmt::Display) -> Error {
    Error::jwt(format!("jwtsvid: {message}"))
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
    let decoded = decode(token).map_err(|_| jwt_error("unable to parse JWT token"))?;
    if let Some(typ) = decoded.header.get("typ") {
        if typ != "JWT" && typ != "JOSE" {
            return Err(jwt_error(
                "token header type not equal to either JWT or JOSE",
            ));
        }
    }
    let subject = decoded
        .subject()
        .ok_or_else(|| jwt_error("token missing subject claim"))?;
    let expires_at = decoded
        .time_claim("exp")
        .ok_or_else(|| jwt_error("token missing exp claim"))?;
    let spiffe_id = SpiffeId::parse(subject)
        .map_err(|e| jwt_error(format!("token has an invalid subject claim: {e}")))?;
    check_claims(&decoded, expected_audience, now).map_err(jwt_error)?;
    Ok(JwtSvid {
        token: token.to_owned(),
        spiffe_id,
        audience: decoded.audience(),
        expires_at,
        claims: decoded.claims,
        hint: hint.to_owned(),
    })
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
