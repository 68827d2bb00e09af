//! `MetricsTracer`: a decorator that turns every span into metrics when it
//! ends: its duration into a histogram and, if it failed, one count in
//! `sandboxer_failures_total` with the span's own `error.type`; a cleanup
//! run's counts of hibernated sandboxes and deleted workspaces into their
//! counters. It wraps the noop or the OpenTelemetry tracer, so metrics
//! exist with tracing off.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use metrics::{counter, gauge, histogram};
use sandboxer_core::port::tracer::{AttributeValue, Parent, Span, SpanKind, Tracer};
use sandboxer_core::trace::SpanContext;
use sandboxer_core::trace::attr::{key, span};

use super::names::{self, label};

pub struct MetricsTracer {
    inner: Arc<dyn Tracer>,
}

impl MetricsTracer {
    pub fn new(inner: Arc<dyn Tracer>) -> Self {
        Self { inner }
    }
}

impl Tracer for MetricsTracer {
    fn start_span(&self, name: Cow<'static, str>, kind: SpanKind, parent: Parent) -> Box<dyn Span> {
        let inner = self.inner.start_span(name.clone(), kind, parent);
        Box::new(MetricsSpan {
            inner,
            name,
            started: Instant::now(),
            result: None,
            error_type: None,
            cleanup: CleanupCounts::default(),
            ended: false,
        })
    }
}

/// The wrapped span plus what its metrics need: start time, `sandbox.result`,
/// `error.type` and a cleanup run's counts.
struct MetricsSpan {
    inner: Box<dyn Span>,
    name: Cow<'static, str>,
    started: Instant,
    result: Option<Cow<'static, str>>,
    error_type: Option<String>,
    cleanup: CleanupCounts,
    ended: bool,
}

/// The counts of a `CleanupExpiredSandboxes.execute` span that have
/// counters, and what the warm pool's spans say.
#[derive(Default)]
struct CleanupCounts {
    hibernated: u64,
    workspaces_deleted: u64,
    failed: u64,
    pool: Option<Cow<'static, str>>,
    pool_size: Option<u64>,
}

impl MetricsSpan {
    fn record(&self) {
        let seconds = self.started.elapsed().as_secs_f64();
        let result = if self.error_type.is_some() {
            Cow::Borrowed(names::RESULT_FAILED)
        } else {
            self.result
                .clone()
                .unwrap_or(Cow::Borrowed(names::RESULT_OK))
        };
        self.record_process(&result);
        self.record_cleanup();
        self.record_pool();
        let use_case_histogram = match &*self.name {
            span::CREATE_SANDBOX => Some(names::CREATE_DURATION),
            span::EXEC => Some(names::EXEC_DURATION),
            span::CLEANUP => Some(names::CLEANUP_DURATION),
            _ => None,
        };
        match use_case_histogram {
            Some(metric) => histogram!(metric, label::RESULT => result).record(seconds),
            None => histogram!(
                names::OPERATION_DURATION,
                label::OPERATION => self.name.clone(),
                label::RESULT => result
            )
            .record(seconds),
        }
        if let Some(error_type) = &self.error_type {
            counter!(
                names::FAILURES,
                label::OPERATION => self.name.clone(),
                label::ERROR_TYPE => error_type.clone()
            )
            .increment(1);
        }
    }
}

impl MetricsSpan {
    /// Live processes: started and killed, and running (up at a start
    /// that made one, down when its watcher saw it end).
    fn record_process(&self, result: &str) {
        match &*self.name {
            span::START_PROCESS if result == sandboxer_core::trace::attr::result::CREATED => {
                counter!(names::PROCESSES_STARTED).increment(1);
                gauge!(names::PROCESSES_RUNNING).increment(1.0);
            }
            span::PROCESS_EXITED => gauge!(names::PROCESSES_RUNNING).decrement(1.0),
            span::KILL_PROCESS if self.error_type.is_none() => {
                counter!(names::PROCESSES_KILLED).increment(1);
            }
            _ => {}
        }
    }

    /// A cleanup run adds its counts, zeros included, so the counters exist
    /// from the first run on.
    fn record_cleanup(&self) {
        if self.name == span::CLEANUP {
            counter!(names::CLEANUP_HIBERNATED).increment(self.cleanup.hibernated);
            counter!(names::CLEANUP_WORKSPACES_DELETED).increment(self.cleanup.workspaces_deleted);
        }
    }
}

impl MetricsSpan {
    /// A new chat's create says hit or miss; a refill says how many are
    /// ready and how many it could not make.
    fn record_pool(&self) {
        match &*self.name {
            span::CREATE_SANDBOX => {
                if let Some(used) = self.cleanup.pool.as_deref().filter(|u| *u != "off") {
                    counter!(names::POOL_CLAIMS, label::RESULT => used.to_owned()).increment(1);
                }
            }
            span::POOL_REFILL => {
                let failed = self.cleanup.failed + u64::from(self.error_type.is_some());
                counter!(names::POOL_REFILL_FAILURES).increment(failed);
                if let Some(size) = self.cleanup.pool_size {
                    #[allow(clippy::cast_precision_loss)]
                    gauge!(names::POOL_READY).set(size as f64);
                }
            }
            _ => {}
        }
    }
}

impl Span for MetricsSpan {
    fn context(&self) -> Option<SpanContext> {
        self.inner.context()
    }

    fn set_attribute(&mut self, key: &'static str, value: AttributeValue) {
        match (key, &value) {
            (key::RESULT, AttributeValue::Str(result)) => self.result = Some(result.clone()),
            (key::CLEANUP_HIBERNATED, AttributeValue::Int(n)) => {
                self.cleanup.hibernated = u64::try_from(*n).unwrap_or(0);
            }
            (key::CLEANUP_WORKSPACES_DELETED, AttributeValue::Int(n)) => {
                self.cleanup.workspaces_deleted = u64::try_from(*n).unwrap_or(0);
            }
            (key::CLEANUP_FAILED, AttributeValue::Int(n)) => {
                self.cleanup.failed = u64::try_from(*n).unwrap_or(0);
            }
            (key::POOL, AttributeValue::Str(used)) => self.cleanup.pool = Some(used.clone()),
            (key::POOL_SIZE, AttributeValue::Int(n)) => {
                self.cleanup.pool_size = u64::try_from(*n).ok();
            }
            _ => {}
        }
        self.inner.set_attribute(key, value);
    }

    fn set_error(&mut self, error_type: &str, description: &str) {
        self.error_type = Some(error_type.to_owned());
        self.inner.set_error(error_type, description);
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.record();
            self.inner.end();
        }
    }
}

impl Drop for MetricsSpan {
    fn drop(&mut self) {
        self.end();
    }
}
