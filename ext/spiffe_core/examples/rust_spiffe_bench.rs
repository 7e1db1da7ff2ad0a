//! The official Rust client (crate `spiffe`) timed against a Workload API,
//! for `rake bench`'s side-by-side table. Prints JSON.
//!   cargo run --release -p spiffe_core --example rust_spiffe_bench -- SOCKET ITERATIONS

use spiffe::WorkloadApiClient;
use std::time::Instant;

fn percentiles(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    serde_json::json!({
        "p50_us": (at(0.50) * 10.0).round() / 10.0,
        "p99_us": (at(0.99) * 10.0).round() / 10.0,
        "max_us": (at(1.0) * 10.0).round() / 10.0,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let address = format!("unix://{}", args[1]);
    let iterations: usize = args[2].parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = WorkloadApiClient::connect_to(address.clone())
            .await
            .unwrap();
        for _ in 0..200 {
            client.fetch_x509_svid().await.unwrap();
            client.fetch_jwt_svid(["bench"], None).await.unwrap();
        }
        let mut x509 = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            client.fetch_x509_svid().await.unwrap();
            x509.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let mut jwt = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            client.fetch_jwt_svid(["bench"], None).await.unwrap();
            jwt.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let mut cold = Vec::with_capacity(200);
        for _ in 0..200 {
            let start = Instant::now();
            let fresh = WorkloadApiClient::connect_to(address.clone())
                .await
                .unwrap();
            fresh.fetch_x509_svid().await.unwrap();
            cold.push(start.elapsed().as_secs_f64() * 1e6);
        }
        let result = serde_json::json!({
            "client": "rust spiffe crate 0.19",
            "x509_svid": percentiles(x509),
            "jwt_svid": percentiles(jwt),
            "cold_client_x509_svid": percentiles(cold),
        });
        println!("{result}");
    });
}
