//! Tracing vocabulary of the core: span context propagation, the attribute
//! keys and `error.type` values (one module, DESIGN section 5), the noop
//! tracer, the one traced step and the helper that marks a span failed.

pub mod attr;
mod context;
mod noop;
mod step;

pub use context::{SpanContext, context_of, current, in_context, in_span};
pub use noop::{NoopSpan, NoopTracer};
pub use step::{Step, StepSpan, record_ok, record_sandbox, record_session};

use crate::port::tracer::Span;

/// An error that knows its low-cardinality `error.type` class.
pub trait ErrorType: std::error::Error {
    fn error_type(&self) -> attr::ErrorClass;
}

/// Marks a span failed: status Error with the error's message,
/// `error.type`, and `sandbox.result = failed`.
pub fn mark_failed(span: &mut dyn Span, error: &dyn ErrorType) {
    span.set_attribute(attr::key::RESULT, attr::result::FAILED.into());
    span.set_error(error.error_type().as_str(), &error_chain(error));
}

/// The error's message followed by its sources, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
