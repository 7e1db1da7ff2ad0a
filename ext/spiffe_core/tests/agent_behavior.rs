//! The embedded agent's SPIRE behaviors: attestation by selectors, rotation,
//! federation, restarts.

use spiffe_core::agent::Agent;
use spiffe_core::client::Client;
use spiffe_core::endpoint::Endpoint;
use spiffe_core::proto::{X509BundlesRequest, X509svidRequest, X509svidResponse};
use spiffe_core::ErrorKind;
mod common;

use common::{next_message, raw, with_header};
use std::path::PathBuf;
use std::time::Duration;

fn socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spiffe-agent-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.sock"))
}

async fn agent(name: &str, config: serde_json::Value) -> Agent {
    let mut config = config;
    config["socket_path"] = serde_json::json!(socket(name));
    if config.get("trust_domain").is_none() {
        config["trust_domain"] = serde_json::json!("example.org");
    }
    Agent::start(Agent::config_from_json(&config.to_string()).unwrap())
        .await
        .unwrap()
}

fn client(agent: &Agent) -> Client {
    Client::new(
        Endpoint::Unix(agent.socket_path().to_path_buf()),
        Duration::from_secs(5),
    )
    .unwrap()
}

fn uid() -> u32 {
    unsafe { libc::getuid() }
}

fn leaf(response: &X509svidResponse) -> Vec<u8> {
    response.svids[0].x509_svid.clone()
}

#[tokio::test]
async fn issues_identities_by_selectors() {
    let exe = std::env::current_exe().unwrap();
    let agent = agent(
        "selectors",
        serde_json::json!({"entries": [
            {"spiffe_id": "spiffe://example.org/by-uid", "selectors": [format!("unix:uid:{}", uid())], "entry_id": "a"},
            {"spiffe_id": "spiffe://example.org/by-path", "selectors": [format!("unix:path:{}", exe.display())], "entry_id": "b"},
            {"spiffe_id": "spiffe://example.org/both", "selectors": [format!("unix:uid:{}", uid()), "unix:gid:4242424"], "entry_id": "c"},
            {"spiffe_id": "spiffe://example.org/other-user", "selectors": ["unix:uid:4242424"], "entry_id": "d"},
        ]}),
    )
    .await;
    let ctx = client(&agent).fetch_x509_context().await.unwrap();
    let ids: Vec<String> = ctx.svids.iter().map(|s| s.spiffe_id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "spiffe://example.org/by-uid",
            "spiffe://example.org/by-path"
        ]
    );
    assert_eq!(
        agent.peer_pids().first(),
        Some(&(std::process::id() as i32))
    );

    let nobody = self::agent("nobody", serde_json::json!({"entries": [{"spiffe_id": "spiffe://example.org/x", "selectors": ["unix:uid:4242424"]}]})).await;
    let err = client(&nobody).fetch_x509_context().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoIdentityIssued);
    assert_eq!(
        client(&nobody).fetch_jwt_bundles().await.unwrap_err().kind,
        ErrorKind::NoIdentityIssued
    );
    // ValidateJWTSVID needs no identity.
    let token = nobody
        .mint_jwt_svid("spiffe://example.org/x", &["a".into()], 60)
        .unwrap();
    assert!(client(&nobody)
        .validate_jwt_svid(token, "a".into())
        .await
        .is_ok());
}

#[tokio::test]
async fn rotates_svids_at_half_life_and_streams_each_rotation() {
    let agent = agent("rotation", serde_json::json!({"entries": [{"spiffe_id": "spiffe://example.org/w"}], "x509_svid_ttl": 1.0})).await;
    let mut api = raw(&agent).await;
    let mut stream = api
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let first = leaf(&stream.message().await.unwrap().unwrap());
    let second = leaf(&next_message(&mut stream).await);
    let third = leaf(&next_message(&mut stream).await);
    assert_ne!(first, second);
    assert_ne!(second, third);
    agent.rotate().unwrap();
    let fourth = leaf(&next_message(&mut stream).await);
    assert_ne!(third, fourth);
}

#[tokio::test]
async fn rotates_the_ca_with_an_overlap() {
    let agent = agent(
        "ca",
        serde_json::json!({"entries": [{"spiffe_id": "spiffe://example.org/w"}]}),
    )
    .await;
    let client = client(&agent);
    let before = client.fetch_x509_context().await.unwrap();
    let mut api = raw(&agent).await;
    let mut bundles = api
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    bundles.message().await.unwrap().unwrap();
    agent.rotate_ca().unwrap();
    let update = next_message(&mut bundles).await;
    let roots = spiffe_core::der::split_concatenated(&update.bundles["spiffe://example.org"])
        .unwrap()
        .len();
    assert_eq!(roots, 2, "old and new root during the overlap");
    let after = client.fetch_x509_context().await.unwrap();
    assert_ne!(before.svids[0].cert_chain, after.svids[0].cert_chain);
    assert_eq!(after.bundles[agent.trust_domain()].authorities.len(), 2);
    assert_eq!(
        after.bundles[agent.trust_domain()].authorities[1],
        before.bundles[agent.trust_domain()].authorities[0]
    );
}

