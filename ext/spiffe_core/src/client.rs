//! The Workload API client: one gRPC channel (Unix socket or TCP) per client,
//! the security header on every call, a deadline per call, and gRPC statuses
//! turned into errors that say what to check.

use crate::bundle::{
    parse_jwt_bundle_map, parse_x509_bundle, parse_x509_bundle_map, trust_domain_key, JwtBundle,
    X509Bundle,
};
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::id::TrustDomain;
use crate::jwt::{now_unix, parse_insecure, JwtSvid};
use crate::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use crate::proto::{self, SECURITY_HEADER};
use crate::watch::{Kind, Payload};
use crate::x509::{SvidCache, X509Svid};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Uri};
use tonic::{Code, Request, Status};

/// SVIDs and bundles from one Workload API message: a consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Context {
    /// In the agent's order; the first is the default SVID.
    pub svids: Vec<X509Svid>,
    /// The SVIDs' own trust domain and every federated one.
    pub bundles: BTreeMap<TrustDomain, X509Bundle>,
}

/// A Workload API client bound to one endpoint.
pub struct Client {
    endpoint: Endpoint,
    api: SpiffeWorkloadApiClient<Channel>,
    timeout: Duration,
    svids: &'static SvidCache,
}

fn with_header<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(SECURITY_HEADER, MetadataValue::from_static("true"));
    request
}

