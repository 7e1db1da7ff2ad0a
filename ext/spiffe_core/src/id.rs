//! SPIFFE IDs and trust domains, parsed by the rules of the SPIFFE-ID standard
//! with go-spiffe's error messages.

use crate::error::{Error, Result};
use std::fmt;

const SCHEME_PREFIX: &str = "spiffe://";
/// SPIFFE-ID §2.1: a trust domain name is at most 255 bytes.
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;
/// SPIFFE-ID §2.3: a SPIFFE ID URI is at most 2048 bytes.
pub const MAX_ID_LEN: usize = 2048;

const ERR_EMPTY: &str = "cannot be empty";
const ERR_SCHEME: &str = "scheme is missing or invalid";
const ERR_MISSING_TD: &str = "trust domain is missing";
const ERR_TD_CHAR: &str =
    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores";
const ERR_PATH_CHAR: &str =
    "path segment characters are limited to letters, numbers, dots, dashes, and underscores";
const ERR_DOT_SEGMENT: &str = "path cannot contain dot segments";
const ERR_EMPTY_SEGMENT: &str = "path cannot contain empty segments";
const ERR_TRAILING_SLASH: &str = "path cannot have a trailing slash";
const ERR_LEADING_SLASH: &str = "path must have a leading slash";

/// A trust domain name such as `example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

/// A SPIFFE ID: a trust domain and a path (empty, or `/seg/seg`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    path: String,
}

fn is_trust_domain_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn is_path_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn invalid(reason: &str) -> Error {
    Error::invalid_id(reason)
}

/// Checks a SPIFFE ID path: empty, or `/`-prefixed non-empty segments of
/// `[A-Za-z0-9._-]` that are not `.` or `..`, with no trailing slash.
pub fn validate_path(path: &str) -> Result<()> {
    let bytes = path.as_bytes();
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes[0] != b'/' {
        return Err(invalid(ERR_LEADING_SLASH));
    }
    let mut segment_start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'/' {
            match &path[segment_start..i] {
                "/" => return Err(invalid(ERR_EMPTY_SEGMENT)),
                "/." | "/.." => return Err(invalid(ERR_DOT_SEGMENT)),
                _ => {}
            }
            segment_start = i;
        } else if !is_path_char(c) {
            return Err(invalid(ERR_PATH_CHAR));
        }
    }
    match &path[segment_start..] {
        "/" => Err(invalid(ERR_TRAILING_SLASH)),
        "/." | "/.." => Err(invalid(ERR_DOT_SEGMENT)),
        _ => Ok(()),
    }
}

/// Checks one path segment (no slashes): non-empty, not `.` or `..`, and
/// only `[A-Za-z0-9._-]`, as go-spiffe's `ValidatePathSegment`.
pub fn validate_segment(segment: &str) -> Result<()> {
    match segment {
        "" => Err(invalid(ERR_EMPTY_SEGMENT)),
        "." | ".." => Err(invalid(ERR_DOT_SEGMENT)),
        _ if !segment.bytes().all(is_path_char) => Err(invalid(ERR_PATH_CHAR)),
        _ => Ok(()),
    }
}

