//! The client against the embedded agent over a real Unix socket.

use spiffe_core::agent::{Agent, EntryConfig, Fault};
use spiffe_core::client::Client;
use spiffe_core::endpoint::Endpoint;
use spiffe_core::ErrorKind;
mod common;

use std::path::PathBuf;
use std::time::Duration;

fn socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spiffe-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.sock"))
}

async fn agent(name: &str, entries: &[(&str, &str)], intermediate: bool) -> Agent {
    let entries: Vec<_> = entries
        .iter()
        .map(|(id, hint)| format!(r#"{{"spiffe_id": "{id}", "hint": "{hint}"}}"#))
        .collect();
    let json = format!(
        r#"{{"trust_domain": "example.org", "socket_path": {:?}, "entries": [{}], "intermediate": {intermediate}}}"#,
        socket(name),
        entries.join(",")
    );
    Agent::start(Agent::config_from_json(&json).unwrap())
        .await
        .unwrap()
}

fn entry(id: &str) -> EntryConfig {
    serde_json::from_str(&format!(r#"{{"spiffe_id": "{id}"}}"#)).unwrap()
}

fn client(agent: &Agent) -> Client {
    Client::new(
        Endpoint::Unix(agent.socket_path().to_path_buf()),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test]
async fn fetches_x509_context_with_hints_and_chains() {
    let agent = agent(
        "x509",
        &[
            ("spiffe://example.org/a", "internal"),
            ("spiffe://example.org/b", "internal"),
            ("spiffe://example.org/c", ""),
        ],
        true,
    )
    .await;
    let ctx = client(&agent).fetch_x509_context().await.unwrap();
    let ids: Vec<String> = ctx.svids.iter().map(|s| s.spiffe_id.to_string()).collect();
    assert_eq!(
        ids,
        ["spiffe://example.org/a", "spiffe://example.org/c"],
        "duplicate hint dropped, first wins"
    );
    assert_eq!(ctx.svids[0].hint, "internal");
    assert_eq!(ctx.svids[0].cert_chain.len(), 2, "leaf + intermediate");
    let bundle = &ctx.bundles[agent.trust_domain()];
    assert_eq!(bundle.authorities, vec![agent.bundle_der()]);
    assert!(ctx.svids[0].expires_at > spiffe_core::jwt::now_unix() + 3000);
}

#[tokio::test]
async fn fetches_and_validates_jwt_svids() {
    let agent = agent("jwt", &[("spiffe://example.org/a", "")], false).await;
    let client = client(&agent);
    let svids = client
        .fetch_jwt_svids(vec!["api".into(), "extra".into()], None)
        .await
        .unwrap();
    assert_eq!(svids.len(), 1);
    assert_eq!(svids[0].audience, ["api", "extra"]);
    let again = client
        .fetch_jwt_svids(vec!["extra".into(), "api".into()], None)
        .await
        .unwrap();
    assert_eq!(
        again[0].token, svids[0].token,
        "agent caches per sorted audience"
    );
    let validated = client
        .validate_jwt_svid(svids[0].token.clone(), "api".into())
        .await
        .unwrap();
    assert_eq!(validated.spiffe_id.to_string(), "spiffe://example.org/a");
    let err = client
        .validate_jwt_svid(svids[0].token.clone(), "nope".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    assert!(
        err.message
            .contains("expected audience in [\"nope\"] (audience=[\"api\" \"extra\"])"),
        "{}",
        err.message
    );
    let bundles = client.fetch_jwt_bundles().await.unwrap();
    assert_eq!(bundles[agent.trust_domain()].authorities.len(), 1);
    let err = client.fetch_jwt_svids(vec![], None).await.unwrap_err();
    assert!(
        err.message.ends_with("audience must be specified"),
        "{}",
        err.message
    );
    let err = client
        .fetch_jwt_svids(vec!["a".into()], Some("spiffe://example.org/other".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoIdentityIssued);
}

#[tokio::test]
async fn maps_statuses_and_socket_problems() {
    let agent = agent("errors", &[], false).await;
    let client = client(&agent);
    let err = client.fetch_x509_context().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoIdentityIssued);
    assert!(err.message.contains("no identity issued"));

    agent.add_entry(&entry("spiffe://example.org/w")).unwrap();
    agent.set_fault(Fault {
        status: Some("unavailable".into()),
        message: "workload attestation failed".into(),
        ..Fault::default()
    });
    let err = client.fetch_x509_context().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(
        err.message.contains("workload attestation failed"),
        "{}",
        err.message
    );

    agent.set_fault(Fault {
        hang: true,
        ..Fault::default()
    });
    let quick = Client::new(
        Endpoint::Unix(agent.socket_path().to_path_buf()),
        Duration::from_millis(200),
    )
    .unwrap();
    assert_eq!(
        quick.fetch_x509_context().await.unwrap_err().kind,
        ErrorKind::Timeout
    );

    for (corrupt, kind) in [
        ("svid_der", ErrorKind::Svid),
        ("key_mismatch", ErrorKind::Svid),
        ("bundle_der", ErrorKind::Bundle),
        ("empty_svids", ErrorKind::Svid),
    ] {
        agent.set_fault(Fault {
            corrupt: Some(corrupt.into()),
            ..Fault::default()
        });
        let err = client.fetch_x509_context().await.unwrap_err();
        assert_eq!(err.kind, kind, "{corrupt}: {}", err.message);
    }
    agent.set_fault(Fault::default());
    assert!(
        client.fetch_x509_context().await.is_ok(),
        "client usable after errors"
    );

    let missing = Client::new(
        Endpoint::Unix(socket("nobody-here")),
        Duration::from_secs(1),
    )
    .unwrap();
    let err = missing.fetch_x509_context().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::SocketNotFound, "{}", err.message);
    assert!(err.message.contains("is the SPIRE agent running?"));

    let stale = socket("stale");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = Client::new(Endpoint::Unix(stale), Duration::from_secs(1))
        .unwrap()
        .fetch_x509_context()
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConnectionRefused, "{}", err.message);
}

#[tokio::test]
async fn streams_end_with_permission_denied_when_identity_goes() {
    use spiffe_core::proto::X509svidRequest;
    let agent = agent("stream", &[("spiffe://example.org/a", "")], false).await;
    let mut api = common::raw(&agent).await;
    let no_header = api.fetch_x509svid(X509svidRequest {}).await.unwrap_err();
    assert_eq!(no_header.code(), tonic::Code::InvalidArgument);
    assert_eq!(no_header.message(), "security header missing from request");

    let mut stream = api
        .fetch_x509svid(common::with_header(X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().svids.len(), 1);
    agent.add_entry(&entry("spiffe://example.org/b")).unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().svids.len(), 2);
    agent.remove_entry("spiffe://example.org/a");
    agent.remove_entry("spiffe://example.org/b");
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "no identity issued");
}
