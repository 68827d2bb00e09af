//! Running work in a chat's sandbox: get-or-create it, hold a lease while
//! the work runs (cleanup never reaps a leased sandbox), then record the use.

use std::future::Future;
use std::sync::Arc;

use crate::domain::{ChatId, Session};
use crate::port::tracer::Span;
use crate::port::{RuntimeError, SandboxRef, SandboxRuntime, Tracer};
use crate::trace::attr::key;

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
