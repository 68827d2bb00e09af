//! `OtelTracer`: the core's `Tracer` port on the OpenTelemetry SDK.
//!
//! Parenting follows the core's task-local context: `Parent::Current` hangs
//! the span under `sandboxer_core::trace::current()`, `Parent::Remote` under
//! the caller's traceparent (marked remote, so parent-based samplers treat
//! it as such), `Parent::Root` starts a trace. The otel crate's own implicit
//! context is never consulted, so only the core decides what is current.

use std::borrow::Cow;

use opentelemetry::trace::{
    Span as _, SpanBuilder, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
};
use opentelemetry::{Context, Key, KeyValue, Value};
use opentelemetry_sdk::trace::SdkTracer;
use sandboxer_core::port::tracer::{AttributeValue, Parent, Span, SpanKind, Tracer};
use sandboxer_core::trace::{self, SpanContext, attr::key};

/// Starts SDK spans; ended spans go to the provider's batch processor.
#[derive(Debug, Clone)]
pub struct OtelTracer {
    tracer: SdkTracer,
}

impl OtelTracer {
    pub(crate) fn new(tracer: SdkTracer) -> Self {
        Self { tracer }
    }
}

impl Tracer for OtelTracer {
    fn start_span(&self, name: Cow<'static, str>, kind: SpanKind, parent: Parent) -> Box<dyn Span> {
        let parent_cx = match parent {
            Parent::Current => trace::current().map(|ctx| to_otel(ctx, false)),
            Parent::Remote(ctx) => Some(to_otel(ctx, true)),
            Parent::Root => None,
        }
        .map_or_else(Context::new, |sc| {
            Context::new().with_remote_span_context(sc)
        });
        let builder = SpanBuilder::from_name(name).with_kind(otel_kind(kind));
        let span = self.tracer.build_with_context(builder, &parent_cx);
        let context = from_otel(opentelemetry::trace::Span::span_context(&span));
        Box::new(OtelSpan { span, context })
    }
}

/// An SDK span plus its ids in the core's shape, computed once at start
/// because the core asks for them on every `in_span`.
struct OtelSpan {
    span: opentelemetry_sdk::trace::Span,
    context: Option<SpanContext>,
}

impl Span for OtelSpan {
    fn context(&self) -> Option<SpanContext> {
        self.context
    }

    fn set_attribute(&mut self, key: &'static str, value: AttributeValue) {
        let value = match value {
            AttributeValue::Str(s) => Value::from(s),
            AttributeValue::Int(i) => Value::I64(i),
            AttributeValue::Bool(b) => Value::Bool(b),
        };
        self.span
            .set_attribute(KeyValue::new(Key::from_static_str(key), value));
    }

    fn set_error(&mut self, error_type: &str, description: &str) {
        self.span.set_attribute(KeyValue::new(
            Key::from_static_str(key::ERROR_TYPE),
            error_type.to_owned(),
        ));
        self.span.set_status(Status::error(description.to_owned()));
    }

    fn end(&mut self) {
        // The SDK span ends once (later calls and its drop are no-ops), and
        // ending only enqueues it for the batch processor.
        self.span.end();
    }
}

fn otel_kind(kind: SpanKind) -> opentelemetry::trace::SpanKind {
    match kind {
        SpanKind::Server => opentelemetry::trace::SpanKind::Server,
        SpanKind::Internal => opentelemetry::trace::SpanKind::Internal,
        SpanKind::Client => opentelemetry::trace::SpanKind::Client,
    }
}

fn to_otel(ctx: SpanContext, is_remote: bool) -> opentelemetry::trace::SpanContext {
    let flags = if ctx.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    opentelemetry::trace::SpanContext::new(
        TraceId::from_bytes(ctx.trace_id),
        opentelemetry::trace::SpanId::from_bytes(ctx.span_id),
        flags,
        is_remote,
        TraceState::default(),
    )
}

fn from_otel(sc: &opentelemetry::trace::SpanContext) -> Option<SpanContext> {
    sc.is_valid().then(|| SpanContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        sampled: sc.is_sampled(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_convert_both_ways() {
        let core = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        let otel = to_otel(core, true);
        assert!(otel.is_remote() && otel.is_sampled());
        assert_eq!(otel.trace_id().to_string(), core.trace_id_hex());
        assert_eq!(from_otel(&otel), Some(core));
        let unsampled = SpanContext {
            sampled: false,
            ..core
        };
        assert_eq!(from_otel(&to_otel(unsampled, false)), Some(unsampled));
        assert_eq!(from_otel(&opentelemetry::trace::SpanContext::NONE), None);
    }
}