impl TrustDomain {
    /// Parses a bare name (`example.org`) or anything with `:/` as a SPIFFE ID
    /// whose trust domain is taken (`spiffe://example.org`).
    pub fn parse(name_or_id: &str) -> Result<Self> {
        if name_or_id.contains(":/") {
            return Ok(SpiffeId::parse(name_or_id)?.trust_domain);
        }
        if name_or_id.is_empty() {
            return Err(invalid(ERR_MISSING_TD));
        }
        if !name_or_id.bytes().all(is_trust_domain_char) {
            return Err(invalid(ERR_TD_CHAR));
        }
        if name_or_id.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(invalid("trust domain name is longer than 255 bytes"));
        }
        Ok(Self(name_or_id.to_owned()))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// `spiffe://<name>`, the form used as a key in Workload API bundle maps.
    pub fn id_string(&self) -> String {
        format!("{SCHEME_PREFIX}{}", self.0)
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SpiffeId {
    /// Parses `spiffe://<trust domain><path>`.
    pub fn parse(id: &str) -> Result<Self> {
        if id.is_empty() {
            return Err(invalid(ERR_EMPTY));
        }
        let Some(rest) = id.strip_prefix(SCHEME_PREFIX) else {
            return Err(invalid(ERR_SCHEME));
        };
        let td_len = rest.bytes().position(|c| c == b'/').unwrap_or(rest.len());
        if !rest[..td_len].bytes().all(is_trust_domain_char) {
            return Err(invalid(ERR_TD_CHAR));
        }
        if td_len == 0 {
            return Err(invalid(ERR_MISSING_TD));
        }
        let path = &rest[td_len..];
        validate_path(path)?;
        if td_len > MAX_TRUST_DOMAIN_LEN {
            return Err(invalid("trust domain name is longer than 255 bytes"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(invalid("SPIFFE ID is longer than 2048 bytes"));
        }
        Ok(Self {
            trust_domain: TrustDomain(rest[..td_len].to_owned()),
            path: path.to_owned(),
        })
    }

    /// Builds an ID from a trust domain and a path (empty or `/seg/...`),
    /// checking the path and the 2048-byte limit.
    pub fn from_path(trust_domain: &TrustDomain, path: &str) -> Result<Self> {
        validate_path(path)?;
        if SCHEME_PREFIX.len() + trust_domain.0.len() + path.len() > MAX_ID_LEN {
            return Err(invalid("SPIFFE ID is longer than 2048 bytes"));
        }
        Ok(Self {
            trust_domain: trust_domain.clone(),
            path: path.to_owned(),
        })
    }

    /// Builds an ID from a trust domain and path segments, each checked alone
    /// (so a segment cannot smuggle in a `/`).
    pub fn from_segments<S: AsRef<str>>(
        trust_domain: &TrustDomain,
        segments: &[S],
    ) -> Result<Self> {
        let mut path = String::new();
        for segment in segments {
            validate_segment(segment.as_ref())?;
            path.push('/');
            path.push_str(segment.as_ref());
        }
        Self::from_path(trust_domain, &path)
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME_PREFIX}{}{}", self.trust_domain.0, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(id: &str) -> String {
        SpiffeId::parse(id).unwrap_err().message
    }

    #[test]
    fn parses_valid_ids() {
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/web-1_x.y").unwrap();
        assert_eq!(id.trust_domain().name(), "example.org");
        assert_eq!(id.path(), "/ns/prod/sa/web-1_x.y");
        assert_eq!(id.to_string(), "spiffe://example.org/ns/prod/sa/web-1_x.y");
        assert_eq!(SpiffeId::parse("spiffe://td").unwrap().path(), "");
    }

    #[test]
    fn rejects_like_go_spiffe() {
        assert_eq!(err(""), ERR_EMPTY);
        assert_eq!(err("http://example.org/a"), ERR_SCHEME);
        assert_eq!(err("SPIFFE://example.org/a"), ERR_SCHEME);
        assert_eq!(err("spiffe://"), ERR_MISSING_TD);
        assert_eq!(err("spiffe:///path"), ERR_MISSING_TD);
        assert_eq!(err("spiffe://Example.org/a"), ERR_TD_CHAR);
        assert_eq!(err("spiffe://exa mple.org"), ERR_TD_CHAR);
        assert_eq!(err("spiffe://example.org/a//b"), ERR_EMPTY_SEGMENT);
        assert_eq!(err("spiffe://example.org/a/./b"), ERR_DOT_SEGMENT);
        assert_eq!(err("spiffe://example.org/.."), ERR_DOT_SEGMENT);
        assert_eq!(err("spiffe://example.org/a/"), ERR_TRAILING_SLASH);
        assert_eq!(err("spiffe://example.org/"), ERR_TRAILING_SLASH);
        assert_eq!(err("spiffe://example.org/a$b"), ERR_PATH_CHAR);
        assert_eq!(err("spiffe://example.org/a$/"), ERR_PATH_CHAR);
    }

    #[test]
    fn enforces_length_limits() {
        let long_td = "a".repeat(256);
        assert!(SpiffeId::parse(&format!("spiffe://{long_td}")).is_err());
        assert!(TrustDomain::parse(&long_td).is_err());
        let long_path = "/a".repeat(1100);
        assert!(SpiffeId::parse(&format!("spiffe://td{long_path}")).is_err());
    }

    #[test]
    fn trust_domain_accepts_name_or_id() {
        assert_eq!(
            TrustDomain::parse("example.org").unwrap().name(),
            "example.org"
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org").unwrap().name(),
            "example.org"
        );
        assert_eq!(
            TrustDomain::parse("spiffe://example.org/w").unwrap().name(),
            "example.org"
        );
        assert_eq!(TrustDomain::parse("").unwrap_err().message, ERR_MISSING_TD);
        assert_eq!(
            TrustDomain::parse("Example").unwrap_err().message,
            ERR_TD_CHAR
        );
        assert_eq!(
            TrustDomain::parse("example.org").unwrap().id_string(),
            "spiffe://example.org"
        );
    }

    #[test]
    fn validates_paths() {
        assert!(validate_path("").is_ok());
        assert!(validate_path("/a/b").is_ok());
        assert_eq!(validate_path("a").unwrap_err().message, ERR_LEADING_SLASH);
    }

    #[test]
    fn builds_ids_from_paths_and_segments() {
        let td = TrustDomain::parse("example.org").unwrap();
        let id = SpiffeId::from_segments(&td, &["ns", "prod"]).unwrap();
        assert_eq!(id.to_string(), "spiffe://example.org/ns/prod");
        assert_eq!(
            SpiffeId::from_path(&td, "").unwrap().to_string(),
            "spiffe://example.org"
        );
        let err = |r: Result<SpiffeId>| r.unwrap_err().message;
        assert_eq!(err(SpiffeId::from_path(&td, "x")), ERR_LEADING_SLASH);
        assert_eq!(err(SpiffeId::from_path(&td, "/a/")), ERR_TRAILING_SLASH);
        assert_eq!(err(SpiffeId::from_segments(&td, &["a/b"])), ERR_PATH_CHAR);
        assert_eq!(err(SpiffeId::from_segments(&td, &[".."])), ERR_DOT_SEGMENT);
        assert_eq!(err(SpiffeId::from_segments(&td, &[""])), ERR_EMPTY_SEGMENT);
        let long = format!("/{}", "a".repeat(2048));
        assert_eq!(
            err(SpiffeId::from_path(&td, &long)),
            "SPIFFE ID is longer than 2048 bytes"
        );
    }
}
