//! Watchers against the embedded agent: rotations, restarts, termination.

use spiffe_core::agent::Agent;
use spiffe_core::client::Client;
use spiffe_core::endpoint::Endpoint;
use spiffe_core::watch::{Backoff, Kind, Next, Payload, Watcher};
use spiffe_core::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

async fn agent(name: &str) -> Agent {
    let dir = std::env::temp_dir().join(format!("spiffe-watch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "trust_domain": "example.org",
        "socket_path": dir.join(format!("{name}.sock")),
        "rotation": false,
        "entries": [{"spiffe_id": "spiffe://example.org/w"}],
    });
    Agent::start(Agent::config_from_json(&config.to_string()).unwrap())
        .await
        .unwrap()
}

fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
        multiplier: 2.0,
        jitter: 0.1,
    }
}

fn watcher(agent: &Agent, kind: Kind) -> Watcher {
    let client = Arc::new(
        Client::new(
            Endpoint::Unix(agent.socket_path().to_path_buf()),
            Duration::from_secs(2),
        )
        .unwrap(),
    );
    Watcher::start(client, kind, fast())
}

fn leaf(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::X509Context(ctx) => ctx.svids[0].cert_chain[0].clone(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The next state with a payload newer than `after_seq`.
async fn next(w: &Watcher, after_seq: u64) -> spiffe_core::watch::State {
    let current = w.current();
    if current.seq > after_seq || current.terminal.is_some() {
        return current;
    }
    let mut version = current.version;
    loop {
        match w.next(version, Some(Duration::from_secs(5))).await {
            Next::Update(state) if state.seq > after_seq || state.terminal.is_some() => {
                return state
            }
            Next::Update(state) => version = state.version,
            Next::TimedOut => panic!("no update within 5 s"),
        }
    }
}

#[tokio::test]
async fn delivers_every_rotation_once() {
    let agent = agent("rotations").await;
    let w = watcher(&agent, Kind::X509Context);
    let mut state = next(&w, 0).await;
    let mut leaves = vec![leaf(state.payload.as_ref().unwrap())];
    for _ in 0..10 {
        agent.rotate().unwrap();
        state = next(&w, state.seq).await;
        leaves.push(leaf(state.payload.as_ref().unwrap()));
    }
    leaves.dedup();
    assert_eq!(leaves.len(), 11, "each rotation seen, none twice");
    assert!(
        matches!(
            w.next(state.version, Some(Duration::from_millis(200)))
                .await,
            Next::TimedOut
        ),
        "nothing unchanged re-delivered"
    );
}

#[tokio::test]
async fn keeps_the_last_snapshot_and_recovers_after_restarts() {
    let mut agent = agent("restarts").await;
    let w = watcher(&agent, Kind::X509Context);
    let mut state = next(&w, 0).await;
    for _ in 0..5 {
        agent.stop().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let during = w.current();
        assert!(
            during.payload.is_some(),
            "last good snapshot kept while disconnected"
        );
        agent.restart().await.unwrap();
        agent.rotate().unwrap();
        state = next(&w, state.seq).await;
        assert!(state.connected);
    }
    assert!(state.reconnects >= 5, "{}", state.reconnects);
}

#[tokio::test]
async fn watches_bundles_and_ends_when_closed() {
    let agent = agent("bundles").await;
    let x509 = watcher(&agent, Kind::X509Bundles);
    let jwt = watcher(&agent, Kind::JwtBundles);
    let first = next(&x509, 0).await;
    assert!(matches!(first.payload.as_deref(), Some(Payload::X509Bundles(b)) if b.len() == 1));
    let jwt_first = next(&jwt, 0).await;
    agent.rotate_jwt_key().unwrap();
    let jwt_second = next(&jwt, jwt_first.seq).await;
    assert!(
        matches!(jwt_second.payload.as_deref(), Some(Payload::JwtBundles(b)) if b.values().next().unwrap().authorities.len() == 2)
    );
    x509.close();
    let ended = next(&x509, first.seq).await;
    assert_eq!(ended.terminal.unwrap().kind, ErrorKind::Closed);
}

#[tokio::test]
async fn keeps_retrying_when_no_identity_is_issued() {
    let agent = agent("no-identity").await;
    agent.remove_entry("spiffe://example.org/w");
    let w = watcher(&agent, Kind::X509Context);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = w.current();
    assert_eq!(
        waiting.last_error.as_ref().unwrap().kind,
        ErrorKind::NoIdentityIssued
    );
    assert!(waiting.terminal.is_none());
    assert!(
        waiting.reconnects >= 1 && waiting.reconnects < 20,
        "backs off: {}",
        waiting.reconnects
    );
    agent
        .add_entry(&serde_json::from_str(r#"{"spiffe_id": "spiffe://example.org/late"}"#).unwrap())
        .unwrap();
    let state = next(&w, 0).await;
    assert!(state.last_error.is_none());
}
