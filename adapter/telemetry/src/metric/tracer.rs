//! `MetricsTracer`: a decorator that turns every span into metrics when it
//! ends: its duration into a histogram and, if it failed, one count in
//! `sandboxer_failures_total` with the span's own `error.type`. It wraps the
//! noop or the OpenTelemetry tracer, so metrics exist with tracing off.

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
            ended: false,
        })
    }
}

/// The wrapped span plus what its metrics need: start time, `sandbox.result`
/// and `error.type`.
struct MetricsSpan {
    inner: Box<dyn Span>,
    name: Cow<'static, str>,
    started: Instant,
    result: Option<Cow<'static, str>>,
    error_type: Option<String>,
    ended: bool,
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
}

impl Span for MetricsSpan {
    fn context(&self) -> Option<SpanContext> {
        self.inner.context()
    }

    fn set_attribute(&mut self, key: &'static str, value: AttributeValue) {
        if key == key::RESULT
            && let AttributeValue::Str(result) = &value
        {
            self.result = Some(result.clone());
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
