//! The Prometheus recorder. It opens no listener of its own: the app's
//! `/metrics` route calls `MetricsHandle::render`.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use super::names::{self, Kind};
use crate::TelemetryError;

/// Renders the current metrics in the Prometheus text format.
#[derive(Clone, Debug)]
pub struct MetricsHandle {
    inner: PrometheusHandle,
}

impl MetricsHandle {
    pub fn render(&self) -> String {
        self.inner.render()
    }
}

/// Installs the process-wide recorder: every `MetricsTracer`,
/// `set_active_sandboxes` and `set_hibernated_sandboxes` then report to
/// it. A background thread keeps the histograms drained between scrapes.
///
/// # Errors
/// `Metrics` when a recorder is already installed in this process.
pub fn install_prometheus() -> Result<MetricsHandle, TelemetryError> {
    let recorder = builder().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    describe();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("sandboxer-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        })
        .map_err(|e| TelemetryError::Metrics(format!("could not start the upkeep thread: {e}")))?;
    Ok(MetricsHandle { inner: handle })
}

/// A recorder that is not installed globally: metrics recorded inside
/// `in_scope` land here. For tests, which share one process.
pub struct LocalMetrics {
    recorder: PrometheusRecorder,
}

impl Default for LocalMetrics {
    fn default() -> Self {
        let metrics = Self {
            recorder: builder().build_recorder(),
        };
        metrics.in_scope(describe);
        metrics
    }
}

impl LocalMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn handle(&self) -> MetricsHandle {
        MetricsHandle {
            inner: self.recorder.handle(),
        }
    }

    /// Runs `f` with this recorder as the thread's recorder.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }
}

/// Sets `sandboxer_active_sandboxes`.
pub fn set_active_sandboxes(count: usize) {
    // Precision loss only past 2^53 sandboxes.
    #[allow(clippy::cast_precision_loss)]
    gauge!(names::ACTIVE_SANDBOXES).set(count as f64);
}

/// Sets `sandboxer_sandboxes_hibernated`.
pub fn set_hibernated_sandboxes(count: usize) {
    #[allow(clippy::cast_precision_loss)]
    gauge!(names::HIBERNATED_SANDBOXES).set(count as f64);
}

/// The bytes the workspaces hold (the app measures after each cleanup).
pub fn set_workspace_bytes(bytes: u64) {
    #[allow(clippy::cast_precision_loss)]
    gauge!(names::WORKSPACE_BYTES).set(bytes as f64);
}

/// One Docker node's gauges (the app sets them every few seconds).
#[allow(clippy::cast_precision_loss)]
pub fn set_node(
    node: &str,
    up: bool,
    sandboxes: u64,
    capacity: u64,
    memory: u64,
    capacity_memory: u64,
) {
    let label = [(names::label::NODE, node.to_owned())];
    gauge!(names::NODE_UP, &label).set(if up { 1.0 } else { 0.0 });
    gauge!(names::NODE_SANDBOXES, &label).set(sandboxes as f64);
    gauge!(names::NODE_CAPACITY_SANDBOXES, &label).set(capacity as f64);
    gauge!(names::NODE_MEMORY_BYTES, &label).set(memory as f64);
    gauge!(names::NODE_CAPACITY_MEMORY_BYTES, &label).set(capacity_memory as f64);
}

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".into()),
            names::DURATION_BUCKETS,
        )
        .expect("the bucket list is a non-empty constant")
}

fn describe() {
    for &(name, kind, help) in names::ALL {
        match kind {
            Kind::Histogram => describe_histogram!(name, Unit::Seconds, help),
            Kind::Counter => describe_counter!(name, help),
            Kind::Gauge => describe_gauge!(name, help),
        }
    }
}
