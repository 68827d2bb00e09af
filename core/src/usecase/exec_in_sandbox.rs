//! `ExecInSandbox`: run a command in the chat's sandbox (created if needed).

use crate::domain::{ChatId, ExecOutcome, ExecRequest, Session};
use crate::trace::attr::{key, op, span};

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
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
    }

    /// # Errors
    /// `ExecError`: the sandbox could not be had, or the runtime failed. A
    /// command that fails or times out is a successful exec with its outcome.
    pub async fn execute(
        &self,
        chat: &ChatId,
        request: &ExecRequest,
    ) -> Result<ExecResult, ExecError> {
        let (outcome, session) = self
            .0
            .run(
                (span::EXEC, op::EXEC),
                chat,
                |_| {},
                |runtime, sandbox| async move { runtime.exec(&sandbox, request).await },
                |outcome: &ExecOutcome, span| {
                    span.set_attribute(key::EXIT_CODE, outcome.exit_code.into());
                    span.set_attribute(key::EXEC_TIMED_OUT, outcome.timed_out.into());
                    span.set_attribute(key::EXEC_TRUNCATED, outcome.truncated.into());
                },
            )
            .await?;
        Ok(ExecResult { outcome, session })
    }
}
