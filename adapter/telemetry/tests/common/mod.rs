//! Shared by the integration tests: configs pointing at a receiver, and
//! receivers that misbehave.

use std::time::Duration;

use sandboxer_telemetry::{Protocol, TelemetryConfig};

#[allow(dead_code)] // otel_export and unreachable; off needs no wait
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
