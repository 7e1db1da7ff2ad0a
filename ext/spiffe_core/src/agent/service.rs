//! The agent's gRPC handlers, in SPIRE's order: security header, argument
//! checks, (attestation, where faults are injected), then the answer.

use super::{Fault, Inner};
use crate::id::SpiffeId;
use crate::jws::jwk_to_key;
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::proto::*;
use openssl::pkey::{PKey, Public};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status};

type Snapshots<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

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

impl WorkloadService {
    /// Applies the injected fault for `method`, where SPIRE attests the caller.
    async fn misbehave(&self, method: &str) -> Result<Option<String>, Status> {
        let fault: Fault = self.inner.state().fault.clone();
        if !fault.applies_to(method) {
            return Ok(None);
        }
        if fault.delay > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(fault.delay)).await;
        }
        if fault.hang {
            std::future::pending::<()>().await;
        }
        if let Some(code) = &fault.status {
            return Err(Status::new(parse_code(code), fault.message.clone()));
        }
        Ok(fault.corrupt)
    }

    fn x509_response(&self, corrupt: Option<&str>) -> Option<X509svidResponse> {
        let state = self.inner.state();
        if state.identities.is_empty() {
            return None;
        }
        let bundle = self.inner.bundle_der();
        let mut svids: Vec<X509svid> = state
            .identities
            .iter()
            .map(|identity| X509svid {
                spiffe_id: identity.spiffe_id.to_string(),
                x509_svid: identity.chain.clone(),
                x509_svid_key: identity.key.clone(),
                bundle: bundle.clone(),
                hint: identity.hint.clone(),
            })
            .collect();
        drop(state);
        dedupe_hints(&mut svids, |s| &s.hint);
        match corrupt {
            Some("svid_der") => {
                let half = svids[0].x509_svid.len() / 2;
                svids[0].x509_svid.truncate(half);
            }
            Some("key_mismatch") => {
                let other = super::ca::KeyType::EcP256.generate().and_then(|k| {
                    k.private_key_to_pkcs8()
                        .map_err(|e| crate::Error::internal(e.to_string()))
                });
                svids[0].x509_svid_key = other.unwrap_or_default();
            }
            Some("bundle_der") => svids[0].bundle = vec![0x30, 0x03, 1, 2],
            Some("empty_svids") => svids.clear(),
            _ => {}
        }
        Some(X509svidResponse {
            svids,
            crl: Vec::new(),
            federated_bundles: HashMap::new(),
        })
    }

    fn x509_bundles(&self, corrupt: Option<&str>) -> Option<X509BundlesResponse> {
        if self.inner.state().identities.is_empty() {
            return None;
        }
        let der = if corrupt == Some("bundle_der") {
            vec![0x30, 0x03, 1, 2]
        } else {
            self.inner.bundle_der()
        };
        Some(X509BundlesResponse {
            crl: Vec::new(),
            bundles: HashMap::from([(self.inner.trust_domain.id_string(), der)]),
        })
    }

    fn jwt_bundles(&self, corrupt: Option<&str>) -> Option<JwtBundlesResponse> {
        if self.inner.state().identities.is_empty() {
            return None;
        }
        let jwks = if corrupt == Some("jwks") {
            r#"{"keys":[{"kty":"EC"}]}"#.to_owned()
        } else {
            jwks_json(&self.inner)
        };
        Some(JwtBundlesResponse {
            bundles: HashMap::from([(self.inner.trust_domain.id_string(), jwks.into_bytes())]),
        })
    }

    /// Sends a snapshot now and one per change, until the client goes away
    /// or the agent stops; a snapshot of `None` ends the stream with
    /// `PermissionDenied`. `dedupe` skips snapshots equal to the last one
    /// sent (bundle streams), as SPIRE does.
    fn snapshots<T, F>(&self, first: T, dedupe: bool, next: F) -> Snapshots<T>
    where
        T: Clone + PartialEq + Send + 'static,
        F: Fn() -> Option<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(1);
        let mut changes = self.inner.changes.subscribe();
        let mut stopping = self.inner.stopping.subscribe();
        tokio::spawn(async move {
            let mut last = first.clone();
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            changes.borrow_and_update();
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = stopping.wait_for(|stop| *stop) => return,
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

    fn keys_for(&self, td: &str) -> Option<Vec<(String, PKey<Public>)>> {
        if td != self.inner.trust_domain.name() {
            return None;
        }
        let jwk = self.inner.jwt_key.jwk().ok()?;
        Some(vec![(
            self.inner.jwt_key.kid.clone(),
            jwk_to_key(&jwk).ok()?,
        )])
    }
}

fn dedupe_hints<T>(items: &mut Vec<T>, hint: impl Fn(&T) -> &String) {
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| {
        let h = hint(item);
        h.is_empty() || seen.insert(h.clone())
    });
}

