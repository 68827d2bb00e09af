//! Tracing, logs and metrics for Sandboxer.
//!
//! - `init_tracer` turns a `TelemetryConfig` (standard `OTEL_*` variables,
//!   overridable by the app) into the `Tracer` to inject: the core's
//!   `NoopTracer` when off, an `OtelTracer` exporting over OTLP when on.
//! - `MetricsTracer` wraps either and derives latency histograms and failure
//!   counts from the spans; `install_prometheus` gives the `/metrics` text.
//! - `init_logging` sets up stderr logs carrying the current trace and span
//!   ids.
//! - `testing` (feature) runs in-process OTLP receivers for tests.

mod config;
mod error;
mod logs;
pub mod metric;
mod otel;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{BatchSettings, DEFAULT_SERVICE_NAME, Protocol, SamplerConfig, TelemetryConfig};
pub use error::TelemetryError;
pub use logs::{LogFormat, env_filter, init_logging, log_subscriber};
pub use metric::{
    LocalMetrics, MetricsHandle, MetricsTracer, install_prometheus, set_active_sandboxes,
    set_hibernated_sandboxes, set_node, set_workspace_bytes,
};
pub use otel::{OtelTracer, TracerHandle, init_tracer};
