//! Workload API endpoint addresses: `unix:///path`, `unix:/path`, `tcp://IP:port`
//! (SPIFFE Workload Endpoint spec), checked in go-spiffe's order with its
//! messages, plus a hint of what to do.

use crate::error::{Error, Result};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The environment variable that names the Workload API endpoint.
pub const ENDPOINT_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";
/// SPIRE agent's default socket (`socket_path` in its config).
pub const DEFAULT_ADDRESS: &str = "unix:///tmp/spire-agent/public/api.sock";

/// Where the Workload API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// The parts of a URI as Go's `net/url` splits them, enough for the checks.
struct Uri<'a> {
    scheme: &'a str,
    opaque: bool,
    user_info: bool,
    host: &'a str,
    path: &'a str,
    query: bool,
    fragment: bool,
}

fn split_uri(address: &str) -> Result<Uri<'_>> {
    if let Some(c) = address.chars().find(|c| c.is_control()) {
        return Err(Error::config(format!(
            "workload endpoint socket is not a valid URI: invalid control character {c:?} in URL"
        )));
    }
    let scheme_end = address.find(':').filter(|&i| {
        i > 0
            && address[..i].starts_with(|c: char| c.is_ascii_alphabetic())
            && address[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    let Some(scheme_end) = scheme_end else {
        return Ok(Uri {
            scheme: "",
            opaque: false,
            user_info: false,
            host: "",
            path: address,
            query: false,
            fragment: false,
        });
    };
    let scheme = &address[..scheme_end];
    let mut rest = &address[scheme_end + 1..];
    let fragment = rest.find('#').map(|i| rest = &rest[..i]).is_some();
    let query = rest.find('?').map(|i| rest = &rest[..i]).is_some();
    if !rest.starts_with('/') {
        return Ok(Uri {
            scheme,
            opaque: !rest.is_empty(),
            user_info: false,
            host: "",
            path: "",
            query,
            fragment,
        });
    }
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (&after[..end], &after[end..])
        }
        None => ("", rest),
    };
    let (user_info, host) = match authority.rfind('@') {
        Some(i) => (true, &authority[i + 1..]),
        None => (false, authority),
    };
    Ok(Uri {
        scheme,
        opaque: false,
        user_info,
        host,
        path,
        query,
        fragment,
    })
}

fn unix_error(what: &str, address: &str) -> Error {
    Error::config(format!(
        "workload endpoint unix socket URI {what} (got {address:?}; expected unix:///path/to/agent.sock)"
    ))
}

fn tcp_error(what: &str, address: &str) -> Error {
    Error::config(format!(
        "workload endpoint tcp socket URI {what} (got {address:?}; expected tcp://127.0.0.1:8000)"
    ))
}

impl Endpoint {
    /// Parses an endpoint URI as `SPIFFE_ENDPOINT_SOCKET` holds it.
    pub fn parse(address: &str) -> Result<Self> {
        let uri = split_uri(address)?;
        match uri.scheme {
            "unix" => {
                if uri.opaque {
                    return Err(unix_error("must not be opaque", address));
                }
                if uri.user_info {
                    return Err(unix_error("must not include user info", address));
                }
                if uri.host.is_empty() && uri.path.is_empty() {
                    return Err(unix_error("must include a path", address));
                }
                if uri.query {
                    return Err(unix_error("must not include query values", address));
                }
                if uri.fragment {
                    return Err(unix_error("must not include a fragment", address));
                }
                // go-spiffe lets `unix://foo` through and gRPC fails later; the
                // Endpoint spec forbids an authority, so we say so now.
                if !uri.host.is_empty() {
                    return Err(unix_error(
                        &format!(
                            "must not include an authority ({:?}): use three slashes",
                            uri.host
                        ),
                        address,
                    ));
                }
                Ok(Endpoint::Unix(PathBuf::from(uri.path)))
            }
            "tcp" => {
                if uri.opaque {
                    return Err(tcp_error("must not be opaque", address));
                }
                if uri.user_info {
                    return Err(tcp_error("must not include user info", address));
                }
                if uri.host.is_empty() {
                    return Err(tcp_error("must include a host", address));
                }
                if !uri.path.is_empty() {
                    return Err(tcp_error("must not include a path", address));
                }
                if uri.query {
                    return Err(tcp_error("must not include query values", address));
                }
                if uri.fragment {
                    return Err(tcp_error("must not include a fragment", address));
                }
                let (host, port) = split_host_port(uri.host);
                let Ok(ip) = host.parse::<IpAddr>() else {
                    return Err(tcp_error("host component must be an IP:port", address));
                };
                let Some(port) = port.filter(|p| !p.is_empty()) else {
                    return Err(tcp_error("host component must include a port", address));
                };
                let port: u16 = port
                    .parse()
                    .map_err(|_| tcp_error("port must be a number from 0 to 65535", address))?;
                Ok(Endpoint::Tcp(SocketAddr::new(ip, port)))
            }
            _ => {
                let hint = if address.starts_with('/') {
                    format!("; did you mean \"unix://{address}\"?")
                } else {
                    String::new()
                };
                Err(Error::config(format!(
                    "workload endpoint socket URI must have a \"tcp\" or \"unix\" scheme (got {address:?}{hint})"
                )))
            }
        }
    }

