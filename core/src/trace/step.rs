//! One traced step: the single helper every use case and adapter call runs
//! through (STYLE convention 9). It opens the span, runs the work in the
//! span's context (so spans the work starts become its children), records
//! what the work returned or the failure's `error.type`, and ends the span.
//!
//! The work gets a `StepSpan`: a handle for attributes only known midway
//! (the session a create opened, the sandbox an exec landed on), so a failed
//! step still carries them.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::{ChatId, Session, rfc3339};
use crate::port::SandboxRef;
use crate::port::tracer::{AttributeValue, Parent, Span, SpanKind, Tracer};
use crate::trace::{ErrorType, attr::key, in_context, mark_failed};

/// A span about to run a step; attributes known up front are added here.
pub struct Step {
    span: Box<dyn Span>,
}

/// The running step's span, shared with its work.
#[derive(Clone)]
pub struct StepSpan(Arc<Mutex<Box<dyn Span>>>);

impl Step {
    /// A step under the task's current span.
    pub fn new(tracer: &dyn Tracer, name: &'static str, kind: SpanKind) -> Self {
        Self {
            span: tracer.start_span(name.into(), kind, Parent::Current),
        }
    }

    pub fn attr(mut self, key: &'static str, value: impl Into<AttributeValue>) -> Self {
        self.span.set_attribute(key, value.into());
        self
    }

    pub fn chat(self, chat: &ChatId) -> Self {
        self.attr(key::CHAT_ID, chat.to_string())
    }

    /// Adds attributes with a function of the caller's (a sandbox's ids, say).
    pub fn with(mut self, describe: impl FnOnce(&mut dyn Span)) -> Self {
        describe(self.span.as_mut());
        self
    }

    /// Runs `work` inside the span; on success `on_ok` records what it
    /// returned, on failure the span is marked failed. The span ends either way.
    ///
    /// # Errors
    /// Whatever `work` returns.
    pub async fn run<T, E, F, Fut>(
        self,
        work: F,
        on_ok: impl FnOnce(&T, &mut dyn Span),
    ) -> Result<T, E>
    where
        E: ErrorType,
        F: FnOnce(StepSpan) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let ctx = crate::trace::context_of(self.span.as_ref());
        let handle = StepSpan(Arc::new(Mutex::new(self.span)));
        let result = in_context(ctx, work(handle.clone())).await;
        let mut span = handle.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &result {
            Ok(value) => on_ok(value, span.as_mut()),
            Err(err) => mark_failed(span.as_mut(), err),
        }
        span.end();
        result
    }
}

impl StepSpan {
    pub fn set(&self, key: &'static str, value: impl Into<AttributeValue>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_attribute(key, value.into());
    }

    /// Runs `f` on the span itself (for the helpers that take `&mut dyn Span`).
    pub fn update(&self, f: impl FnOnce(&mut dyn Span)) {
        f(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut());
    }
}

/// The one place that writes a session's attributes on a span: `session.id`,
/// `container.id` when it has one, and `sandbox.expires_at`. (`chat.id` is
/// known before the session is, so steps set it at their start.)
pub fn record_session(span: &mut dyn Span, session: &Session) {
    span.set_attribute(key::SESSION_ID, session.id.to_string().into());
    span.set_attribute(key::WORKSPACE_ID, session.workspace_id.to_string().into());
    if let Some(c) = &session.container_id {
        span.set_attribute(key::CONTAINER_ID, c.to_string().into());
    }
    span.set_attribute(key::EXPIRES_AT, rfc3339(session.expires_at).into());
}

/// `on_ok` of a step whose success says nothing more: `sandbox.result = ok`.
pub fn record_ok<T>(_: &T, span: &mut dyn Span) {
    span.set_attribute(key::RESULT, crate::trace::attr::result::OK.into());
}

/// The ids of a sandbox a runtime call is about.
pub fn record_sandbox(span: &mut dyn Span, sandbox: &SandboxRef) {
    span.set_attribute(key::CHAT_ID, sandbox.chat_id.to_string().into());
    span.set_attribute(key::SESSION_ID, sandbox.session_id.to_string().into());
    if let Some(c) = &sandbox.container_id {
        span.set_attribute(key::CONTAINER_ID, c.to_string().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::NoopTracer;

    #[derive(Debug, thiserror::Error)]
    #[error("boom")]
    struct Boom;

    impl ErrorType for Boom {
        fn error_type(&self) -> crate::trace::attr::ErrorClass {
            crate::trace::attr::ErrorClass::Internal
        }
    }

    #[tokio::test]
    async fn returns_what_the_work_returns() {
        let ok: Result<u8, Boom> = Step::new(&NoopTracer, "t", SpanKind::Internal)
            .run(
                |span| async move {
                    span.set(key::RESULT, "midway");
                    Ok(7)
                },
                |_, _| {},
            )
            .await;
        assert_eq!(ok.unwrap(), 7);
        let err: Result<u8, Boom> = Step::new(&NoopTracer, "t", SpanKind::Internal)
            .run(
                |_| async { Err(Boom) },
                |_, _| unreachable!("not on failure"),
            )
            .await;
        assert!(err.is_err());
    }
}
