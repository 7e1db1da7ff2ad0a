//! Helpers shared by the integration tests: a raw gRPC client of the agent
//! (to see exactly what it sends) and stream reading with a deadline.
#![allow(dead_code)]

use spiffe_core::agent::Agent;
use spiffe_core::proto::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use std::time::Duration;
use tonic::transport::Channel;

/// A generated client on the agent's socket, with no header added.
pub async fn raw(agent: &Agent) -> SpiffeWorkloadApiClient<Channel> {
    let path = agent.socket_path().to_path_buf();
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap();
    SpiffeWorkloadApiClient::new(channel)
}

/// A request carrying the security header.
pub fn with_header<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

/// The stream's next message, failing the test after 3 s.
pub async fn next_message<T>(stream: &mut tonic::Streaming<T>) -> T {
    tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .expect("no message within 3 s")
        .expect("stream failed")
        .expect("stream ended")
}
