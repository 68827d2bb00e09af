//! `QuerySandboxes`: read-only views of the active sessions.

use std::sync::Arc;

use crate::domain::{ChatId, Session};
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
}