/// The trust domain's JWKS, formatted as SPIRE formats it (4-space indent, no `use`).
pub(super) fn jwks_json(inner: &Inner) -> String {
    let keys: Vec<Value> = inner.jwt_key.jwk().into_iter().collect();
    let doc = json!({ "keys": keys });
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    serde::Serialize::serialize(&doc, &mut ser).expect("a JSON value always serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
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
        let corrupt = self.misbehave("FetchX509SVID").await?;
        let first = self
            .x509_response(corrupt.as_deref())
            .ok_or_else(no_identity)?;
        let me = WorkloadService {
            inner: self.inner.clone(),
        };
        Ok(Response::new(
            self.snapshots(first, false, move || me.x509_response(None)),
        ))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        check_header(&request)?;
        let corrupt = self.misbehave("FetchX509Bundles").await?;
        let first = self
            .x509_bundles(corrupt.as_deref())
            .ok_or_else(no_identity)?;
        let me = WorkloadService {
            inner: self.inner.clone(),
        };
        Ok(Response::new(
            self.snapshots(first, true, move || me.x509_bundles(None)),
        ))
    }

    async fn fetch_jwtsvid(
        &self,
        request: Request<JwtsvidRequest>,
    ) -> Result<Response<JwtsvidResponse>, Status> {
        check_header(&request)?;
        let request = request.into_inner();
        if request.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if !request.spiffe_id.is_empty() {
            SpiffeId::parse(&request.spiffe_id).map_err(|e| {
                Status::invalid_argument(format!("invalid requested SPIFFE ID: {e}"))
            })?;
        }
        let corrupt = self.misbehave("FetchJWTSVID").await?;
        let ttl = Duration::from_secs_f64(self.inner.config.jwt_svid_ttl.max(1.0));
        let mut wanted: Vec<(SpiffeId, String)> = self
            .inner
            .state()
            .identities
            .iter()
            .map(|i| (i.spiffe_id.clone(), i.hint.clone()))
            .collect();
        dedupe_hints(&mut wanted, |(_, hint)| hint);
        wanted
            .retain(|(id, _)| request.spiffe_id.is_empty() || id.to_string() == request.spiffe_id);
        let mut svids = Vec::with_capacity(wanted.len());
        for (id, hint) in wanted {
            let token = self
                .inner
                .tokens
                .token(&self.inner.jwt_key, &id, &request.audience, ttl)
                .map_err(|e| Status::unavailable(format!("could not fetch JWT-SVID: {e}")))?;
            let svid = if corrupt.as_deref() == Some("jwt") {
                "not.a-jwt".to_owned()
            } else {
                token
            };
            svids.push(Jwtsvid {
                spiffe_id: id.to_string(),
                svid,
                hint,
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
        let corrupt = self.misbehave("FetchJWTBundles").await?;
        let first = self
            .jwt_bundles(corrupt.as_deref())
            .ok_or_else(no_identity)?;
        let me = WorkloadService {
            inner: self.inner.clone(),
        };
        Ok(Response::new(
            self.snapshots(first, true, move || me.jwt_bundles(None)),
        ))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        check_header(&request)?;
        let request = request.into_inner();
        if request.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if request.svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        self.misbehave("ValidateJWTSVID").await?;
        let (id, claims) =
            super::jwt_issuer::validate(&request.svid, &request.audience, |td| self.keys_for(td))
                .map_err(Status::invalid_argument)?;
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
