//! The official Rust client (crate `spiffe`) against the embedded agent: it
//! must accept everything the agent sends.

use spiffe::{SpiffeId, WorkloadApiClient};
use spiffe_core::agent::Agent;
use std::time::Duration;
use tokio_stream::StreamExt;

async fn agent(name: &str, selectors: Vec<String>, ttl: f64) -> Agent {
    let dir = std::env::temp_dir().join(format!("spiffe-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = serde_json::json!({
        "trust_domain": "example.org",
        "socket_path": dir.join(format!("{name}.sock")),
        "x509_svid_ttl": ttl,
        "intermediate": true,
        "entries": [{"spiffe_id": "spiffe://example.org/rust", "selectors": selectors, "hint": "rs"}],
    });
    Agent::start(Agent::config_from_json(&config.to_string()).unwrap())
        .await
        .unwrap()
}

fn address(agent: &Agent) -> String {
    format!("unix://{}", agent.socket_path().display())
}

#[tokio::test]
async fn rust_spiffe_fetches_svids_and_bundles() {
    let uid = unsafe { libc::getuid() };
    let agent = agent("fetch", vec![format!("unix:uid:{uid}")], 3600.0).await;
    let client = WorkloadApiClient::connect_to(address(&agent))
        .await
        .unwrap();
    let svid = client.fetch_x509_svid().await.unwrap();
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/rust");
    assert_eq!(svid.cert_chain().len(), 2);
    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert!(bundles.get(&"example.org".parse().unwrap()).is_some());
    let jwt = client.fetch_jwt_svid(["api"], None).await.unwrap();
    assert_eq!(jwt.spiffe_id().to_string(), "spiffe://example.org/rust");
    let jwt_bundles = client.fetch_jwt_bundles().await.unwrap();
    assert!(jwt_bundles.get(&"example.org".parse().unwrap()).is_some());
    let validated = client.validate_jwt_token("api", jwt.token()).await.unwrap();
    assert_eq!(
        validated.spiffe_id().to_string(),
        "spiffe://example.org/rust"
    );
    let id: SpiffeId = "spiffe://example.org/rust".parse().unwrap();
    assert!(client.fetch_jwt_svid(["api"], Some(&id)).await.is_ok());
}

#[tokio::test]
async fn rust_spiffe_streams_rotations() {
    let agent = agent("stream", vec![], 1.0).await;
    let client = WorkloadApiClient::connect_to(address(&agent))
        .await
        .unwrap();
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let mut leaves = Vec::new();
    while leaves.len() < 3 {
        let ctx = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        leaves.push(ctx.default_svid().unwrap().leaf().to_owned());
    }
    assert_ne!(leaves[0], leaves[1]);
    assert_ne!(leaves[1], leaves[2]);
}

#[tokio::test]
async fn rust_spiffe_sees_permission_denied_when_unregistered() {
    let agent = agent("denied", vec!["unix:uid:4242424".into()], 3600.0).await;
    let client = WorkloadApiClient::connect_to(address(&agent))
        .await
        .unwrap();
    let err = client.fetch_x509_svid().await.unwrap_err();
    assert!(
        matches!(err, spiffe::WorkloadApiError::NoIdentityIssued),
        "{err:?}"
    );
}
