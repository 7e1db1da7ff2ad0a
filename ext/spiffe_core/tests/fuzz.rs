//! Property-based fuzzing of every parser that takes agent or user input:
//! SPIFFE IDs and trust domains, endpoint addresses, concatenated DER,
//! X.509-SVIDs (chains and PKCS#8 keys), JWT-SVIDs, JWKS, SPIFFE bundles and
//! whole Workload API responses. Inputs are arbitrary bytes, the seed corpus
//! in `tests/corpus/`, and random mutations of valid values minted by the
//! embedded agent. Every parser must return `Ok` or `Err`, never panic, and
//! what parses must round-trip.
//!
//! Cases per target: `FUZZ_CASES` (default 1000, bounded for CI); e.g.
//! `FUZZ_CASES=200000 cargo test --release -p spiffe_core --test fuzz` for a long run.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use spiffe_core::agent::Agent;
use spiffe_core::bundle::{parse_jwt_bundle, parse_x509_bundle};
use spiffe_core::client::Client;
use spiffe_core::der::split_concatenated;
use spiffe_core::endpoint::Endpoint;
use spiffe_core::id::{SpiffeId, TrustDomain};
use spiffe_core::jwt::{self, Authority};
use spiffe_core::proto;
use spiffe_core::{spiffe_bundle, x509};
use std::sync::OnceLock;
use std::time::Duration;

fn runner() -> TestRunner {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Valid inputs from a real agent, to mutate.
struct Seeds {
    chain: Vec<u8>,
    key: Vec<u8>,
    bundle_der: Vec<u8>,
    token: String,
    jwks: String,
    spiffe_bundle: String,
    response: Vec<u8>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let dir = std::env::temp_dir().join(format!("spiffe-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let config = format!(
                r#"{{"trust_domain": "example.org", "socket_path": {:?}, "intermediate": true,
                    "entries": [{{"spiffe_id": "spiffe://example.org/fuzz"}}]}}"#,
                dir.join("agent.sock")
            );
            let agent = Agent::start(Agent::config_from_json(&config).unwrap())
                .await
                .unwrap();
            let (chain, key) = agent
                .mint_x509_svid("spiffe://example.org/fuzz", Duration::from_secs(3600))
                .unwrap();
            let token = agent
                .mint_jwt_svid("spiffe://example.org/fuzz", &["fuzz".to_owned()], 300)
                .unwrap();
            let jwks = agent.jwks();
            let bundle_der = agent.bundle_der();
            let td = TrustDomain::parse("example.org").unwrap();
            let spiffe_bundle = spiffe_bundle::SpiffeBundle {
                trust_domain: td.clone(),
                x509_authorities: x509::parse_certificates(&bundle_der).unwrap(),
                jwt_authorities: parse_jwt_bundle(td, jwks.as_bytes()).unwrap().authorities,
                sequence_number: Some(1),
                refresh_hint: Some(60),
            }
            .marshal()
            .unwrap();
            let response = proto::X509svidResponse {
                svids: vec![proto::X509svid {
                    spiffe_id: "spiffe://example.org/fuzz".into(),
                    x509_svid: chain.clone(),
                    x509_svid_key: key.clone(),
                    bundle: bundle_der.clone(),
                    hint: "h".into(),
                }],
                ..Default::default()
            }
            .encode_to_vec();
            let _ = std::fs::remove_dir_all(&dir);
            Seeds {
                chain,
                key,
                bundle_der,
                token,
                jwks,
                spiffe_bundle,
                response,
            }
        })
    })
}

fn corpus(name: &str) -> Vec<String> {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Random byte edits of a seed: flips, overwrites, insertions, deletions, truncation.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0u8..5, any::<prop::sample::Index>(), any::<u8>()), 1..6).prop_map(
        move |edits| {
            let mut bytes = seed.clone();
            for (op, at, byte) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] ^= 1 << (byte % 8),
                    1 => bytes[i] = byte,
                    2 => bytes.insert(i, byte),
                    3 => {
                        bytes.remove(i);
                    }
                    _ => bytes.truncate(i),
                }
            }
            bytes
        },
    )
}

