//! A tracer that keeps every finished span with its attributes, status and
//! parent, for tests to assert on.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::port::tracer::{AttributeValue, Parent, Span, SpanKind, Tracer};
use crate::trace::{self, SpanContext, attr::key};

#[derive(Debug, Clone, PartialEq)]
pub enum SpanStatus {
    Unset,
    Error(String),
}

#[derive(Debug, Clone)]
pub struct RecordedSpan {
    pub name: String,
    pub kind: SpanKind,
    pub context: SpanContext,
    pub parent: Option<SpanContext>,
    pub attributes: BTreeMap<&'static str, AttributeValue>,
    pub status: SpanStatus,
}

impl RecordedSpan {
    pub fn attr(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes.get(key)
    }

    /// A string attribute, or `None`.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttributeValue::as_str)
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttributeValue::as_int)
    }

    pub fn is_error(&self) -> bool {
        matches!(self.status, SpanStatus::Error(_))
    }

    pub fn error_type(&self) -> Option<&str> {
        self.str(key::ERROR_TYPE)
    }

    pub fn is_child_of(&self, parent: &RecordedSpan) -> bool {
        self.parent
            .is_some_and(|p| p.span_id == parent.context.span_id)
            && self.context.trace_id == parent.context.trace_id
    }
}

#[derive(Debug, Default, Clone)]
pub struct RecordingTracer {
    finished: Arc<Mutex<Vec<RecordedSpan>>>,
    next_id: Arc<AtomicU64>,
}

impl RecordingTracer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Finished spans, in the order they ended.
    pub fn spans(&self) -> Vec<RecordedSpan> {
        self.finished.lock().unwrap().clone()
    }

    pub fn named(&self, name: &str) -> Vec<RecordedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The one finished span with this name; panics unless exactly one.
    pub fn one(&self, name: &str) -> RecordedSpan {
        let mut found = self.named(name);
        assert_eq!(found.len(), 1, "expected one {name} span, got {found:#?}");
        found.remove(0)
    }

    pub fn children_of(&self, parent: &RecordedSpan) -> Vec<RecordedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.is_child_of(parent))
            .collect()
    }

    pub fn clear(&self) {
        self.finished.lock().unwrap().clear();
    }

    fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl Tracer for RecordingTracer {
    fn start_span(&self, name: Cow<'static, str>, kind: SpanKind, parent: Parent) -> Box<dyn Span> {
        let parent = match parent {
            Parent::Current => trace::current(),
            Parent::Remote(ctx) => Some(ctx),
            Parent::Root => None,
        };
        let trace_id = parent.map_or_else(
            || {
                let mut id = [0u8; 16];
                id[8..].copy_from_slice(&self.fresh_id().to_be_bytes());
                id
            },
            |p| p.trace_id,
        );
        let context = SpanContext {
            trace_id,
            span_id: self.fresh_id().to_be_bytes(),
            sampled: true,
        };
        Box::new(LiveSpan {
            span: Some(RecordedSpan {
                name: name.into_owned(),
                kind,
                context,
                parent,
                attributes: BTreeMap::new(),
                status: SpanStatus::Unset,
            }),
            sink: Arc::clone(&self.finished),
        })
    }
}

struct LiveSpan {
    span: Option<RecordedSpan>,
    sink: Arc<Mutex<Vec<RecordedSpan>>>,
}

impl Span for LiveSpan {
    fn context(&self) -> Option<SpanContext> {
        self.span.as_ref().map(|s| s.context)
    }

    fn set_attribute(&mut self, key: &'static str, value: AttributeValue) {
        if let Some(s) = &mut self.span {
            s.attributes.insert(key, value);
        }
    }

    fn set_error(&mut self, error_type: &str, description: &str) {
        if let Some(s) = &mut self.span {
            s.attributes
                .insert(key::ERROR_TYPE, AttributeValue::from(error_type.to_owned()));
            s.status = SpanStatus::Error(description.to_owned());
        }
    }

    fn end(&mut self) {
        if let Some(s) = self.span.take() {
            self.sink.lock().unwrap().push(s);
        }
    }
}

impl Drop for LiveSpan {
    fn drop(&mut self) {
        self.end();
    }
}
