//! `ExecInSandbox`: run a command in the chat's sandbox (created if needed).

use std::sync::Arc;

use crate::domain::{ChatId, ExecOutcome, ExecRequest, Session};
use crate::port::tracer::{self, SpanKind};
use crate::port::{SandboxRuntime, Tracer};
use crate::trace::{self, attr::key, attr::op, attr::result, attr::span, mark_failed};

use super::create_sandbox::CreateSandbox;
use super::errors::ExecError;
use super::in_sandbox::SandboxAccess;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    pub outcome: ExecOutcome,
    pub session: Session,
}

#[derive(Clone)]
pub struct ExecInSandbox(SandboxAccess);

impl ExecInSandbox {
    pub fn new(
        sandboxes: CreateSandbox,
        runtime: Arc<dyn SandboxRuntime>,
        tracer: Arc<dyn Tracer>,
    ) -> Self {
        Self(SandboxAccess::new(sandboxes, runtime, tracer))
    }

    /// # Errors
    /// `ExecError`: the sandbox could not be had, or the runtime failed. A
    /// command that fails or times out is a successful exec with its outcome.
    pub async fn execute(
        &self,
        chat: &ChatId,
        request: &ExecRequest,
    ) -> Result<ExecResult, ExecError> {
        let SandboxAccess {
            sandboxes,
            runtime,
            tracer,
        } = &self.0;
        let mut span = tracer::start(tracer.as_ref(), span::EXEC, SpanKind::Internal);
        span.set_attribute(key::CHAT_ID, chat.to_string().into());
        span.set_attribute(key::OPERATION, op::EXEC.into());
        let ran = trace::in_context(
            trace::context_of(span.as_ref()),
            sandboxes.in_sandbox(chat, span.as_mut(), |sandbox| {
                let runtime = Arc::clone(runtime);
                async move { runtime.exec(&sandbox, request).await }
            }),
        )
        .await;
        match ran {
            Ok((outcome, session)) => {
                span.set_attribute(key::EXIT_CODE, outcome.exit_code.into());
                span.set_attribute(key::EXEC_TIMED_OUT, outcome.timed_out.into());
                span.set_attribute(key::EXEC_TRUNCATED, outcome.truncated.into());
                span.set_attribute(key::RESULT, result::OK.into());
                span.end();
                Ok(ExecResult { outcome, session })
            }
            Err(err) => {
                mark_failed(span.as_mut(), &err);
                span.end();
                Err(err)
            }
        }
    }
}