#[tokio::test]
async fn rotates_the_jwt_key_keeping_both_in_the_jwks() {
    let agent = agent(
        "jwtkey",
        serde_json::json!({"entries": [{"spiffe_id": "spiffe://example.org/w"}]}),
    )
    .await;
    let client = client(&agent);
    let old = client
        .fetch_jwt_svids(vec!["a".into()], None)
        .await
        .unwrap()
        .remove(0);
    agent.rotate_jwt_key().unwrap();
    let new = client
        .fetch_jwt_svids(vec!["a".into()], None)
        .await
        .unwrap()
        .remove(0);
    assert_ne!(old.token, new.token, "cache dropped, new key");
    assert_eq!(
        client.fetch_jwt_bundles().await.unwrap()[agent.trust_domain()]
            .authorities
            .len(),
        2
    );
    for token in [old.token, new.token] {
        assert!(client.validate_jwt_svid(token, "a".into()).await.is_ok());
    }
}

#[tokio::test]
async fn serves_federated_bundles_to_entries_that_federate() {
    let agent = agent(
        "federation",
        serde_json::json!({
            "federated_trust_domains": ["other.org", "third.org"],
            "entries": [{"spiffe_id": "spiffe://example.org/w", "federates_with": ["other.org"]}]
        }),
    )
    .await;
    let client = client(&agent);
    let ctx = client.fetch_x509_context().await.unwrap();
    let names: Vec<&str> = ctx.bundles.keys().map(|td| td.name()).collect();
    assert_eq!(
        names,
        ["example.org", "other.org"],
        "only what the entry federates with"
    );
    let x509: Vec<String> = client
        .fetch_x509_bundles()
        .await
        .unwrap()
        .keys()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(x509, ["example.org", "other.org"]);
    let jwt: Vec<String> = client
        .fetch_jwt_bundles()
        .await
        .unwrap()
        .keys()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(
        jwt,
        ["example.org", "other.org", "third.org"],
        "JWT bundles for all"
    );

    let foreign = agent
        .mint_jwt_svid("spiffe://other.org/peer", &["a".into()], 60)
        .unwrap();
    let validated = client.validate_jwt_svid(foreign, "a".into()).await.unwrap();
    assert_eq!(validated.spiffe_id.to_string(), "spiffe://other.org/peer");
    let third = agent
        .mint_jwt_svid("spiffe://third.org/peer", &["a".into()], 60)
        .unwrap();
    let err = client
        .validate_jwt_svid(third, "a".into())
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("no keys found for trust domain \"third.org\""),
        "{}",
        err.message
    );
    let bad = serde_json::json!({"trust_domain": "example.org", "socket_path": socket("bad-fed"), "entries": [{"spiffe_id": "spiffe://example.org/w", "federates_with": ["nope.org"]}]});
    assert!(
        Agent::start(Agent::config_from_json(&bad.to_string()).unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn drops_connections_and_restarts_on_the_same_socket() {
    let mut agent = agent(
        "restart",
        serde_json::json!({"entries": [{"spiffe_id": "spiffe://example.org/w"}]}),
    )
    .await;
    let mut api = raw(&agent).await;
    let mut stream = api
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    agent.drop_connections();
    let broken = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .unwrap();
    assert!(broken.is_err(), "the stream breaks mid-way: {broken:?}");
    let client = client(&agent);
    let before = client.fetch_x509_context().await.unwrap();

    agent.stop().await;
    assert!(!agent.socket_path().exists());
    assert_eq!(
        client.fetch_x509_context().await.unwrap_err().kind,
        ErrorKind::SocketNotFound
    );
    agent.restart().await.unwrap();
    let after = client.fetch_x509_context().await.unwrap();
    assert_eq!(before, after, "same CA and SVIDs after a restart");
}

#[tokio::test]
async fn dedupes_hints_keeping_the_oldest_entry() {
    let agent = agent(
        "hints",
        serde_json::json!({"entries": [
            {"spiffe_id": "spiffe://example.org/old", "hint": "h", "entry_id": "z"},
            {"spiffe_id": "spiffe://example.org/new", "hint": "h", "entry_id": "a"},
            {"spiffe_id": "spiffe://example.org/plain", "entry_id": "m"},
        ]}),
    )
    .await;
    let ids: Vec<String> = client(&agent)
        .fetch_x509_context()
        .await
        .unwrap()
        .svids
        .iter()
        .map(|s| s.spiffe_id.to_string())
        .collect();
    assert_eq!(
        ids,
        ["spiffe://example.org/plain", "spiffe://example.org/old"],
        "ordered by entry ID; the older 'h' wins"
    );
}

#[tokio::test]
async fn coalesces_updates_for_slow_readers_and_dedupes_bundle_streams() {
    let agent = agent("coalesce", serde_json::json!({"entries": [{"spiffe_id": "spiffe://example.org/w"}], "rotation": false})).await;
    let mut api = raw(&agent).await;
    let mut svids = api
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    let mut bundles = api
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await
        .unwrap()
        .into_inner();
    svids.message().await.unwrap().unwrap();
    bundles.message().await.unwrap().unwrap();
    for _ in 0..30 {
        agent.rotate().unwrap();
    }
    let latest = client(&agent).fetch_x509_context().await.unwrap().svids[0]
        .cert_chain
        .concat();
    // A slow reader gets at most a couple of queued snapshots, the last being the latest state.
    let mut received = Vec::new();
    while let Ok(Some(Ok(Some(message)))) =
        tokio::time::timeout(Duration::from_millis(300), svids.message())
            .await
            .map(Some)
    {
        received.push(leaf(&message));
    }
    assert!(
        !received.is_empty() && received.len() <= 3,
        "got {} messages for 30 rotations",
        received.len()
    );
    assert_eq!(received.last().unwrap(), &latest);
    // SVID rotations do not change bundles: the bundle stream stays quiet.
    let quiet = tokio::time::timeout(Duration::from_millis(300), bundles.message()).await;
    assert!(
        quiet.is_err(),
        "bundle stream sent an unchanged bundle: {quiet:?}"
    );
}