    /// Resolves what a user passed: an explicit address or plain absolute
    /// socket path wins, then `SPIFFE_ENDPOINT_SOCKET`, then SPIRE's default.
    pub fn resolve(explicit: Option<&str>, env_value: Option<&str>) -> Result<Self> {
        match explicit {
            Some(path) if path.starts_with('/') => Ok(Endpoint::Unix(PathBuf::from(path))),
            Some("") => Err(Error::config(
                "socket_path is empty: pass the agent's socket (e.g. \"/tmp/spire-agent/public/api.sock\") or leave it nil to use SPIFFE_ENDPOINT_SOCKET",
            )),
            Some(address) => Endpoint::parse(address),
            None => match env_value {
                Some("") => Err(Error::config(format!(
                    "{ENDPOINT_ENV} is set but empty: set it to the agent's socket, e.g. unix:///tmp/spire-agent/public/api.sock"
                ))),
                Some(address) => Endpoint::parse(address).map_err(|e| e.context(ENDPOINT_ENV)),
                None => Endpoint::parse(DEFAULT_ADDRESS),
            },
        }
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`.
fn split_host_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => (&rest[..end], rest[end + 1..].strip_prefix(':')),
            None => (hostport, None),
        };
    }
    match hostport.rfind(':') {
        Some(i) if hostport[..i].contains(':') => (hostport, None),
        Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
        None => (hostport, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(address: &str) -> String {
        Endpoint::parse(address).unwrap_err().message
    }

    #[test]
    fn accepts_unix_forms() {
        assert_eq!(
            Endpoint::parse("unix:///tmp/a.sock").unwrap(),
            Endpoint::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Endpoint::parse("unix:/tmp/a.sock").unwrap(),
            Endpoint::Unix("/tmp/a.sock".into())
        );
        assert_eq!(
            Endpoint::parse("unix:///tmp/a.sock").unwrap().to_string(),
            "unix:///tmp/a.sock"
        );
    }

    #[test]
    fn accepts_tcp_ip_port() {
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:8000").unwrap(),
            Endpoint::Tcp("127.0.0.1:8000".parse().unwrap())
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:8000").unwrap(),
            Endpoint::Tcp("[::1]:8000".parse().unwrap())
        );
    }

    #[test]
    fn rejects_unix_like_go_spiffe() {
        assert!(err("unix:foo").contains("unix socket URI must not be opaque"));
        assert!(err("unix://user@/tmp/a").contains("must not include user info"));
        assert!(err("unix://").contains("must include a path"));
        assert!(err("unix:").contains("must include a path"));
        assert!(err("unix:///tmp/a?x=1").contains("must not include query values"));
        assert!(err("unix:///tmp/a#frag").contains("must not include a fragment"));
        assert!(err("unix://foo/bar").contains("must not include an authority"));
    }

    #[test]
    fn rejects_tcp_like_go_spiffe() {
        assert!(err("tcp:1.2.3.4:5").contains("tcp socket URI must not be opaque"));
        assert!(err("tcp://u@1.2.3.4:5").contains("must not include user info"));
        assert!(err("tcp://").contains("must include a host"));
        assert!(err("tcp://1.2.3.4:5/path").contains("must not include a path"));
        assert!(err("tcp://1.2.3.4:5?q").contains("must not include query values"));
        assert!(err("tcp://1.2.3.4:5#f").contains("must not include a fragment"));
        assert!(err("tcp://localhost:1").contains("host component must be an IP:port"));
        assert!(err("tcp://1.2.3.4").contains("host component must include a port"));
    }

    #[test]
    fn rejects_other_schemes_with_a_hint() {
        assert!(err("blah").contains("must have a \"tcp\" or \"unix\" scheme"));
        assert!(err("/tmp/x.sock").contains("did you mean \"unix:///tmp/x.sock\"?"));
        assert!(err("http://1.2.3.4:5").contains("scheme"));
        assert!(err("unix:///a\u{7f}b").contains("not a valid URI"));
    }

    #[test]
    fn resolves_explicit_then_env_then_default() {
        assert_eq!(
            Endpoint::resolve(Some("/run/a.sock"), Some("unix:///b")).unwrap(),
            Endpoint::Unix("/run/a.sock".into())
        );
        assert_eq!(
            Endpoint::resolve(None, Some("unix:///b")).unwrap(),
            Endpoint::Unix("/b".into())
        );
        assert_eq!(
            Endpoint::resolve(None, None).unwrap(),
            Endpoint::Unix("/tmp/spire-agent/public/api.sock".into())
        );
        let env_err = Endpoint::resolve(None, Some("/b")).unwrap_err().message;
        assert!(env_err.starts_with("SPIFFE_ENDPOINT_SOCKET: "), "{env_err}");
        assert!(Endpoint::resolve(None, Some(""))
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(Endpoint::resolve(Some(""), None).is_err());
    }
}
