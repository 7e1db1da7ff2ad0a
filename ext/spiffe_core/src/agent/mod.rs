//! An embedded Workload API server that behaves like the SPIRE agent
//! (spec/spire-agent-behavior.md, Part A): security header first, SPIRE's
//! status codes and messages, first stream message at once and a full
//! snapshot per change, JWT-SVIDs with a `kid`, JWKS bundles. It mints its
//! own CA. Faults (delay, hang, any status, malformed responses) can be
//! injected for tests.

mod authority_fix;
pub mod ca;
pub mod jwt_issuer;
mod service;

use crate::error::{Error, ErrorKind, Result};
use crate::id::{SpiffeId, TrustDomain};
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use ca::{Authority, KeyType, LeafProfile};
use jwt_issuer::{SigningKey, TokenCache};
use serde::Deserialize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;

/// A registration entry the agent issues an identity for.
#[derive(Debug, Clone, Deserialize)]
pub struct EntryConfig {
    pub spiffe_id: String,
    #[serde(default)]
    pub hint: String,
    /// Sort key of the entry (SPIRE orders SVIDs by entry ID); defaults to
    /// the entry's position.
    #[serde(default)]
    pub entry_id: Option<String>,
}

fn default_x509_ttl() -> f64 {
    3600.0
}

fn default_jwt_ttl() -> f64 {
    300.0
}

/// The agent's configuration (also its JSON config format).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub trust_domain: String,
    pub socket_path: PathBuf,
    #[serde(default)]
    pub entries: Vec<EntryConfig>,
    /// X.509-SVID lifetime in seconds (SPIRE: 1 h).
    #[serde(default = "default_x509_ttl")]
    pub x509_svid_ttl: f64,
    /// JWT-SVID lifetime in seconds (SPIRE: 5 min).
    #[serde(default = "default_jwt_ttl")]
    pub jwt_svid_ttl: f64,
    /// Key type of minted X.509-SVIDs (SPIRE: EC P-256).
    #[serde(default)]
    pub svid_key_type: KeyType,
    /// Key type of the CA and the JWT signing key (SPIRE: EC P-256).
    #[serde(default)]
    pub ca_key_type: KeyType,
    /// Sign SVIDs with an intermediate CA, so chains have two certificates.
    #[serde(default)]
    pub intermediate: bool,
}

/// An injectable misbehavior, applied after argument checks (where SPIRE
/// attests the caller).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Only these RPCs (e.g. "FetchJWTSVID"); empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Wait this long (seconds) before answering.
    #[serde(default)]
    pub delay: f64,
    /// Never answer.
    #[serde(default)]
    pub hang: bool,
    /// Answer with this gRPC status code name (e.g. "unavailable") ...
    #[serde(default)]
    pub status: Option<String>,
    /// ... and this message.
    #[serde(default)]
    pub message: String,
    /// Send a malformed response: "svid_der", "key_mismatch", "bundle_der",
    /// "empty_svids", "jwks", "jwt".
    #[serde(default)]
    pub corrupt: Option<String>,
}

