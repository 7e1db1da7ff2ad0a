//! The agent's gRPC handlers, in SPIRE's order: security header, argument
//! checks, attestation (where injected faults apply), then the answer for
//! the identities the caller's selectors match.

use super::attestor::{self, PeerInfo};
use super::authority_fix::Peer;
use super::{Fault, Inner, State};
use crate::id::{SpiffeId, TrustDomain};
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::proto::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

type Snapshots<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Selectors = Arc<HashSet<String>>;

pub(super) struct WorkloadService {
    pub inner: Arc<Inner>,
}

fn no_identity() -> Status {
    Status::permission_denied("no identity issued")
}

/// SPIRE accepts exactly one `workload.spiffe.io` value, exactly `true`.
fn check_header<T>(request: &Request<T>) -> Result<(), Status> {
    let mut values = request.metadata().get_all(SECURITY_HEADER).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if value == "true" => Ok(()),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}

fn parse_code(name: &str) -> Code {
    let normalized: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    (0..=16)
        .map(Code::from_i32)
        .find(|code| format!("{code:?}").to_ascii_lowercase() == normalized)
        .unwrap_or(Code::Unknown)
}

/// The federated trust domains of the caller's entries.
fn federated_of(state: &State, selectors: &HashSet<String>) -> BTreeSet<TrustDomain> {
    state
        .identities(selectors)
        .iter()
        .flat_map(|e| e.federates_with.iter().cloned())
        .collect()
}

impl WorkloadService {
    fn clone_service(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }

    /// Attests the caller (after applying any injected fault, which stands
    /// in for attestation misbehaving) and returns its selectors.
    async fn attest<T>(
        &self,
        request: &Request<T>,
        method: &str,
    ) -> Result<(Selectors, Option<String>), Status> {
        *super::lock(&self.inner.calls)
            .entry(method.to_owned())
            .or_default() += 1;
        let fault: Fault = self.inner.state().fault.clone();
        let mut corrupt = None;
        if fault.applies_to(method) {
            if fault.delay > 0.0 {
                tokio::time::sleep(Duration::from_secs_f64(fault.delay)).await;
            }
            if fault.hang {
                std::future::pending::<()>().await;
            }
            if let Some(code) = &fault.status {
                return Err(Status::new(parse_code(code), fault.message.clone()));
            }
            corrupt = fault.corrupt;
        }
        let failed = || Status::unavailable("workload attestation failed");
        let peer: PeerInfo = request
            .extensions()
            .get::<Peer>()
            .and_then(|p| p.0)
            .ok_or_else(failed)?;
        let needs = self.inner.state().needs();
        let selectors = if needs.sha256 {
            tokio::task::spawn_blocking(move || attestor::selectors(&peer, needs))
                .await
                .map_err(|_| failed())?
        } else {
            attestor::selectors(&peer, needs)
        };
        Ok((Arc::new(selectors.map_err(|_| failed())?), corrupt))
    }

    fn x509_response(
        &self,
        selectors: &HashSet<String>,
        corrupt: Option<&str>,
    ) -> Option<X509svidResponse> {
        let state = self.inner.state();
        let identities = state.identities(selectors);
        if identities.is_empty() {
            return None;
        }
        let bundle = self.inner.own(&state).bundle_der();
        let mut svids: Vec<X509svid> = identities
            .iter()
            .map(|entry| X509svid {
                spiffe_id: entry.spiffe_id.to_string(),
                x509_svid: entry.svid.chain.clone(),
                x509_svid_key: entry.svid.key.clone(),
                bundle: bundle.clone(),
                hint: entry.hint.clone(),
            })
            .collect();
        let federated_bundles = federated_of(&state, selectors)
            .into_iter()
            .filter_map(|td| Some((td.id_string(), state.domains.get(&td)?.bundle_der())))
            .collect();
        drop(state);
        match corrupt {
            Some("svid_der") => {
                let half = svids[0].x509_svid.len() / 2;
                svids[0].x509_svid.truncate(half);
            }
            Some("key_mismatch") => {
                let other = super::ca::KeyType::EcP256
                    .generate()
                    .ok()
                    .and_then(|k| k.private_key_to_pkcs8().ok());
                svids[0].x509_svid_key = other.unwrap_or_default();
            }
            Some("bundle_der") => svids[0].bundle = vec![0x30, 0x03, 1, 2],
            Some("empty_svids") => svids.clear(),
            _ => {}
        }
        Some(X509svidResponse {
            svids,
            crl: Vec::new(),
            federated_bundles,
        })
    }

