//! `OtlpCollector`: the receivers' shared store, and the waits tests use
//! (bounded; they panic with what did arrive when time runs out).

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::{Notify, oneshot};

use super::span::CollectedSpan;
use super::{grpc, http};

/// An OTLP receiver on `127.0.0.1`, stopped when dropped. Start it inside
/// the Tokio runtime the test runs on.
pub struct OtlpCollector {
    endpoint: String,
    received: Arc<Received>,
    _stop: oneshot::Sender<()>,
}

/// What the receivers saw. Connections are counted as accepted, so a test
/// can tell "nothing was dialled" from "nothing was sent".
#[derive(Default)]
pub(crate) struct Received {
    spans: Mutex<Vec<CollectedSpan>>,
    span_count: AtomicUsize,
    count_only: AtomicBool,
    requests: AtomicUsize,
    connections: AtomicUsize,
    changed: Notify,
}

impl Received {
    pub(crate) fn record(&self, request: &ExportTraceServiceRequest) {
        let spans = CollectedSpan::from_request(request);
        self.span_count.fetch_add(spans.len(), Ordering::SeqCst);
        if !self.count_only.load(Ordering::SeqCst) {
            self.spans.lock().unwrap().extend(spans);
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::SeqCst);
    }
}

impl OtlpCollector {
    /// An OTLP/gRPC receiver (`TraceService/Export`).
    ///
    /// # Panics
    /// When no port can be bound on 127.0.0.1.
    pub async fn start_grpc() -> Self {
        Self::start(grpc::serve).await
    }

    /// An OTLP/HTTP receiver taking protobuf at `/v1/traces` (other
    /// content types get 415).
    ///
    /// # Panics
    /// When no port can be bound on 127.0.0.1.
    pub async fn start_http() -> Self {
        Self::start(http::serve).await
    }

    async fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(Arc<Received>, oneshot::Receiver<()>) -> Fut,
        Fut: Future<Output = std::net::SocketAddr>,
    {
        let received = Arc::new(Received::default());
        let (stop, stopped) = oneshot::channel();
        let addr = serve(Arc::clone(&received), stopped).await;
        Self {
            endpoint: format!("http://{addr}"),
            received,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:PORT`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (the HTTP exporter appends `/v1/traces` itself).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<CollectedSpan> {
        self.received.spans.lock().unwrap().clone()
    }

    pub fn named(&self, name: &str) -> Vec<CollectedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Spans received, kept or not.
    pub fn span_count(&self) -> usize {
        self.received.span_count.load(Ordering::SeqCst)
    }

    /// From now on only count spans: for load tests that would otherwise
    /// keep millions.
    pub fn count_only(&self) {
        self.received.count_only.store(true, Ordering::SeqCst);
    }

    /// Export requests answered.
    pub fn export_requests(&self) -> usize {
        self.received.requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.received.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` spans arrived and returns them all.
    ///
    /// # Panics
    /// When fewer arrived within `timeout`.
    pub async fn wait_for_spans(&self, count: usize, timeout: Duration) -> Vec<CollectedSpan> {
        self.wait_until(timeout, format_args!("{count} spans"), |spans| {
            (spans.len() >= count).then(|| spans.to_vec())
        })
        .await
    }

    /// Waits for the first span named `name`.
    ///
    /// # Panics
    /// When none arrived within `timeout`.
    pub async fn wait_for_span(&self, name: &str, timeout: Duration) -> CollectedSpan {
        self.wait_until(timeout, format_args!("a span named {name:?}"), |spans| {
            spans.iter().find(|s| s.name == name).cloned()
        })
        .await
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: impl Display,
        check: impl Fn(&[CollectedSpan]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before checking, so a batch landing in between
            // still wakes us.
            let changed = self.received.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = check(&self.received.spans.lock().unwrap()) {
                return found;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let names: Vec<String> = self.spans().into_iter().map(|s| s.name).collect();
                panic!("OtlpCollector: waited {timeout:?} for {what}, got {names:?}");
            }
        }
    }
}
