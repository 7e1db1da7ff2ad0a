//! An embedded Workload API server that behaves like the SPIRE agent
//! (spec/spire-agent-behavior.md, Part A): it attests callers from the
//! socket's peer credentials and issues identities to registration entries
//! whose selectors they match; checks the security header first; answers
//! with SPIRE's status codes and messages; sends a stream's first message at
//! once and a full snapshot on every change; rotates SVIDs at half their
//! lifetime, and on demand its CA and JWT keys. It knows federated trust
//! domains, and faults can be injected for tests.

pub mod attestor;
mod authority_fix;
pub mod ca;
pub mod config;
pub mod domain;
pub mod jwt_issuer;
mod service;

pub use config::{AgentConfig, EntryConfig, Fault};

use crate::error::{Error, ErrorKind, Result};
use crate::id::{SpiffeId, TrustDomain};
use crate::proto::spiffe_workload_api_server::SpiffeWorkloadApiServer;
use attestor::{Needs, PeerInfo};
use ca::LeafProfile;
use domain::{now, Domain, DomainSettings, Minted};
use jwt_issuer::TokenCache;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

/// A registration entry with its current SVID.
pub(crate) struct Entry {
    pub entry_id: String,
    /// Creation order; among entries sharing a hint the oldest wins.
    pub created: u64,
    pub spiffe_id: SpiffeId,
    pub selectors: Vec<String>,
    pub hint: String,
    pub x509_ttl: Duration,
    pub jwt_ttl: Duration,
    pub federates_with: Vec<TrustDomain>,
    pub svid: Minted,
}

impl Entry {
    fn matches(&self, selectors: &HashSet<String>) -> bool {
        self.selectors.iter().all(|s| selectors.contains(s))
    }
}

pub(crate) struct State {
    /// Sorted by entry ID.
    pub entries: Vec<Entry>,
    /// The agent's own trust domain and the federated ones.
    pub domains: BTreeMap<TrustDomain, Domain>,
    pub fault: Fault,
    next_entry: u64,
}

impl State {
    /// The entries a caller gets, as SPIRE computes them: those whose
    /// selectors it has, one per non-empty hint (the oldest), by entry ID.
    pub fn identities(&self, selectors: &HashSet<String>) -> Vec<&Entry> {
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.matches(selectors))
            .collect();
        matching
            .iter()
            .filter(|e| {
                e.hint.is_empty()
                    || !matching.iter().any(|o| {
                        o.hint == e.hint && (o.created, &o.entry_id) < (e.created, &e.entry_id)
                    })
            })
            .copied()
            .collect()
    }

    /// Whether attestation must read the caller's executable.
    pub fn needs(&self) -> Needs {
        let uses = |prefix: &str| {
            self.entries
                .iter()
                .any(|e| e.selectors.iter().any(|s| s.starts_with(prefix)))
        };
        Needs {
            user: uses("unix:user:"),
            group: uses("unix:group:"),
            supplementary: uses("unix:supplementary_"),
            path: uses("unix:path:"),
            sha256: uses("unix:sha256:"),
        }
    }
}

