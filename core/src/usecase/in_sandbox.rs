//! Running work in a chat's sandbox: get-or-create it, hold a lease while
//! the work runs (cleanup never reaps a leased sandbox), then record the use.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{ChatId, Session};
use crate::port::tracer::{self, Span, SpanKind};
use crate::port::{RuntimeError, SandboxRef, SandboxRuntime, Tracer};
use crate::trace::{self, attr::key, attr::result, mark_failed};

use super::create_sandbox::{CreateSandbox, CreateSandboxInput, SpecChoice};
use super::errors::ExecError;

/// What the use cases that work inside a chat's sandbox (exec, files) hold.
#[derive(Clone)]
pub(crate) struct SandboxAccess {
    pub(crate) sandboxes: CreateSandbox,
    pub(crate) runtime: Arc<dyn SandboxRuntime>,
    pub(crate) tracer: Arc<dyn Tracer>,
}

impl SandboxAccess {
    pub(crate) fn new(
        sandboxes: CreateSandbox,
        runtime: Arc<dyn SandboxRuntime>,
        tracer: Arc<dyn Tracer>,
    ) -> Self {
        Self {
            sandboxes,
            runtime,
            tracer,
        }
    }

    /// Runs `work` in the chat's sandbox under a use-case span `name` with
    /// `chat.id` and `sandbox.operation`; `on_start` adds the call's own
    /// attributes, `on_ok` what the work returned; a failure marks the span
    /// failed.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        (name, operation): (&'static str, &'static str),
        chat: &ChatId,
        on_start: impl FnOnce(&mut dyn Span),
        work: F,
        on_ok: impl FnOnce(&T, &mut dyn Span),
    ) -> Result<(T, Session), ExecError>
    where
        F: Fn(Arc<dyn SandboxRuntime>, SandboxRef) -> Fut,
        Fut: Future<Output = Result<T, RuntimeError>>,
    {
        let mut span = tracer::start(self.tracer.as_ref(), name, SpanKind::Internal);
        span.set_attribute(key::CHAT_ID, chat.to_string().into());
        span.set_attribute(key::OPERATION, operation.into());
        on_start(span.as_mut());
        let ran = trace::in_context(
            trace::context_of(span.as_ref()),
            self.sandboxes.in_sandbox(chat, span.as_mut(), |sandbox| {
                work(Arc::clone(&self.runtime), sandbox)
            }),
        )
        .await;
        match &ran {
            Ok((value, _)) => {
                on_ok(value, span.as_mut());
                span.set_attribute(key::RESULT, result::OK.into());
            }
            Err(err) => mark_failed(span.as_mut(), err),
        }
        span.end();
        ran
    }
}

impl CreateSandbox {
    /// Runs `work` against the chat's sandbox. A container that vanished
    /// before the work could start is replaced, and the work tried once more.
    pub(crate) async fn in_sandbox<T, F, Fut>(
        &self,
        chat: &ChatId,
        span: &mut dyn Span,
        work: F,
    ) -> Result<(T, Session), ExecError>
    where
        F: Fn(SandboxRef) -> Fut,
        Fut: Future<Output = Result<T, RuntimeError>>,
    {
        let mut retried = false;
        loop {
            let input = CreateSandboxInput {
                chat_id: chat.clone(),
                spec: SpecChoice::Existing,
                ttl: None,
            };
            let (outcome, lease) = self.acquire(input).await?;
            let session = outcome.session;
            span.set_attribute(key::SESSION_ID, session.id.to_string().into());
            if let Some(c) = &session.container_id {
                span.set_attribute(key::CONTAINER_ID, c.to_string().into());
            }
            match work(SandboxRef::from(&session)).await {
                Err(RuntimeError::ContainerGone) if !retried => {
                    retried = true;
                    drop(lease);
                }
                Err(err) => return Err(err.into()),
                Ok(value) => {
                    self.record_use(&session, span).await;
                    drop(lease);
                    return Ok((value, session));
                }
            }
        }
    }
}
