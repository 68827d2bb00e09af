//! `StopSandbox`: stop and remove a chat's sandbox, end its session and
//! delete its workspace (also a hibernated chat's).

use std::sync::Arc;

use crate::domain::{ChatId, EndReason, Session, Workspace, WorkspaceFate};
use crate::port::SandboxRef;
use crate::port::tracer::SpanKind;
use crate::trace::{Step, attr::key, attr::op, attr::result, attr::span, record_session};

use super::Ports;
use super::errors::StopSandboxError;
use super::guards::SessionGuards;
use super::workspaces;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopResult {
    Stopped(Box<Session>),
    /// The chat was hibernated: its kept workspace was deleted.
    WorkspaceDeleted(Box<Workspace>),
    /// The chat had no active sandbox.
    AlreadyGone,
}

#[derive(Clone)]
pub struct StopSandbox {
    ports: Ports,
    guards: Arc<SessionGuards>,
}

impl StopSandbox {
    pub fn new(ports: Ports, guards: Arc<SessionGuards>) -> Self {
        Self { ports, guards }
    }

    /// Idempotent: a chat without a sandbox is `AlreadyGone`, not an error.
    ///
    /// # Errors
    /// `StopSandboxError`: the runtime could not remove it (the session stays
    /// active, so a retry or cleanup finishes the job), or the store failed.
    pub async fn execute(&self, chat: &ChatId) -> Result<StopResult, StopSandboxError> {
        Step::new(
            self.ports.tracer.as_ref(),
            span::STOP_SANDBOX,
            SpanKind::Internal,
        )
        .chat(chat)
        .attr(key::OPERATION, op::STOP)
        .run(
            |_| async {
                let _lock = self.guards.lock_chat(chat).await;
                let Some(session) = self.ports.store.get_active(chat).await? else {
                    return self.delete_kept(chat).await;
                };
                self.ports.runtime.stop(&SandboxRef::from(&session)).await?;
                let now = self.ports.clock.now();
                self.ports
                    .store
                    .end(&session.id, EndReason::Stopped, now, WorkspaceFate::Delete)
                    .await?;
                workspaces::delete::<StopSandboxError>(&self.ports, &session.workspace_id).await?;
                Ok(StopResult::Stopped(Box::new(session)))
            },
            |stopped, span| match stopped {
                StopResult::Stopped(s) => {
                    record_session(span, s);
                    span.set_attribute(key::RESULT, result::STOPPED.into());
                }
                StopResult::WorkspaceDeleted(w) => {
                    span.set_attribute(key::WORKSPACE_ID, w.id.to_string().into());
                    span.set_attribute(key::RESULT, result::STOPPED.into());
                }
                StopResult::AlreadyGone => {
                    span.set_attribute(key::RESULT, result::ALREADY_GONE.into());
                }
            },
        )
        .await
    }

    /// A chat with no active session: its hibernated workspace, if any, goes.
    async fn delete_kept(&self, chat: &ChatId) -> Result<StopResult, StopSandboxError> {
        let Some(workspace) = self.ports.store.get_workspace(chat).await? else {
            return Ok(StopResult::AlreadyGone);
        };
        if !self.ports.store.retire_workspace(&workspace.id).await? {
            return Ok(StopResult::AlreadyGone);
        }
        workspaces::delete::<StopSandboxError>(&self.ports, &workspace.id).await?;
        Ok(StopResult::WorkspaceDeleted(Box::new(workspace)))
    }
}
