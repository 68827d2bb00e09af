//! `QuerySandboxes`: read-only views of the active sessions and the
//! hibernated chats.

use std::sync::Arc;

use crate::domain::{ChatId, Session, Workspace};
use crate::port::SessionStore;

use super::errors::QueryError;

#[derive(Clone)]
pub struct QuerySandboxes {
    store: Arc<dyn SessionStore>,
}

impl QuerySandboxes {
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self { store }
    }

    /// The chat's active session, if any.
    ///
    /// # Errors
    /// `QueryError::Store`.
    pub async fn active_of(&self, chat: &ChatId) -> Result<Option<Session>, QueryError> {
        Ok(self.store.get_active(chat).await?)
    }

    /// All active sessions, oldest first.
    ///
    /// # Errors
    /// `QueryError::Store`.
    pub async fn list_active(&self) -> Result<Vec<Session>, QueryError> {
        Ok(self.store.list_active().await?)
    }

    /// How many sessions are active (for the gauge).
    ///
    /// # Errors
    /// `QueryError::Store`.
    pub async fn count_active(&self) -> Result<u64, QueryError> {
        Ok(self.store.count_active().await?)
    }

    /// The chat's kept workspace when the chat is hibernated (no active
    /// session), with the session it last had; resumes nothing.
    ///
    /// # Errors
    /// `QueryError::Store`.
    pub async fn hibernated_of(
        &self,
        chat: &ChatId,
    ) -> Result<Option<(Workspace, Option<Session>)>, QueryError> {
        let Some(workspace) = self.store.get_workspace(chat).await? else {
            return Ok(None);
        };
        if !workspace.is_hibernated() {
            return Ok(None);
        }
        let last = self.store.get_latest(chat).await?;
        Ok(Some((workspace, last)))
    }

    /// Every hibernated chat's workspace, most recently hibernated first.
    ///
    /// # Errors
    /// `QueryError::Store`.
    pub async fn list_hibernated(&self) -> Result<Vec<Workspace>, QueryError> {
        let mut kept: Vec<Workspace> = self
            .store
            .list_workspaces()
            .await?
            .into_iter()
            .filter(Workspace::is_hibernated)
            .collect();
        kept.sort_by_key(|w| std::cmp::Reverse(w.hibernated_at));
        Ok(kept)
    }

    /// How many chats are hibernated (for the gauge).
    ///
    /// # Errors
    /// `QueryError::Store`.
    pub async fn count_hibernated(&self) -> Result<u64, QueryError> {
        Ok(self.store.count_hibernated().await?)
    }
}