    /// `None` when the caller may not see bundles (no identity, and
    /// unauthenticated verifiers are not allowed).
    fn bundle_domains(
        &self,
        state: &State,
        selectors: &HashSet<String>,
        all_federated: bool,
    ) -> Option<Vec<TrustDomain>> {
        let has_identity = !state.identities(selectors).is_empty();
        if !has_identity && !self.inner.config.allow_unauthenticated_verifiers {
            return None;
        }
        let mut domains = vec![self.inner.trust_domain.clone()];
        if all_federated {
            domains.extend(
                state
                    .domains
                    .keys()
                    .filter(|td| **td != self.inner.trust_domain)
                    .cloned(),
            );
        } else if has_identity {
            domains.extend(federated_of(state, selectors));
        }
        Some(domains)
    }

    fn x509_bundles(
        &self,
        selectors: &HashSet<String>,
        corrupt: Option<&str>,
    ) -> Option<X509BundlesResponse> {
        let state = self.inner.state();
        let domains = self.bundle_domains(&state, selectors, false)?;
        let bundles = domains
            .iter()
            .filter_map(|td| {
                let der = if corrupt == Some("bundle_der") {
                    vec![0x30, 0x03, 1, 2]
                } else {
                    state.domains.get(td)?.bundle_der()
                };
                Some((td.id_string(), der))
            })
            .collect();
        Some(X509BundlesResponse {
            crl: Vec::new(),
            bundles,
        })
    }

    fn jwt_bundles(
        &self,
        selectors: &HashSet<String>,
        corrupt: Option<&str>,
    ) -> Option<JwtBundlesResponse> {
        let state = self.inner.state();
        let domains = self.bundle_domains(&state, selectors, true)?;
        let bundles = domains
            .iter()
            .filter_map(|td| {
                let jwks = if corrupt == Some("jwks") {
                    r#"{"keys":[{"kty":"EC"}]}"#.to_owned()
                } else {
                    state.domains.get(td)?.jwks_json()
                };
                Some((td.id_string(), jwks.into_bytes()))
            })
            .collect();
        Some(JwtBundlesResponse { bundles })
    }

