//! `SignalProcess`: send a signal to a live process's group.

use crate::domain::{ChatId, ProcessId, Session, Signal};
use crate::trace::attr::{key, op, span};
use crate::trace::record_ok;

use super::super::create_sandbox::CreateSandbox;
use super::super::errors::ExecError;
use super::super::in_sandbox::SandboxAccess;
use super::process_attr;

#[derive(Clone)]
pub struct SignalProcess(SandboxAccess);

impl SignalProcess {
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
    }

    /// # Errors
    /// `ExecError`: `ProcessNotFound`, no sandbox, or the runtime's failures.
    pub async fn execute(
        &self,
        chat: &ChatId,
        id: &ProcessId,
        signal: Signal,
    ) -> Result<Session, ExecError> {
        let ((), session) = self
            .0
            .run(
                (span::SIGNAL_PROCESS, op::SIGNAL_PROCESS),
                chat,
                |span| {
                    process_attr(id)(span);
                    span.set_attribute(key::PROCESS_SIGNAL, signal.name().into());
                },
                |runtime, sandbox| async move { runtime.signal_process(&sandbox, id, signal).await },
                record_ok,
            )
            .await?;
        Ok(session)
    }
}