impl Client {
    /// Creates a client without connecting: like go-spiffe, the first call
    /// dials. Must run inside a tokio runtime (the channel spawns a worker).
    pub fn new(endpoint: Endpoint, timeout: Duration) -> Result<Self> {
        let channel = match &endpoint {
            Endpoint::Unix(path) => {
                let path = path.clone();
                tonic::transport::Endpoint::from_static("http://localhost")
                    .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            Ok::<_, io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(path).await?,
                            ))
                        }
                    }))
            }
            Endpoint::Tcp(addr) => {
                tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| Error::config(format!("invalid tcp endpoint {addr}: {e}")))?
                    .connect_lazy()
            }
        };
        Ok(Self {
            endpoint,
            api: SpiffeWorkloadApiClient::new(channel),
            timeout,
            svids: SvidCache::shared(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs one call under the client's deadline, mapping gRPC failures.
    /// Every Workload API call is an idempotent read, so a call that met a
    /// dead connection (the agent restarted) is tried once more on a fresh
    /// one, within the same deadline.
    async fn call<T, F, Fut>(&self, rpc: &str, attempt: F) -> Result<T>
    where
        F: Fn(SpiffeWorkloadApiClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<T, Status>>,
    {
        let attempts = async {
            match attempt(self.api.clone()).await {
                Err(status) if is_transport_failure(&status) => attempt(self.api.clone()).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(status)) => Err(self.status_error(rpc, status).await),
            Err(_) => Err(self.timeout_error(rpc)),
        }
    }

    fn timeout_error(&self, rpc: &str) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{rpc}: the Workload API at {} did not answer within {:?}: is the SPIRE agent overloaded or stuck? Pass a larger timeout: if it is just slow",
                self.endpoint, self.timeout
            ),
        )
        .with_code(Code::DeadlineExceeded)
    }

    /// Turns a gRPC status into an error that tells the user what to check.
    async fn status_error(&self, rpc: &str, status: Status) -> Error {
        if is_transport_failure(&status) {
            return self.unavailable_error(rpc, status.message()).await;
        }
        let code = status.code();
        let message = status.message();
        let endpoint = &self.endpoint;
        let (kind, text) = match code {
            Code::PermissionDenied if message == "no identity issued" => (
                ErrorKind::NoIdentityIssued,
                format!(
                    "{rpc}: no identity issued: the agent at {endpoint} has no registration entry matching this process (pid {}, uid {}); register one, e.g. `spire-server entry create -parentID <agent-id> -spiffeID spiffe://<trust-domain>/<name> -selector unix:uid:{}`",
                    std::process::id(),
                    current_uid(),
                    current_uid()
                ),
            ),
            Code::PermissionDenied => (ErrorKind::PermissionDenied, format!("{rpc}: permission denied by the agent at {endpoint}: {message}")),
            Code::InvalidArgument => (ErrorKind::InvalidArgument, format!("{rpc}: the agent rejected the request: {message}")),
            Code::DeadlineExceeded => return self.timeout_error(rpc),
            _ => (ErrorKind::Status, format!("{rpc}: the agent at {endpoint} answered {code:?}: {message}")),
        };
        Error::new(kind, text).with_code(code)
    }

    /// `Unavailable` covers a missing socket, a refused connection and an
    /// agent that is up but cannot serve; dialing once more tells them apart.
    async fn unavailable_error(&self, rpc: &str, message: &str) -> Error {
        let Endpoint::Unix(path) = &self.endpoint else {
            return Error::new(
                ErrorKind::Unavailable,
                format!("{rpc}: the Workload API at {} is unavailable: {message}: is the agent listening there?", self.endpoint),
            )
            .with_code(Code::Unavailable);
        };
        let shown = path.display();
        let (kind, text) = match tokio::net::UnixStream::connect(path).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (
                ErrorKind::SocketNotFound,
                format!("{rpc}: no Workload API socket at {shown}: is the SPIRE agent running? Set SPIFFE_ENDPOINT_SOCKET or pass socket_path: to point at its socket"),
            ),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (
                ErrorKind::SocketPermission,
                format!("{rpc}: permission denied opening the Workload API socket {shown}: run as a user that may open it (check the socket directory's permissions and that this user is in the agent's group)"),
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => (
                ErrorKind::ConnectionRefused,
                format!("{rpc}: nothing is listening on the Workload API socket {shown} (a stale socket file?): is the SPIRE agent running?"),
            ),
            Err(e) => (ErrorKind::Unavailable, format!("{rpc}: cannot connect to the Workload API socket {shown}: {e}")),
            Ok(_) => (ErrorKind::Unavailable, format!("{rpc}: the Workload API at {} is unavailable: {message}", self.endpoint)),
        };
        Error::new(kind, text).with_code(Code::Unavailable)
    }

    /// The first message of the FetchX509SVID stream, parsed and checked.
    pub async fn fetch_x509_context(&self) -> Result<X509Context> {
        let response = self
            .call("FetchX509SVID", |mut api| async move {
                let mut stream = api
                    .fetch_x509svid(with_header(proto::X509svidRequest {}))
                    .await?
                    .into_inner();
                first_message(stream.message().await?)
            })
            .await?;
        self.parse_x509_context(&response)
    }

    /// Parses one X509SVIDResponse (shared with watchers).
    pub fn parse_x509_context(&self, response: &proto::X509svidResponse) -> Result<X509Context> {
        if response.svids.is_empty() {
            return Err(Error::svid("x509svid: no SVIDs in response"));
        }
        let mut hints = HashSet::new();
        let mut svids = Vec::with_capacity(response.svids.len());
        let mut bundles = BTreeMap::new();
        for wire in &response.svids {
            if !wire.hint.is_empty() && !hints.insert(wire.hint.as_str()) {
                continue;
            }
            let svid = self
                .svids
                .parse(&wire.x509_svid, &wire.x509_svid_key, &wire.hint)?;
            let td = svid.spiffe_id.trust_domain().clone();
            bundles.insert(td.clone(), parse_x509_bundle(td, &wire.bundle)?);
            svids.push(svid);
        }
        for (key, der) in &response.federated_bundles {
            let td = trust_domain_key(key)?;
            bundles.insert(td.clone(), parse_x509_bundle(td, der)?);
        }
        Ok(X509Context { svids, bundles })
    }

    /// The first message of the FetchX509Bundles stream.
    pub async fn fetch_x509_bundles(&self) -> Result<BTreeMap<TrustDomain, X509Bundle>> {
        let response = self
            .call("FetchX509Bundles", |mut api| async move {
                let mut stream = api
                    .fetch_x509_bundles(with_header(proto::X509BundlesRequest {}))
                    .await?
                    .into_inner();
                first_message(stream.message().await?)
            })
            .await?;
        parse_x509_bundle_map(&response.bundles)
    }

    /// JWT-SVIDs for `audience` (first entry is the main audience), optionally
    /// only for `spiffe_id`. Each token's claims are checked like go-spiffe.
    pub async fn fetch_jwt_svids(
        &self,
        audience: Vec<String>,
        spiffe_id: Option<String>,
    ) -> Result<Vec<JwtSvid>> {
        let request = proto::JwtsvidRequest {
            audience: audience.clone(),
            spiffe_id: spiffe_id.unwrap_or_default(),
        };
        let response = self
            .call("FetchJWTSVID", |mut api| {
                let request = request.clone();
                async move { Ok(api.fetch_jwtsvid(with_header(request)).await?.into_inner()) }
            })
            .await?;
        if response.svids.is_empty() {
            return Err(Error::jwt("jwtsvid: there were no SVIDs in the response"));
        }
        let now = now_unix();
        let mut hints = HashSet::new();
        let mut svids = Vec::with_capacity(response.svids.len());
        for wire in &response.svids {
            if !wire.hint.is_empty() && !hints.insert(wire.hint.as_str()) {
                continue;
            }
            svids.push(parse_insecure(&wire.svid, &audience, &wire.hint, now)?);
        }
        Ok(svids)
    }

    /// The first message of the FetchJWTBundles stream.
    pub async fn fetch_jwt_bundles(&self) -> Result<BTreeMap<TrustDomain, JwtBundle>> {
        let response = self
            .call("FetchJWTBundles", |mut api| async move {
                let mut stream = api
                    .fetch_jwt_bundles(with_header(proto::JwtBundlesRequest {}))
                    .await?
                    .into_inner();
                first_message(stream.message().await?)
            })
            .await?;
        parse_jwt_bundle_map(&response.bundles)
    }

    /// Asks the agent to validate `token` for `audience`; on success parses
    /// the token locally, as go-spiffe does.
    pub async fn validate_jwt_svid(&self, token: String, audience: String) -> Result<JwtSvid> {
        let request = proto::ValidateJwtsvidRequest {
            audience: audience.clone(),
            svid: token.clone(),
        };
        self.call("ValidateJWTSVID", |mut api| {
            let request = request.clone();
            async move {
                Ok(api
                    .validate_jwtsvid(with_header(request))
                    .await?
                    .into_inner())
            }
        })
        .await?;
        parse_insecure(&token, &[audience], "", now_unix())
    }
}

