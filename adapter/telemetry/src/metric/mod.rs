//! Metrics: span-derived latency histograms and failure counters (`tracer`),
//! their names (`names`), and the Prometheus recorder the app's `/metrics`
//! route renders (`prometheus`).

pub mod names;
mod prometheus;
mod tracer;

pub use prometheus::{
    LocalMetrics, MetricsHandle, install_prometheus, set_active_sandboxes,
    set_hibernated_sandboxes, set_node, set_workspace_bytes,
};
pub use tracer::MetricsTracer;
