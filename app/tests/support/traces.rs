//! Traces of a black-box service: options that make it export to an
//! in-test OTLP collector, bounded waits for what a test expects to
//! arrive, and a view of one trace to check parents and attributes.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::time::Instant;

use sandboxer_telemetry::testing::{CollectedSpan, OtlpCollector};

use crate::support::Options;

/// How long a test waits for spans. The batch delay is 100 ms; the rest is
/// room for a loaded machine.
pub const ARRIVAL: Duration = Duration::from_secs(30);

/// `options`, exporting to `collector` with a 100 ms batch delay.
pub fn exporting_to(collector: &OtlpCollector, options: Options) -> Options {
    options
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", 100)
}

/// Waits until `check` finds what it looks for among the spans received so
/// far, woken by each export rather than polling.
///
/// # Panics
/// After `ARRIVAL`, naming `what` and listing what did arrive.
pub async fn wait_for<T>(
    collector: &OtlpCollector,
    what: &str,
    check: impl Fn(&[CollectedSpan]) -> Option<T>,
) -> T {
    let deadline = Instant::now() + ARRIVAL;
    loop {
        let spans = collector.spans();
        if let Some(found) = check(&spans) {
            return found;
        }
        // Returns at once if more came after the snapshot; the collector's
        // own (longer) bound never fires first.
        let more = collector.wait_for_spans(spans.len() + 1, ARRIVAL * 2);
        if tokio::time::timeout_at(deadline, more).await.is_err() {
            panic!(
                "waited {ARRIVAL:?} for {what}; received:\n{}",
                summary(&collector.spans())
            );
        }
    }
}

/// Waits for the trace `trace_id` to hold at least one span of each of
/// `names`, and returns every span of it received by then.
pub async fn wait_for_trace(collector: &OtlpCollector, trace_id: &str, names: &[&str]) -> Trace {
    let what = format!("trace {trace_id} with spans {names:?}");
    wait_for(collector, &what, |spans| {
        let trace = Trace::of(spans, trace_id);
        names
            .iter()
            .all(|n| trace.spans.iter().any(|s| s.name == *n))
            .then_some(trace)
    })
    .await
}

/// The spans of one trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub id: String,
    pub spans: Vec<CollectedSpan>,
}

impl Trace {
    pub fn of(spans: &[CollectedSpan], trace_id: &str) -> Self {
        Self {
            id: trace_id.to_owned(),
            spans: spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect(),
        }
    }

    pub fn named(&self, name: &str) -> Vec<&CollectedSpan> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    /// The one span named `name`.
    pub fn one(&self, name: &str) -> &CollectedSpan {
        match self.named(name).as_slice() {
            [one] => one,
            other => panic!(
                "trace {}: expected one {name:?}, found {}:\n{}",
                self.id,
                other.len(),
                summary(&self.spans)
            ),
        }
    }

    /// The children of `parent` named `name`.
    pub fn children(&self, parent: &CollectedSpan, name: &str) -> Vec<&CollectedSpan> {
        self.spans
            .iter()
            .filter(|s| s.name == name && s.is_child_of(parent))
            .collect()
    }

    /// The one child of `parent` named `name`.
    pub fn child(&self, parent: &CollectedSpan, name: &str) -> &CollectedSpan {
        match self.children(parent, name).as_slice() {
            [one] => one,
            other => panic!(
                "trace {}: expected one {name:?} under {:?} ({}), found {}:\n{}",
                self.id,
                parent.name,
                parent.span_id,
                other.len(),
                summary(&self.spans)
            ),
        }
    }

    /// Every span hangs on another span of this trace, except `root`, which
    /// has no parent here (none at all, or a caller's remote span).
    pub fn assert_rooted_at(&self, root: &CollectedSpan) {
        assert_eq!(root.trace_id, self.id);
        for span in &self.spans {
            if span.span_id == root.span_id {
                continue;
            }
            let parent = span.parent_span_id.as_deref();
            assert!(
                self.spans
                    .iter()
                    .any(|p| Some(p.span_id.as_str()) == parent),
                "trace {}: {:?} ({}) hangs on {parent:?}, which is not in the trace:\n{}",
                self.id,
                span.name,
                span.span_id,
                summary(&self.spans)
            );
        }
    }
}

/// One line per span: name, kind, ids, status and the sandbox attributes.
pub fn summary(spans: &[CollectedSpan]) -> String {
    let mut out = String::new();
    for s in spans {
        let _ = writeln!(
            out,
            "  {} [{:?}] trace={} span={} parent={} status={:?} attrs={:?}",
            s.name,
            s.kind,
            s.trace_id,
            s.span_id,
            s.parent_span_id.as_deref().unwrap_or("-"),
            s.status,
            s.attributes
        );
    }
    out
}