pub(crate) struct Inner {
    pub trust_domain: TrustDomain,
    pub config: AgentConfig,
    pub tokens: TokenCache,
    pub state: Mutex<State>,
    /// Bumped on every change; streams send a snapshot per bump.
    pub changes: watch::Sender<u64>,
    /// PIDs of the processes that connected (SO_PEERCRED), in order.
    peers: Mutex<Vec<i32>>,
    /// Calls received per RPC name.
    pub calls: Mutex<BTreeMap<String, u64>>,
    /// Cancelled to cut every open connection.
    connections: Mutex<CancellationToken>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn own<'a>(&self, state: &'a State) -> &'a Domain {
        &state.domains[&self.trust_domain]
    }

    fn notify(&self) {
        self.changes.send_modify(|generation| *generation += 1);
    }

    fn seconds(value: Option<f64>, default: f64) -> Duration {
        Duration::from_secs_f64(value.unwrap_or(default).max(0.001))
    }

    fn mint_for(&self, state: &State, spiffe_id: &SpiffeId, ttl: Duration) -> Result<Minted> {
        self.own(state).mint(
            spiffe_id,
            self.config.svid_key_type,
            ttl,
            LeafProfile::default(),
        )
    }

    fn insert_entry(&self, state: &mut State, entry: &EntryConfig) -> Result<String> {
        config::validate_selectors(&entry.selectors)?;
        let spiffe_id = SpiffeId::parse(&entry.spiffe_id)
            .map_err(|e| e.context(&format!("entry {:?}", entry.spiffe_id)))?;
        if spiffe_id.trust_domain() != &self.trust_domain || spiffe_id.path().is_empty() {
            return Err(Error::config(format!(
                "entry {spiffe_id} must be a workload ID in the agent's trust domain {} (spiffe://{}/<path>)",
                self.trust_domain, self.trust_domain
            )));
        }
        let federates_with = entry
            .federates_with
            .iter()
            .map(|td| {
                let td = TrustDomain::parse(td)?;
                if state.domains.contains_key(&td) && td != self.trust_domain {
                    Ok(td)
                } else {
                    Err(Error::config(format!("entry {spiffe_id} federates with {td}, which is not in federated_trust_domains")))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let entry_id = entry
            .entry_id
            .clone()
            .unwrap_or_else(|| format!("entry-{:08}", state.next_entry));
        if state.entries.iter().any(|e| e.entry_id == entry_id) {
            return Err(Error::config(format!(
                "an entry with ID {entry_id:?} already exists"
            )));
        }
        let x509_ttl = Self::seconds(entry.x509_svid_ttl, self.config.x509_svid_ttl);
        let svid = self.mint_for(state, &spiffe_id, x509_ttl)?;
        let created = state.next_entry;
        state.next_entry += 1;
        state.entries.push(Entry {
            entry_id: entry_id.clone(),
            created,
            spiffe_id,
            selectors: entry.selectors.clone(),
            hint: entry.hint.clone(),
            x509_ttl,
            jwt_ttl: Self::seconds(entry.jwt_svid_ttl, self.config.jwt_svid_ttl),
            federates_with,
            svid,
        });
        state.entries.sort_by(|a, b| a.entry_id.cmp(&b.entry_id));
        Ok(entry_id)
    }

    /// Re-mints SVIDs past half their lifetime and drops retired authorities
    /// whose overlap ended. Returns whether anything changed.
    fn rotate_due(&self) -> Result<bool> {
        let at = now();
        let mut state = self.state();
        let mut changed = false;
        for domain in state.domains.values_mut() {
            changed |= domain.prune(at);
        }
        if self.config.rotation {
            for i in 0..state.entries.len() {
                let svid = &state.entries[i].svid;
                if at >= svid.issued_at + (svid.expires_at - svid.issued_at) / 2.0 {
                    let fresh = self.mint_for(
                        &state,
                        &state.entries[i].spiffe_id,
                        state.entries[i].x509_ttl,
                    )?;
                    state.entries[i].svid = fresh;
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    /// How long the rotation loop may sleep.
    fn next_wakeup(&self) -> Duration {
        let state = self.state();
        let at = now();
        let halves = state
            .entries
            .iter()
            .filter(|_| self.config.rotation)
            .map(|e| e.svid.issued_at + (e.svid.expires_at - e.svid.issued_at) / 2.0);
        let prunes = state.domains.values().filter_map(Domain::next_prune);
        let next = halves.chain(prunes).reduce(f64::min).unwrap_or(at + 1.0);
        Duration::from_secs_f64((next - at).clamp(0.005, 1.0))
    }

    fn reissue_all(&self, state: &mut State) -> Result<()> {
        for i in 0..state.entries.len() {
            state.entries[i].svid = self.mint_for(
                state,
                &state.entries[i].spiffe_id,
                state.entries[i].x509_ttl,
            )?;
        }
        Ok(())
    }

    fn max_ttl(state: &State, ttl: impl Fn(&Entry) -> Duration, default: f64) -> Duration {
        state
            .entries
            .iter()
            .map(ttl)
            .max()
            .unwrap_or(Duration::from_secs_f64(default))
    }
}

async fn rotation_loop(inner: Weak<Inner>) {
    loop {
        let Some(wait) = inner.upgrade().map(|i| i.next_wakeup()) else {
            return;
        };
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Ok(true) = inner.rotate_due() {
            inner.notify();
        }
    }
}

struct Server {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A running embedded agent. Dropping it stops the server.
pub struct Agent {
    inner: Arc<Inner>,
    server: Option<Server>,
    rotation: JoinHandle<()>,
}

impl Agent {
    /// Parses the JSON configuration format.
    pub fn config_from_json(json: &str) -> Result<AgentConfig> {
        AgentConfig::from_json(json)
    }

    /// Builds the CAs, mints the entries' SVIDs and starts serving on the
    /// Unix socket (a stale socket file is replaced; the socket is 0777 as
    /// SPIRE makes it). Must run inside a tokio runtime.
    pub async fn start(config: AgentConfig) -> Result<Self> {
        let trust_domain =
            TrustDomain::parse(&config.trust_domain).map_err(|e| e.context("trust_domain"))?;
        let settings = DomainSettings {
            ca_key_type: config.ca_key_type,
            jwt: config.jwt_alg()?,
            intermediate: config.intermediate,
            ca_ttl: Duration::from_secs_f64(config.ca_ttl.max(60.0)),
        };
        let mut domains = BTreeMap::new();
        domains.insert(
            trust_domain.clone(),
            Domain::new(trust_domain.clone(), settings)?,
        );
        for name in &config.federated_trust_domains {
            let td = TrustDomain::parse(name).map_err(|e| e.context("federated_trust_domains"))?;
            domains.insert(td.clone(), Domain::new(td, settings)?);
        }
        let inner = Arc::new(Inner {
            trust_domain,
            config: config.clone(),
            tokens: TokenCache::default(),
            state: Mutex::new(State {
                entries: Vec::new(),
                domains,
                fault: Fault::default(),
                next_entry: 0,
            }),
            changes: watch::channel(0).0,
            peers: Mutex::new(Vec::new()),
            calls: Mutex::new(BTreeMap::new()),
            connections: Mutex::new(CancellationToken::new()),
        });
        {
            let mut state = inner.state();
            for entry in &config.entries {
                inner.insert_entry(&mut state, entry)?;
            }
        }
        let rotation = tokio::spawn(rotation_loop(Arc::downgrade(&inner)));
        let mut agent = Self {
            inner,
            server: None,
            rotation,
        };
        agent.serve()?;
        Ok(agent)
    }

    fn serve(&mut self) -> Result<()> {
        let listener = bind(&self.inner.config.socket_path)?;
        let (shutdown, shutdown_rx) = oneshot::channel();
        let service = SpiffeWorkloadApiServer::new(service::WorkloadService {
            inner: self.inner.clone(),
        });
        let inner = self.inner.clone();
        let connections = UnixListenerStream::new(listener).map(move |conn| {
            conn.map(|stream| {
                let peer = PeerInfo::of(&stream);
                lock(&inner.peers).push(peer.and_then(|p| p.pid).unwrap_or(0));
                let cut = lock(&inner.connections).clone();
                authority_fix::AuthorityFix::new(stream, peer, cut)
            })
        });
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(connections, async {
                    let _ = shutdown_rx.await;
                })
                .await;
        });
        self.server = Some(Server { shutdown, task });
        Ok(())
    }

    /// Cuts every open connection at once (clients see the stream break);
    /// the agent keeps accepting new ones.
    pub fn drop_connections(&self) {
        let mut token = lock(&self.inner.connections);
        token.cancel();
        *token = CancellationToken::new();
    }

    /// Stops serving: cuts open connections, closes the listener and removes
    /// the socket file. Entries, CAs and keys are kept for [`Agent::restart`].
    pub async fn stop(&mut self) {
        self.drop_connections();
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            let abort = server.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), server.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let _ = std::fs::remove_file(&self.inner.config.socket_path);
    }

    /// Serves again on the same socket path, with the same CA, keys and entries.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        self.serve()
    }

    pub fn is_serving(&self) -> bool {
        self.server.is_some()
    }

    pub fn socket_path(&self) -> &Path {
        &self.inner.config.socket_path
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.inner.trust_domain
    }

    fn domain<T>(&self, td: &str, f: impl FnOnce(&Domain) -> T) -> Result<T> {
        let td = TrustDomain::parse(td)?;
        let state = self.inner.state();
        let domain = state
            .domains
            .get(&td)
            .ok_or_else(|| Error::config(format!("the agent has no trust domain {td}")))?;
        Ok(f(domain))
    }

    /// Concatenated DER roots of a trust domain the agent knows (own or federated).
    pub fn bundle_der_for(&self, td: &str) -> Result<Vec<u8>> {
        self.domain(td, Domain::bundle_der)
    }

    /// DER roots of the agent's own trust domain.
    pub fn bundle_der(&self) -> Vec<u8> {
        self.bundle_der_for(self.inner.trust_domain.name())
            .unwrap_or_default()
    }

    /// The JWKS of a trust domain the agent knows.
    pub fn jwks_for(&self, td: &str) -> Result<String> {
        self.domain(td, Domain::jwks_json)
    }

    /// The JWKS the agent serves for its own trust domain.
    pub fn jwks(&self) -> String {
        self.jwks_for(self.inner.trust_domain.name())
            .unwrap_or_default()
    }

    /// PIDs of the processes that have connected, in order (SO_PEERCRED).
    pub fn peer_pids(&self) -> Vec<i32> {
        lock(&self.inner.peers).clone()
    }

    /// Calls received per RPC (e.g. "FetchJWTSVID"), counted after the
    /// security header check.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.calls).clone()
    }

    /// Adds an entry; open streams get a new snapshot. Returns its entry ID.
    pub fn add_entry(&self, entry: &EntryConfig) -> Result<String> {
        let id = {
            let mut state = self.inner.state();
            self.inner.insert_entry(&mut state, entry)?
        };
        self.inner.notify();
        Ok(id)
    }

    /// Removes the entry with this entry ID, or every entry with this SPIFFE
    /// ID; returns how many were removed. Streams of callers left without an
    /// identity end with PermissionDenied.
    pub fn remove_entry(&self, id: &str) -> usize {
        let removed = {
            let mut state = self.inner.state();
            let before = state.entries.len();
            state
                .entries
                .retain(|e| e.entry_id != id && e.spiffe_id.to_string() != id);
            before - state.entries.len()
        };
        if removed > 0 {
            self.inner.notify();
        }
        removed
    }

    /// Re-issues every X.509-SVID now (as at half-life).
    pub fn rotate(&self) -> Result<()> {
        {
            let mut state = self.inner.state();
            self.inner.reissue_all(&mut state)?;
        }
        self.inner.notify();
        Ok(())
    }

    /// A new CA for the own trust domain; SVIDs are re-issued by it and the
    /// bundle carries the old root too until SVIDs it signed have expired.
    pub fn rotate_ca(&self) -> Result<()> {
        {
            let mut state = self.inner.state();
            let overlap = Inner::max_ttl(&state, |e| e.x509_ttl, self.inner.config.x509_svid_ttl);
            let td = self.inner.trust_domain.clone();
            state
                .domains
                .get_mut(&td)
                .expect("own domain exists")
                .rotate_ca(overlap)?;
            self.inner.reissue_all(&mut state)?;
        }
        self.inner.notify();
        Ok(())
    }

    /// A new JWT signing key; the JWKS keeps the old one until tokens it
    /// signed have expired. Cached tokens are dropped.
    pub fn rotate_jwt_key(&self) -> Result<()> {
        {
            let mut state = self.inner.state();
            let overlap = Inner::max_ttl(&state, |e| e.jwt_ttl, self.inner.config.jwt_svid_ttl);
            let td = self.inner.trust_domain.clone();
            state
                .domains
                .get_mut(&td)
                .expect("own domain exists")
                .rotate_jwt_key(overlap)?;
        }
        self.inner.tokens.clear();
        self.inner.notify();
        Ok(())
    }

    /// Mints an X.509-SVID for any ID of a known trust domain, outside the
    /// Workload API (for tests: peers, foreign domains). Returns chain and key DER.
    pub fn mint_x509_svid(&self, spiffe_id: &str, ttl: Duration) -> Result<(Vec<u8>, Vec<u8>)> {
        let id = SpiffeId::parse(spiffe_id)?;
        let key_type = self.inner.config.svid_key_type;
        let minted = self.domain(id.trust_domain().name(), |d| {
            d.mint(&id, key_type, ttl, LeafProfile::default())
        })??;
        Ok((minted.chain, minted.key))
    }

    /// Mints a JWT-SVID for any ID of a known trust domain (for tests).
    pub fn mint_jwt_svid(
        &self,
        spiffe_id: &str,
        audience: &[String],
        ttl_seconds: i64,
    ) -> Result<String> {
        let id = SpiffeId::parse(spiffe_id)?;
        let exp = crate::jwt::now_unix() + ttl_seconds;
        let claims = serde_json::json!({ "sub": id.to_string(), "aud": audience, "exp": exp, "iat": crate::jwt::now_unix() });
        self.domain(id.trust_domain().name(), |d| d.jwt_key().sign(&claims))?
    }

    /// Replaces the injected fault (`Fault::default()` clears it).
    pub fn set_fault(&self, fault: Fault) {
        self.inner.state().fault = fault;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.rotation.abort();
        lock(&self.inner.connections).cancel();
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
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
