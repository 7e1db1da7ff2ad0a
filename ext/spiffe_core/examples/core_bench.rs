//! This crate's own client, without Ruby: the floor under the Ruby numbers.
//!   cargo run --release -p spiffe_core --example core_bench -- SOCKET ITERATIONS [multi]
//! With `multi`, calls are spawned on a runtime thread and awaited from this
//! one, as the Ruby bridge does (one cross-thread hop each way).

use spiffe_core::client::Client;
use spiffe_core::endpoint::Endpoint;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = Endpoint::parse(&format!("unix://{}", args[1])).unwrap();
    let iterations: usize = args[2].parse().unwrap();
    let hop = args.get(3).map(String::as_str) == Some("multi");
    let cold = args.get(3).map(String::as_str) == Some("cold");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = {
        let _guard = runtime.enter();
        std::sync::Arc::new(Client::new(endpoint, Duration::from_secs(5)).unwrap())
    };
    let mut samples = Vec::with_capacity(iterations);
    if hop {
        let handle = runtime.handle().clone();
        std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
        for i in 0..iterations + 200 {
            let c = client.clone();
            let start = Instant::now();
            let (tx, rx) = std::sync::mpsc::channel();
            handle.spawn(async move {
                let _ = tx.send(c.fetch_x509_context().await.map(|_| ()));
            });
            rx.recv().unwrap().unwrap();
            if i >= 200 {
                samples.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
    } else if cold {
        runtime.block_on(async {
            for i in 0..iterations + 20 {
                let start = Instant::now();
                let fresh = Client::new(client.endpoint().clone(), Duration::from_secs(5)).unwrap();
                fresh.fetch_x509_context().await.unwrap();
                if i >= 20 {
                    samples.push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
        });
    } else {
        runtime.block_on(async {
            for i in 0..iterations + 200 {
                let start = Instant::now();
                client.fetch_x509_context().await.unwrap();
                if i >= 200 {
                    samples.push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
        });
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"hop\": {hop}, \"p50_us\": {:.1}, \"p99_us\": {:.1}}}",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100]
    );
}
