//! Watching the Workload API: one task per stream that keeps it open,
//! reconnects with exponential backoff and jitter, parses every message and
//! publishes each *changed* snapshot, numbered, in a `watch` channel. Readers
//! pull (`Watcher::next`), so no callback ever runs on a runtime thread.

use crate::bundle::{JwtBundle, X509Bundle};
use crate::client::{Client, X509Context};
use crate::error::{Error, ErrorKind};
use crate::id::TrustDomain;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a watcher follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    X509Context,
    X509Bundles,
    JwtBundles,
}

/// A parsed update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    X509Context(X509Context),
    X509Bundles(BTreeMap<TrustDomain, X509Bundle>),
    JwtBundles(BTreeMap<TrustDomain, JwtBundle>),
}

/// Reconnect policy: `initial * multiplier^n`, capped at `max`, each wait
/// drawn from ±`jitter` around it; reset after every received message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.initial.as_secs_f64()
            * self
                .multiplier
                .max(1.0)
                .powi(attempt.saturating_sub(1).min(64) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * random_unit() - 1.0);
        Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0))
    }
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The state a watcher publishes.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Bumped on every change of this state (payload, error, connection).
    pub version: u64,
    /// Bumped on each new payload.
    pub seq: u64,
    /// The last good payload (kept while reconnecting).
    pub payload: Option<Arc<Payload>>,
    /// The last error, cleared by the next good message.
    pub last_error: Option<Error>,
    /// Errors so far (each failed attempt or bad message counts once).
    pub errors: u64,
    /// An error that ended the watch (InvalidArgument, Canceled, closed).
    pub terminal: Option<Error>,
    /// Whether a stream is open and has delivered since it opened.
    pub connected: bool,
    /// Reconnections so far.
    pub reconnects: u64,
}

/// A running watch. Dropping it stops the task.
pub struct Watcher {
    state: watch::Receiver<State>,
    cancel: CancellationToken,
}

/// What a reader gets from [`Watcher::next`].
pub enum Next {
    Update(State),
    TimedOut,
}

impl Watcher {
    /// Starts watching. Must run inside a tokio runtime.
    pub fn start(client: Arc<Client>, kind: Kind, backoff: Backoff) -> Self {
        let (tx, rx) = watch::channel(State::default());
        let cancel = CancellationToken::new();
        tokio::spawn(run(client, kind, backoff, tx, cancel.clone()));
        Self { state: rx, cancel }
    }

    /// The current state, without waiting.
    pub fn current(&self) -> State {
        self.state.borrow().clone()
    }

    /// Waits until the state is newer than version `after` (a new payload,
    /// an error, a reconnection), or `timeout` passed.
    pub fn next(
        &self,
        after: u64,
        timeout: Option<Duration>,
    ) -> impl std::future::Future<Output = Next> + Send + 'static {
        let mut rx = self.state.clone();
        async move {
            let deadline = timeout.map(|t| Instant::now() + t);
            loop {
                {
                    let state = rx.borrow_and_update();
                    if state.version > after || state.terminal.is_some() {
                        return Next::Update(state.clone());
                    }
                }
                let changed = rx.changed();
                let outcome = match deadline {
                    Some(deadline) => match tokio::time::timeout_at(deadline.into(), changed).await
                    {
                        Ok(outcome) => outcome,
                        Err(_) => return Next::TimedOut,
                    },
                    None => changed.await,
                };
                if outcome.is_err() {
                    let mut state = rx.borrow().clone();
                    state.terminal.get_or_insert_with(closed_error);
                    return Next::Update(state);
                }
            }
        }
    }

    /// Stops the watch; readers get a terminal `Closed` error.
    pub fn close(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn closed_error() -> Error {
    Error::new(ErrorKind::Closed, "the watch was closed")
}

/// go-spiffe stops watching on these; everything else is retried.
fn is_terminal(error: &Error) -> bool {
    matches!(
        error.kind,
        ErrorKind::InvalidArgument
            | ErrorKind::Canceled
            | ErrorKind::Configuration
            | ErrorKind::Closed
    )
}

async fn run(
    client: Arc<Client>,
    kind: Kind,
    backoff: Backoff,
    tx: watch::Sender<State>,
    cancel: CancellationToken,
) {
    let mut attempt: u32 = 0;
    loop {
        let opened = tokio::select! {
            _ = cancel.cancelled() => break,
            opened = client.open_stream(kind) => opened,
        };
        let error = match opened {
            Err(error) => error,
            Ok(mut stream) => loop {
                let message = tokio::select! {
                    _ = cancel.cancelled() => { finish(&tx); return; }
                    message = stream.next() => message,
                };
                match message {
                    Ok(Some(payload)) => {
                        attempt = 0;
                        publish(&tx, payload);
                    }
                    // A message that does not parse: report it, keep the last
                    // good state and keep reading the same stream (go-spiffe).
                    Err(error)
                        if matches!(
                            error.kind,
                            ErrorKind::Svid | ErrorKind::Bundle | ErrorKind::Jwt
                        ) =>
                    {
                        tx.send_modify(|s| {
                            s.last_error = Some(error);
                            s.errors += 1;
                            s.version += 1;
                        });
                    }
                    Err(error) => break error,
                    Ok(None) => {
                        break Error::new(ErrorKind::Unavailable, "the agent ended the stream")
                            .with_code(tonic::Code::Unavailable)
                    }
                }
            },
        };
        let terminal = is_terminal(&error);
        tx.send_modify(|s| {
            s.version += 1;
            s.errors += 1;
            s.connected = false;
            s.last_error = Some(error.clone());
            if terminal {
                s.terminal = Some(error.clone());
            }
        });
        if terminal {
            return;
        }
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(backoff.delay(attempt)) => {}
        }
        tx.send_modify(|s| {
            s.reconnects += 1;
            s.version += 1;
        });
    }
    finish(&tx);
}

fn finish(tx: &watch::Sender<State>) {
    tx.send_modify(|s| {
        s.version += 1;
        s.connected = false;
        s.terminal.get_or_insert_with(closed_error);
    });
}

/// Publishes a payload if it differs from the last one (unchanged updates
/// do not wake readers).
fn publish(tx: &watch::Sender<State>, payload: Payload) {
    tx.send_if_modified(|s| {
        let was_connected = std::mem::replace(&mut s.connected, true);
        let had_error = s.last_error.take().is_some();
        if s.payload.as_deref() == Some(&payload) {
            let changed = !was_connected || had_error;
            s.version += changed as u64;
            return changed;
        }
        s.payload = Some(Arc::new(payload));
        s.seq += 1;
        s.version += 1;
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.0,
        };
        let delays: Vec<u128> = (1..=6).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        let jittered = Backoff { jitter: 0.2, ..b };
        for _ in 0..100 {
            let d = jittered.delay(2).as_millis();
            assert!((160..=240).contains(&d), "{d}");
        }
    }

    #[test]
    fn terminal_errors_are_the_non_retriable_ones() {
        assert!(is_terminal(&Error::new(ErrorKind::InvalidArgument, "x")));
        assert!(!is_terminal(&Error::new(ErrorKind::NoIdentityIssued, "x")));
        assert!(!is_terminal(&Error::new(ErrorKind::SocketNotFound, "x")));
        assert!(!is_terminal(&Error::new(ErrorKind::PermissionDenied, "x")));
    }
}
