//! `ProcessIo`: the short calls on a chat's live processes: list, status,
//! stdin writes and terminal resizes.

use crate::domain::{ChatId, ProcessId, ProcessInfo, PtySize, Session, StdinState, StdinWrite};
use crate::trace::attr::{key, op, span};
use crate::trace::record_ok;

use super::super::create_sandbox::CreateSandbox;
use super::super::errors::ExecError;
use super::super::in_sandbox::SandboxAccess;
use super::process_attr;

#[derive(Clone)]
pub struct ProcessIo(SandboxAccess);

impl ProcessIo {
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
    }

    /// The chat's processes, running and recently ended.
    ///
    /// # Errors
    /// `ExecError`: no sandbox, or the runtime's failures.
    pub async fn list(&self, chat: &ChatId) -> Result<(Vec<ProcessInfo>, Session), ExecError> {
        self.0
            .run(
                (span::LIST_PROCESSES, op::LIST_PROCESSES),
                chat,
                |_| {},
                |runtime, sandbox| async move { runtime.list_processes(&sandbox).await },
                record_ok,
            )
            .await
    }

    /// # Errors
    /// `ExecError`: `ProcessNotFound`, no sandbox, or the runtime's failures.
    pub async fn status(
        &self,
        chat: &ChatId,
        id: &ProcessId,
    ) -> Result<(ProcessInfo, Session), ExecError> {
        self.0
            .run(
                (span::PROCESS_STATUS, op::PROCESS_STATUS),
                chat,
                process_attr(id),
                |runtime, sandbox| async move { runtime.process_status(&sandbox, id).await },
                record_ok,
            )
            .await
    }

    /// Writes to the process's stdin; the answer says how far it got.
    ///
    /// # Errors
    /// `ExecError`: `Rejected` (an offset past what was written),
    /// `Conflict` (stdin closed), `ProcessNotFound`, no sandbox, the runtime's failures.
    pub async fn write_stdin(
        &self,
        chat: &ChatId,
        id: &ProcessId,
        write: &StdinWrite,
    ) -> Result<(StdinState, Session), ExecError> {
        self.0
            .run(
                (span::WRITE_STDIN, op::WRITE_STDIN),
                chat,
                process_attr(id),
                |runtime, sandbox| async move { runtime.write_stdin(&sandbox, id, write).await },
                |state: &StdinState, span| {
                    span.set_attribute(key::STDIN_OFFSET, state.offset.into());
                },
            )
            .await
    }

    /// # Errors
    /// `ExecError`: `Conflict` (no terminal), `ProcessNotFound`, no sandbox,
    /// the runtime's failures.
    pub async fn resize(
        &self,
        chat: &ChatId,
        id: &ProcessId,
        size: PtySize,
    ) -> Result<Session, ExecError> {
        let ((), session) = self
            .0
            .run(
                (span::RESIZE_PTY, op::RESIZE_PTY),
                chat,
                process_attr(id),
                |runtime, sandbox| async move { runtime.resize_pty(&sandbox, id, size).await },
                record_ok,
            )
            .await?;
        Ok(session)
    }
}