/// Mutations of any corpus line, as text.
fn mutated_lines(lines: Vec<String>) -> impl Strategy<Value = String> {
    prop::sample::select(lines)
        .prop_flat_map(|line| mutated(line.into_bytes()))
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn check_id(input: &str) -> Result<(), proptest::test_runner::TestCaseError> {
    if let Ok(id) = SpiffeId::parse(input) {
        assert_eq!(id.to_string(), input, "an ID that parses prints as itself");
        assert!(input.len() <= 2048);
        assert_eq!(
            SpiffeId::from_path(id.trust_domain(), id.path()).unwrap(),
            id
        );
    }
    if let Ok(td) = TrustDomain::parse(input) {
        assert!(TrustDomain::parse(td.name()).is_ok());
    }
    Ok(())
}

#[test]
fn spiffe_ids() {
    let mut runner = runner();
    runner.run(&any::<String>(), |s| check_id(&s)).unwrap();
    runner
        .run(&mutated_lines(corpus("spiffe_ids.txt")), |s| check_id(&s))
        .unwrap();
    for line in corpus("spiffe_ids.txt") {
        check_id(&line).unwrap();
    }
}

#[test]
fn endpoint_addresses() {
    let mut runner = runner();
    let check = |s: String| {
        let _ = Endpoint::parse(&s);
        let _ = Endpoint::resolve(None, Some(&s));
        Ok(())
    };
    runner.run(&any::<String>(), check).unwrap();
    runner
        .run(&mutated_lines(corpus("endpoints.txt")), check)
        .unwrap();
}

#[test]
fn concatenated_der() {
    let mut runner = runner();
    let check = |bytes: Vec<u8>| {
        if let Some(items) = split_concatenated(&bytes) {
            assert_eq!(items.concat(), bytes, "the pieces are the input");
        }
        let _ = parse_x509_bundle(TrustDomain::parse("td").unwrap(), &bytes);
        Ok(())
    };
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..512), check)
        .unwrap();
    runner
        .run(&mutated(seeds().bundle_der.clone()), check)
        .unwrap();
    runner.run(&mutated(seeds().chain.clone()), check).unwrap();
}

#[test]
fn x509_svids_and_keys() {
    let seeds = seeds();
    assert!(
        x509::parse_svid(&seeds.chain, &seeds.key, "").is_ok(),
        "the seed itself is valid"
    );
    let mut runner = runner();
    runner
        .run(&mutated(seeds.chain.clone()), |chain| {
            let _ = x509::parse_svid(&chain, &seeds.key, "");
            Ok(())
        })
        .unwrap();
    runner
        .run(&mutated(seeds.key.clone()), |key| {
            let _ = x509::parse_svid(&seeds.chain, &key, "");
            Ok(())
        })
        .unwrap();
    runner
        .run(
            &(
                prop::collection::vec(any::<u8>(), 0..256),
                prop::collection::vec(any::<u8>(), 0..128),
            ),
            |(c, k)| {
                let _ = x509::parse_svid(&c, &k, "");
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn jwt_svids() {
    let seeds = seeds();
    let td = TrustDomain::parse("example.org").unwrap();
    let bundle = parse_jwt_bundle(td, seeds.jwks.as_bytes()).unwrap();
    let audience = vec!["fuzz".to_owned()];
    let now = jwt::now_unix();
    let validate = |token: &str| {
        jwt::parse_and_validate(
            token,
            &audience,
            |_, kid| match bundle.authorities.iter().find(|a| a.key_id == kid) {
                Some(a) => {
                    Authority::Key(openssl::pkey::PKey::public_key_from_der(&a.public_key).unwrap())
                }
                None => Authority::NoKey,
            },
            now,
        )
    };
    assert!(validate(&seeds.token).is_ok(), "the seed itself is valid");
    let check = |token: String| {
        let _ = jwt::peek(&token);
        let _ = jwt::parse_insecure(&token, &audience, "", now);
        let _ = validate(&token);
        Ok(())
    };
    let mut runner = runner();
    runner
        .run(
            &mutated(seeds.token.clone().into_bytes())
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            check,
        )
        .unwrap();
    runner.run(&"[A-Za-z0-9_.=-]{0,300}", check).unwrap();
}

#[test]
fn jwks_and_spiffe_bundles() {
    let seeds = seeds();
    let td = || TrustDomain::parse("example.org").unwrap();
    let check = |doc: Vec<u8>| {
        let _ = parse_jwt_bundle(td(), &doc);
        if let Ok(bundle) = spiffe_bundle::parse(td(), &doc) {
            let again = spiffe_bundle::parse(td(), bundle.marshal().unwrap().as_bytes()).unwrap();
            assert_eq!(again, bundle, "what parses round-trips");
        }
        Ok(())
    };
    let mut runner = runner();
    runner
        .run(&mutated(seeds.jwks.clone().into_bytes()), check)
        .unwrap();
    runner
        .run(&mutated(seeds.spiffe_bundle.clone().into_bytes()), check)
        .unwrap();
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..256), check)
        .unwrap();
}

#[test]
fn workload_api_responses() {
    let seeds = seeds();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let client = Client::new(
        Endpoint::parse("unix:///nonexistent").unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    let decoded = proto::X509svidResponse::decode(seeds.response.as_slice()).unwrap();
    assert!(
        client.parse_x509_context(&decoded).is_ok(),
        "the seed itself is valid"
    );
    let mut runner = runner();
    runner
        .run(&mutated(seeds.response.clone()), |bytes| {
            if let Ok(response) = proto::X509svidResponse::decode(bytes.as_slice()) {
                let _ = client.parse_x509_context(&response);
            }
            Ok(())
        })
        .unwrap();
}
