//! `HibernateSandbox`: hibernate a chat's sandbox now (`POST .../hibernate`):
//! its container goes, its workspace is kept until its retention passes,
//! and the next use resumes it.

use std::sync::Arc;

use crate::domain::{ChatId, Retention, Session};
use crate::port::tracer::SpanKind;
use crate::trace::{Step, attr::key, attr::op, attr::result, attr::span, record_session};

use super::Ports;
use super::errors::HibernateError;
use super::guards::SessionGuards;
use super::workspaces::{self, Slept};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HibernateResult {
    Hibernated(Box<Session>),
    /// The chat was hibernated already.
    AlreadyHibernated,
}

#[derive(Clone)]
pub struct HibernateSandbox {
    ports: Ports,
    guards: Arc<SessionGuards>,
    retention: Retention,
}

impl HibernateSandbox {
    pub fn new(ports: Ports, guards: Arc<SessionGuards>, retention: Retention) -> Self {
        Self {
            ports,
            guards,
            retention,
        }
    }

    /// # Errors
    /// `NoSandbox` when the chat has neither a sandbox nor a kept
    /// workspace, `Disabled` when retention is off, `Busy` while a call
    /// holds the sandbox (an exec, a transfer, an attached stream), the
    /// runtime's or the store's.
    pub async fn execute(&self, chat: &ChatId) -> Result<HibernateResult, HibernateError> {
        Step::new(
            self.ports.tracer.as_ref(),
            span::HIBERNATE_SANDBOX,
            SpanKind::Internal,
        )
        .chat(chat)
        .attr(key::OPERATION, op::HIBERNATE)
        .run(
            |_| self.hibernate(chat),
            |done, span| match done {
                HibernateResult::Hibernated(s) => {
                    record_session(span, s);
                    span.set_attribute(key::RESULT, result::HIBERNATED.into());
                }
                HibernateResult::AlreadyHibernated => {
                    span.set_attribute(key::RESULT, result::ALREADY_GONE.into());
                }
            },
        )
        .await
    }

    async fn hibernate(&self, chat: &ChatId) -> Result<HibernateResult, HibernateError> {
        if !self.retention.hibernates() {
            return Err(HibernateError::Disabled);
        }
        let _lock = self.guards.lock_chat(chat).await;
        let Some(session) = self.ports.store.get_active(chat).await? else {
            return match self.ports.store.get_workspace(chat).await? {
                Some(w) if w.is_hibernated() => Ok(HibernateResult::AlreadyHibernated),
                _ => Err(HibernateError::NoSandbox(chat.clone())),
            };
        };
        if self.guards.is_leased(&session.id) {
            return Err(HibernateError::Busy(chat.clone()));
        }
        match workspaces::put_to_sleep::<HibernateError>(&self.ports, &session, &self.retention)
            .await?
        {
            Slept::NotActive => Ok(HibernateResult::AlreadyHibernated),
            Slept::Hibernated | Slept::Deleted => {
                Ok(HibernateResult::Hibernated(Box::new(session)))
            }
        }
    }
}