/// Whether a status stands for a dead or unreachable connection rather than
/// an answer from the agent: tonic attaches the transport error as the source
/// of statuses it makes up locally, and the client never cancels its own calls.
fn is_transport_failure(status: &Status) -> bool {
    use std::error::Error as _;
    matches!(status.code(), Code::Unavailable | Code::Cancelled) || status.source().is_some()
}

enum RawStream {
    X509(tonic::Streaming<proto::X509svidResponse>),
    X509Bundles(tonic::Streaming<proto::X509BundlesResponse>),
    JwtBundles(tonic::Streaming<proto::JwtBundlesResponse>),
}

/// An open Workload API stream yielding parsed payloads.
pub struct PayloadStream {
    client: Arc<Client>,
    rpc: &'static str,
    raw: RawStream,
}

impl PayloadStream {
    /// The next message: `Ok(None)` when the agent ended the stream; a
    /// parse error (`Svid`/`Bundle`/`Jwt` kind) leaves the stream usable.
    pub async fn next(&mut self) -> Result<Option<Payload>> {
        let Self { client, rpc, raw } = self;
        let message = match raw {
            RawStream::X509(s) => s
                .message()
                .await
                .map(|m| m.map(|m| client.parse_x509_context(&m).map(Payload::X509Context))),
            RawStream::X509Bundles(s) => s
                .message()
                .await
                .map(|m| m.map(|m| parse_x509_bundle_map(&m.bundles).map(Payload::X509Bundles))),
            RawStream::JwtBundles(s) => s
                .message()
                .await
                .map(|m| m.map(|m| parse_jwt_bundle_map(&m.bundles).map(Payload::JwtBundles))),
        };
        match message {
            Ok(None) => Ok(None),
            Ok(Some(parsed)) => parsed.map(Some),
            Err(status) => Err(client.status_error(rpc, status).await),
        }
    }
}