impl Fault {
    fn applies_to(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

pub(crate) struct Identity {
    pub entry_id: String,
    pub spiffe_id: SpiffeId,
    pub hint: String,
    /// Concatenated DER, leaf first (no root).
    pub chain: Vec<u8>,
    /// PKCS#8 DER.
    pub key: Vec<u8>,
}

pub(crate) struct State {
    pub identities: Vec<Identity>,
    pub fault: Fault,
    next_entry: u64,
}

pub(crate) struct Inner {
    pub trust_domain: TrustDomain,
    pub config: AgentConfig,
    pub root: Authority,
    pub issuer: Authority,
    pub jwt_key: SigningKey,
    pub tokens: TokenCache,
    pub state: Mutex<State>,
    /// Bumped on every change; streams send a snapshot per bump.
    pub changes: watch::Sender<u64>,
    /// Set when the agent stops, so open streams end.
    pub stopping: watch::Sender<bool>,
    /// PIDs of the processes that connected (SO_PEERCRED), in order.
    pub peers: Mutex<Vec<i32>>,
}

impl Inner {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        self.changes.send_modify(|generation| *generation += 1);
    }

    fn mint(&self, entry: &EntryConfig, entry_id: String) -> Result<Identity> {
        let spiffe_id = SpiffeId::parse(&entry.spiffe_id)
            .map_err(|e| e.context(&format!("entry {:?}", entry.spiffe_id)))?;
        if spiffe_id.trust_domain() != &self.trust_domain {
            return Err(Error::config(format!(
                "entry {} is not in the agent's trust domain {}",
                spiffe_id, self.trust_domain
            )));
        }
        let key = self.config.svid_key_type.generate()?;
        let ttl = Duration::from_secs_f64(self.config.x509_svid_ttl.max(1.0));
        let leaf = self
            .issuer
            .mint_leaf(&spiffe_id, &key, ttl, LeafProfile::default())?;
        let der = |r: std::result::Result<Vec<u8>, openssl::error::ErrorStack>| {
            r.map_err(|e| Error::internal(e.to_string()))
        };
        let mut chain = der(leaf.to_der())?;
        if self.config.intermediate {
            chain.extend(der(self.issuer.cert.to_der())?);
        }
        Ok(Identity {
            entry_id,
            spiffe_id,
            hint: entry.hint.clone(),
            chain,
            key: der(key.private_key_to_pkcs8())?,
        })
    }

    pub fn bundle_der(&self) -> Vec<u8> {
        self.root.cert.to_der().unwrap_or_default()
    }
}

/// A running embedded agent. Dropping it stops the server.
pub struct Agent {
    inner: Arc<Inner>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Agent {
    /// Parses the JSON configuration format.
    pub fn config_from_json(json: &str) -> Result<AgentConfig> {
        serde_json::from_str(json)
            .map_err(|e| Error::config(format!("invalid agent configuration: {e}")))
    }

    /// Builds the CA, mints the entries' SVIDs and starts serving on the
    /// Unix socket (a stale socket file is replaced; the socket is 0777 as
    /// SPIRE makes it). Must run inside a tokio runtime.
    pub async fn start(config: AgentConfig) -> Result<Self> {
        let trust_domain =
            TrustDomain::parse(&config.trust_domain).map_err(|e| e.context("trust_domain"))?;
        let root = Authority::root(
            &trust_domain,
            config.ca_key_type,
            Duration::from_secs(24 * 3600),
        )?;
        let issuer = if config.intermediate {
            root.intermediate(
                &trust_domain,
                config.ca_key_type,
                Duration::from_secs(24 * 3600),
            )?
        } else {
            Authority {
                cert: root.cert.clone(),
                key: root.key.clone(),
            }
        };
        let jwt_key = SigningKey::new(config.ca_key_type.generate()?, None)?;
        let inner = Arc::new(Inner {
            trust_domain,
            config: config.clone(),
            root,
            issuer,
            jwt_key,
            tokens: TokenCache::default(),
            state: Mutex::new(State {
                identities: Vec::new(),
                fault: Fault::default(),
                next_entry: 0,
            }),
            changes: watch::channel(0).0,
            stopping: watch::channel(false).0,
            peers: Mutex::new(Vec::new()),
        });
        for entry in &config.entries {
            Self::insert_entry(&inner, entry)?;
        }
        let listener = bind(&config.socket_path)?;
        let (shutdown, shutdown_rx) = oneshot::channel();
        let service = SpiffeWorkloadApiServer::new(service::WorkloadService {
            inner: inner.clone(),
        });
        let tracker = inner.clone();
        let connections = UnixListenerStream::new(listener).map(move |conn| {
            if let Ok(pid) = conn
                .as_ref()
                .map(|c| c.peer_cred().ok().and_then(|cred| cred.pid()))
            {
                tracker
                    .peers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(pid.unwrap_or(0));
            }
            conn.map(authority_fix::AuthorityFix::new)
        });
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(connections, async {
                    let _ = shutdown_rx.await;
                })
                .await;
        });
        Ok(Self {
            inner,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    fn insert_entry(inner: &Inner, entry: &EntryConfig) -> Result<String> {
        let mut state = inner.state();
        let entry_id = entry
            .entry_id
            .clone()
            .unwrap_or_else(|| format!("entry-{:08}", state.next_entry));
        state.next_entry += 1;
        if state.identities.iter().any(|i| i.entry_id == entry_id) {
            return Err(Error::config(format!(
                "an entry with ID {entry_id:?} already exists"
            )));
        }
        let identity = inner.mint(entry, entry_id.clone())?;
        state.identities.push(identity);
        state.identities.sort_by(|a, b| a.entry_id.cmp(&b.entry_id));
        Ok(entry_id)
    }

    pub fn socket_path(&self) -> &Path {
        &self.inner.config.socket_path
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.inner.trust_domain
    }

    /// DER of the trust domain's root CA.
    pub fn bundle_der(&self) -> Vec<u8> {
        self.inner.bundle_der()
    }

    /// The JWKS the agent serves for its trust domain.
    pub fn jwks(&self) -> String {
        service::jwks_json(&self.inner)
    }

    /// PIDs of the processes that have connected, in order (SO_PEERCRED).
    pub fn peer_pids(&self) -> Vec<i32> {
        self.inner
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds an entry; open streams get a new snapshot. Returns its entry ID.
    pub fn add_entry(&self, entry: &EntryConfig) -> Result<String> {
        let id = Self::insert_entry(&self.inner, entry)?;
        self.inner.notify();
        Ok(id)
    }

    /// Removes every entry with this SPIFFE ID; returns how many were removed.
    pub fn remove_entry(&self, spiffe_id: &str) -> usize {
        let removed = {
            let mut state = self.inner.state();
            let before = state.identities.len();
            state
                .identities
                .retain(|i| i.spiffe_id.to_string() != spiffe_id);
            before - state.identities.len()
        };
        if removed > 0 {
            self.inner.notify();
        }
        removed
    }

    /// Replaces the injected fault (`Fault::default()` clears it).
    pub fn set_fault(&self, fault: Fault) {
        self.inner.state().fault = fault;
        self.inner.notify();
    }

    /// Stops serving: ends open streams, closes the listener and removes the
    /// socket file. Idempotent.
    pub async fn stop(&mut self) {
        self.inner.stopping.send_replace(true);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let _ = std::fs::remove_file(&self.inner.config.socket_path);
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.inner.stopping.send_replace(true);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn bind(path: &Path) -> Result<tokio::net::UnixListener> {
    let io_error = |what: &str, e: std::io::Error| {
        Error::new(
            ErrorKind::Configuration,
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("remove stale socket", e))
        }
        _ => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create the directory of", e))?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| io_error("listen on", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| io_error("chmod", e))?;
    Ok(listener)
}
