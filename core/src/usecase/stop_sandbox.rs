//! `StopSandbox`: stop and remove a chat's sandbox and end its session.

use std::sync::Arc;

use crate::domain::{ChatId, EndReason, Session, rfc3339};
use crate::port::SandboxRef;
use crate::port::tracer::{self, SpanKind};
use crate::trace::{self, attr::key, attr::op, attr::result, attr::span, mark_failed};

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
        let mut span = tracer::start(
            self.ports.tracer.as_ref(),
            span::STOP_SANDBOX,
            SpanKind::Internal,
        );
        span.set_attribute(key::CHAT_ID, chat.to_string().into());
        span.set_attribute(key::OPERATION, op::STOP.into());
        let ctx = trace::context_of(span.as_ref());
        let ran = trace::in_context(ctx, async {
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
        })
        .await;
        match &ran {
            Ok(StopResult::Stopped(s)) => {
                span.set_attribute(key::SESSION_ID, s.id.to_string().into());
                if let Some(c) = &s.container_id {
                    span.set_attribute(key::CONTAINER_ID, c.to_string().into());
                }
                span.set_attribute(key::EXPIRES_AT, rfc3339(s.expires_at).into());
                span.set_attribute(key::RESULT, result::STOPPED.into());
            }
            Ok(StopResult::AlreadyGone) => {
                span.set_attribute(key::RESULT, result::ALREADY_GONE.into());
            }
            Err(err) => mark_failed(span.as_mut(), err),
        }
        span.end();
        ran
    }
}
