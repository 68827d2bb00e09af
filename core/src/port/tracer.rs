//! The tracer port. Use cases and adapters start spans through it; the
//! telemetry adapter exports them (OpenTelemetry) or drops them (noop).
//!
//! Parenting is implicit: a span started with `Parent::Current` is a child of
//! the span whose context the task carries (`trace::in_span`).

use std::borrow::Cow;

use crate::trace::SpanContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Inbound request (HTTP).
    Server,
    /// Use cases and other in-process work.
    Internal,
    /// A call to the Docker Engine or the database.
    Client,
}

/// Where a new span hangs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// The task's current span (`trace::current`), or a new trace if none.
    Current,
    /// A remote caller's span (W3C `traceparent`).
    Remote(SpanContext),
    /// Always a new trace.
    Root,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    Str(Cow<'static, str>),
    Int(i64),
    Bool(bool),
}

impl From<&'static str> for AttributeValue {
    fn from(v: &'static str) -> Self {
        Self::Str(Cow::Borrowed(v))
    }
}

impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        Self::Str(Cow::Owned(v))
    }
}

impl From<i64> for AttributeValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u64> for AttributeValue {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for AttributeValue {
    fn from(v: usize) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl AttributeValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }
}

pub trait Tracer: Send + Sync {
    /// Starts a span. Names are low-cardinality (`CreateSandbox.execute`,
    /// `PUT /v1/chats/{chat_id}/sandbox`); ids go in attributes.
    fn start_span(&self, name: Cow<'static, str>, kind: SpanKind, parent: Parent) -> Box<dyn Span>;
}

/// A started span. It ends at `end` or when dropped, whichever comes first.
pub trait Span: Send + Sync {
    /// `None` when the tracer records nothing (noop).
    fn context(&self) -> Option<SpanContext>;
    fn set_attribute(&mut self, key: &'static str, value: AttributeValue);
    /// Status Error with `description`, and the `error.type` attribute.
    fn set_error(&mut self, error_type: &str, description: &str);
    fn end(&mut self);
}

/// Shorthand for the use cases' spans.
pub fn start(tracer: &dyn Tracer, name: &'static str, kind: SpanKind) -> Box<dyn Span> {
    tracer.start_span(Cow::Borrowed(name), kind, Parent::Current)
}
