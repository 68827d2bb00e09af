//! Running work in a chat's sandbox: get-or-create it, hold a lease while
//! the work runs (cleanup never reaps a leased sandbox), then record the use.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{ChatId, Session};
use crate::port::tracer::{Span, SpanKind};
use crate::port::{RuntimeError, SandboxRef, SandboxRuntime};
use crate::trace::{Step, StepSpan, attr::key, attr::result, record_session};

use super::create_sandbox::{CreateSandbox, CreateSandboxInput, SpecChoice};
use super::errors::ExecError;

/// What the use cases that work inside a chat's sandbox (exec, files) hold:
/// the get-or-create use case, whose ports they share.
#[derive(Clone)]
pub(crate) struct SandboxAccess {
    pub(crate) sandboxes: CreateSandbox,
}

impl SandboxAccess {
    pub(crate) fn new(sandboxes: CreateSandbox) -> Self {
        Self { sandboxes }
    }

    /// Runs `work` in the chat's sandbox under a use-case span `name` with
    /// `chat.id` and `sandbox.operation`; `on_start` adds the call's own
    /// attributes, `on_ok` what the work returned.
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
        let ports = self.sandboxes.ports();
        Step::new(ports.tracer.as_ref(), name, SpanKind::Internal)
            .chat(chat)
            .attr(key::OPERATION, operation)
            .with(on_start)
            .run(
                |span| async move {
                    self.sandboxes
                        .in_sandbox(chat, &span, |sandbox| {
                            work(Arc::clone(&ports.runtime), sandbox)
                        })
                        .await
                },
                |(value, _), span| {
                    // First: `on_ok` may say more than `ok`.
                    span.set_attribute(key::RESULT, result::OK.into());
                    on_ok(value, span);
                },
            )
            .await
    }
}

impl CreateSandbox {
    /// Runs `work` against the chat's sandbox. A container that vanished
    /// before the work could start is replaced, and the work tried once more.
    pub(crate) async fn in_sandbox<T, F, Fut>(
        &self,
        chat: &ChatId,
        span: &StepSpan,
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
            let (outcome, _lease) = self.acquire(input).await?;
            let session = outcome.session;
            match work(SandboxRef::from(&session)).await {
                Err(RuntimeError::ContainerGone) if !retried => retried = true,
                Err(err) => {
                    span.update(|s| record_session(s, &session));
                    return Err(err.into());
                }
                Ok(value) => {
                    let used = self.record_use(&session).await;
                    span.update(|s| record_session(s, &used));
                    return Ok((value, session));
                }
            }
        }
    }
}
