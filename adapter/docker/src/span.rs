//! One CLIENT span per port call, parented on the caller's current span.

use sandboxer_core::port::{
    AttributeValue, Parent, RuntimeError, SandboxRef, Span, SpanKind, Tracer,
};
use sandboxer_core::trace::{attr, mark_failed};

pub(crate) struct CallSpan(Box<dyn Span>);

impl CallSpan {
    pub(crate) fn start(tracer: &dyn Tracer, name: &'static str, operation: &'static str) -> Self {
        let mut inner = tracer.start_span(name.into(), SpanKind::Client, Parent::Current);
        inner.set_attribute(attr::key::OPERATION, operation.into());
        Self(inner)
    }

    pub(crate) fn set(&mut self, key: &'static str, value: impl Into<AttributeValue>) {
        self.0.set_attribute(key, value.into());
    }

    /// The ids of the sandbox the call is about.
    pub(crate) fn sandbox(&mut self, sandbox: &SandboxRef) {
        self.set(attr::key::SESSION_ID, sandbox.session_id.to_string());
        self.set(attr::key::CHAT_ID, sandbox.chat_id.as_str().to_owned());
        if let Some(id) = &sandbox.container_id {
            self.set(attr::key::CONTAINER_ID, id.as_str().to_owned());
        }
    }

    /// Ends the span: `sandbox.result` from `ok` on success, failed otherwise.
    pub(crate) fn end<T>(
        mut self,
        result: &Result<T, RuntimeError>,
        ok: impl FnOnce(&T) -> &'static str,
    ) {
        match result {
            Ok(value) => self.set(attr::key::RESULT, ok(value)),
            Err(err) => mark_failed(self.0.as_mut(), err),
        }
        self.0.end();
    }
}
