//! `StopSandbox`: stop and remove a chat's sandbox and end its session.

use std::sync::Arc;

use crate::domain::{ChatId, EndReason, Session};
use crate::port::SandboxRef;
use crate::port::tracer::SpanKind;
use crate::trace::{Step, attr::key, attr::op, attr::result, attr::span, record_session};

use super::Ports;
use super::errors::StopSandboxError;
use super::guards::SessionGuards;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopResult {
    Stopped(Box<Session>),
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
                    return Ok(StopResult::AlreadyGone);
                };
                self.ports.runtime.stop(&SandboxRef::from(&session)).await?;
                let now = self.ports.clock.now();
                self.ports
                    .store
                    .end(&session.id, EndReason::Stopped, now)
                    .await?;
                Ok(StopResult::Stopped(Box::new(session)))
            },
            |stopped, span| match stopped {
                StopResult::Stopped(s) => {
                    record_session(span, s);
                    span.set_attribute(key::RESULT, result::STOPPED.into());
                }
                StopResult::AlreadyGone => {
                    span.set_attribute(key::RESULT, result::ALREADY_GONE.into());
                }
            },
        )
        .await
    }
}