impl Client {
    /// Opens the stream a watcher follows. The deadline covers opening only.
    pub async fn open_stream(self: &Arc<Self>, kind: Kind) -> Result<PayloadStream> {
        let rpc = match kind {
            Kind::X509Context => "FetchX509SVID",
            Kind::X509Bundles => "FetchX509Bundles",
            Kind::JwtBundles => "FetchJWTBundles",
        };
        let raw = self
            .call(rpc, |mut api| async move {
                Ok(match kind {
                    Kind::X509Context => RawStream::X509(
                        api.fetch_x509svid(with_header(proto::X509svidRequest {}))
                            .await?
                            .into_inner(),
                    ),
                    Kind::X509Bundles => RawStream::X509Bundles(
                        api.fetch_x509_bundles(with_header(proto::X509BundlesRequest {}))
                            .await?
                            .into_inner(),
                    ),
                    Kind::JwtBundles => RawStream::JwtBundles(
                        api.fetch_jwt_bundles(with_header(proto::JwtBundlesRequest {}))
                            .await?
                            .into_inner(),
                    ),
                })
            })
            .await?;
        Ok(PayloadStream {
            client: self.clone(),
            rpc,
            raw,
        })
    }
}

/// A stream's first message; a stream that ends before one is a dead agent.
fn first_message<T>(message: Option<T>) -> std::result::Result<T, Status> {
    message
        .ok_or_else(|| Status::unavailable("the agent closed the stream before sending an update"))
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::ca::{Authority, KeyType, LeafProfile};
    use crate::id::SpiffeId;
    use std::collections::HashMap;

    fn root(td: &str) -> Authority {
        Authority::root(
            &TrustDomain::parse(td).unwrap(),
            KeyType::EcP256,
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    fn wire(ca: &Authority, id: &str, hint: &str) -> proto::X509svid {
        let key = KeyType::EcP256.generate().unwrap();
        let leaf = ca
            .mint_leaf(
                &SpiffeId::parse(id).unwrap(),
                &key,
                Duration::from_secs(600),
                LeafProfile::default(),
            )
            .unwrap();
        proto::X509svid {
            spiffe_id: id.into(),
            x509_svid: leaf.to_der().unwrap(),
            x509_svid_key: key.private_key_to_pkcs8().unwrap(),
            bundle: ca.cert.to_der().unwrap(),
            hint: hint.into(),
        }
    }

    #[tokio::test]
    async fn keeps_federated_bundles_under_either_key_form() {
        let client = Client::new(
            Endpoint::Unix("/nonexistent".into()),
            Duration::from_secs(1),
        )
        .unwrap();
        let (own, other, third) = (root("example.org"), root("other.org"), root("third.org"));
        let response = proto::X509svidResponse {
            svids: vec![
                wire(&own, "spiffe://example.org/a", "x"),
                wire(&own, "spiffe://example.org/b", "x"),
            ],
            crl: vec![],
            federated_bundles: HashMap::from([
                (
                    "spiffe://other.org".to_string(),
                    other.cert.to_der().unwrap(),
                ),
                ("third.org".to_string(), third.cert.to_der().unwrap()),
            ]),
        };
        let ctx = client.parse_x509_context(&response).unwrap();
        assert_eq!(ctx.svids.len(), 1, "the second SVID repeats hint \"x\"");
        let names: Vec<&str> = ctx.bundles.keys().map(|td| td.name()).collect();
        assert_eq!(names, ["example.org", "other.org", "third.org"]);
        assert_eq!(
            ctx.bundles[&TrustDomain::parse("other.org").unwrap()].authorities,
            vec![other.cert.to_der().unwrap()]
        );

        let bad_key = proto::X509svidResponse {
            federated_bundles: HashMap::from([("Not A Domain".to_string(), vec![])]),
            ..response.clone()
        };
        assert_eq!(
            client.parse_x509_context(&bad_key).unwrap_err().kind,
            ErrorKind::Bundle
        );
        let empty = proto::X509svidResponse {
            svids: vec![],
            ..response
        };
        assert_eq!(
            client.parse_x509_context(&empty).unwrap_err().message,
            "x509svid: no SVIDs in response"
        );
    }
}
