//! `KillProcess`: end a live process's whole tree; it stays listed, ended,
//! until the runtime forgets it.

use crate::domain::{ChatId, ProcessId, ProcessInfo, Session};
use crate::trace::attr::{key, op, result, span};

use super::super::create_sandbox::CreateSandbox;
use super::super::errors::ExecError;
use super::super::in_sandbox::SandboxAccess;
use super::process_attr;

#[derive(Clone)]
pub struct KillProcess(SandboxAccess);

impl KillProcess {
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
    }

    /// Answers once the process is gone, with how it ended.
    ///
    /// # Errors
    /// `ExecError`: `ProcessNotFound`, no sandbox, or the runtime's failures.
    pub async fn execute(
        &self,
        chat: &ChatId,
        id: &ProcessId,
    ) -> Result<(ProcessInfo, Session), ExecError> {
        self.0
            .run(
                (span::KILL_PROCESS, op::KILL_PROCESS),
                chat,
                process_attr(id),
                |runtime, sandbox| async move { runtime.kill_process(&sandbox, id).await },
                |info: &ProcessInfo, span| {
                    if let Some(code) = info.state.exit_code() {
                        span.set_attribute(key::EXIT_CODE, code.into());
                    }
                    span.set_attribute(key::RESULT, result::OK.into());
                },
            )
            .await
    }
}
