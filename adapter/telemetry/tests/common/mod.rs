//! Shared by the integration tests: configs pointing at a receiver, and
//! receivers that misbehave.

#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use sandboxer_telemetry::{Protocol, TelemetryConfig};
use tokio::net::TcpListener;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Tracing on, exporting to `endpoint` with `protocol`.
pub fn config(endpoint: &str, protocol: Protocol) -> TelemetryConfig {
    TelemetryConfig {
        enabled: true,
        endpoint: Some(endpoint.to_owned()),
        protocol,
        ..TelemetryConfig::default()
    }
}

/// An endpoint where nothing listens (a port just released).
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// An endpoint that accepts connections and never answers on them.
pub async fn blackhole_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}