    /// Sends `first` now and a snapshot per change until the client goes
    /// away; a snapshot of `None` ends the stream with PermissionDenied.
    /// `dedupe` skips snapshots equal to the last one sent (bundle streams).
    fn snapshots<T, F>(&self, first: T, dedupe: bool, next: F) -> Snapshots<T>
    where
        T: Clone + PartialEq + Send + 'static,
        F: Fn() -> Option<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(1);
        let mut changes = self.inner.changes.subscribe();
        changes.borrow_and_update();
        tokio::spawn(async move {
            let mut last = first.clone();
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
                match next() {
                    None => {
                        let _ = tx.send(Err(no_identity())).await;
                        return;
                    }
                    Some(snapshot) if dedupe && snapshot == last => continue,
                    Some(snapshot) => {
                        last = snapshot.clone();
                        if tx.send(Ok(snapshot)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

fn to_struct(claims: serde_json::Map<String, Value>) -> prost_types::Struct {
    fn convert(value: Value) -> prost_types::Value {
        use prost_types::value::Kind;
        let kind = match value {
            Value::Null => Kind::NullValue(0),
            Value::Bool(b) => Kind::BoolValue(b),
            Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => Kind::StringValue(s),
            Value::Array(items) => Kind::ListValue(prost_types::ListValue {
                values: items.into_iter().map(convert).collect(),
            }),
            Value::Object(map) => Kind::StructValue(to_struct(map)),
        };
        prost_types::Value { kind: Some(kind) }
    }
    prost_types::Struct {
        fields: claims.into_iter().map(|(k, v)| (k, convert(v))).collect(),
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadService {
    type FetchX509SVIDStream = Snapshots<X509svidResponse>;
    type FetchX509BundlesStream = Snapshots<X509BundlesResponse>;
    type FetchJWTBundlesStream = Snapshots<JwtBundlesResponse>;
    type FetchWITSVIDStream = Snapshots<WitsvidResponse>;
    type FetchWITBundlesStream = Snapshots<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        check_header(&request)?;
        let (selectors, corrupt) = self.attest(&request, "FetchX509SVID").await?;
        let first = self
            .x509_response(&selectors, corrupt.as_deref())
            .ok_or_else(no_identity)?;
        let me = self.clone_service();
        Ok(Response::new(self.snapshots(first, false, move || {
            me.x509_response(&selectors, None)
        })))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_header(&request)?;
        let (selectors, corrupt) = self.attest(&request, "FetchX509Bundles").await?;
        let first = self
            .x509_bundles(&selectors, corrupt.as_deref())
            .ok_or_else(no_identity)?;
        let me = self.clone_service();
        Ok(Response::new(self.snapshots(first, true, move || {
            me.x509_bundles(&selectors, None)
        })))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        check_header(&request)?;
        if request.get_ref().audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if !request.get_ref().spiffe_id.is_empty() {
            SpiffeId::parse(&request.get_ref().spiffe_id).map_err(|e| {
                Status::invalid_argument(format!("invalid requested SPIFFE ID: {e}"))
            })?;
        }
        let (selectors, corrupt) = self.attest(&request, "FetchJWTSVID").await?;
        let request = request.into_inner();
        let state = self.inner.state();
        let signer = self.inner.own(&state).jwt_key();
        let mut svids = Vec::new();
        for entry in state.identities(&selectors) {
            if !request.spiffe_id.is_empty() && entry.spiffe_id.to_string() != request.spiffe_id {
                continue;
            }
            let token = self
                .inner
                .tokens
                .token(signer, &entry.spiffe_id, &request.audience, entry.jwt_ttl)
                .map_err(|e| Status::unavailable(format!("could not fetch JWT-SVID: {e}")))?;
            let svid = if corrupt.as_deref() == Some("jwt") {
                "not.a-jwt".to_owned()
            } else {
                token
            };
            svids.push(Jwtsvid {
                spiffe_id: entry.spiffe_id.to_string(),
                svid,
                hint: entry.hint.clone(),
            });
        }
        if svids.is_empty() {
            return Err(no_identity());
        }
        Ok(Response::new(JwtsvidResponse { svids }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        check_header(&request)?;
        let (selectors, corrupt) = self.attest(&request, "FetchJWTBundles").await?;
        let first = self
            .jwt_bundles(&selectors, corrupt.as_deref())
            .ok_or_else(no_identity)?;
        let me = self.clone_service();
        Ok(Response::new(self.snapshots(first, true, move || {
            me.jwt_bundles(&selectors, None)
        })))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        check_header(&request)?;
        if request.get_ref().audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if request.get_ref().svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        let (selectors, _) = self.attest(&request, "ValidateJWTSVID").await?;
        let request = request.into_inner();
        let (id, mut claims) = {
            let state = self.inner.state();
            // The local bundle plus the caller's entries' federated ones, as SPIRE.
            let trusted = federated_of(&state, &selectors);
            let keys_for = |td: &str| {
                let td = TrustDomain::parse(td).ok()?;
                (td == self.inner.trust_domain || trusted.contains(&td))
                    .then(|| state.domains.get(&td).map(|d| d.jwt_authorities()))?
            };
            super::jwt_issuer::validate(&request.svid, &request.audience, keys_for)
                .map_err(Status::invalid_argument)?
        };
        if id.trust_domain() != &self.inner.trust_domain {
            // SPIRE keeps only sub, exp and aud of foreign tokens.
            claims.retain(|k, _| matches!(k.as_str(), "sub" | "exp" | "aud"));
        }
        Ok(Response::new(ValidateJwtsvidResponse {
            spiffe_id: id.to_string(),
            claims: Some(to_struct(claims)),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        check_header(&request)?;
        Err(Status::unimplemented(
            "fetching WIT-SVIDs is not implemented",
        ))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        check_header(&request)?;
        Err(Status::unimplemented(
            "fetching WIT bundles is not implemented",
        ))
    }
}
