//! The session store port. The store itself guarantees at most one active
//! session per chat; `begin_create` is the generation compare-and-swap.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::{
    ChatId, ContainerId, EndReason, NewSession, PoolMember, Session, SessionId, SpecHash,
    Timestamp, Workspace, WorkspaceFate, WorkspaceId,
};
use crate::trace::{ErrorType, attr::ErrorClass};

/// The active session a new one replaces, as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacing {
    pub session_id: SessionId,
    pub generation: u64,
    pub reason: EndReason,
}

/// A use: new `last_used_at`, `expires_at` and idle TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub idle_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The chat already has another active session, or the one being
    /// replaced changed since it was read.
    #[error("store conflict: {0}")]
    Conflict(String),
    /// The session is not in the state the operation needs.
    #[error("session {0} not found in the expected state")]
    NotFound(SessionId),
    /// The database cannot be reached, is locked or is read-only.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
    #[error("session store error: {0}")]
    Other(String),
}

impl ErrorType for StoreError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Conflict(_) => ErrorClass::StoreConflict,
            Self::Unavailable(_) => ErrorClass::StoreUnavailable,
            Self::NotFound(_) | Self::Other(_) => ErrorClass::StoreError,
        }
    }
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The chat's active (`creating` or `running`) session.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get_active(&self, chat: &ChatId) -> Result<Option<Session>, StoreError>;

    /// The chat's latest session (highest generation), in any status: what
    /// a resumed chat had (its spec, its TTL).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get_latest(&self, chat: &ChatId) -> Result<Option<Session>, StoreError>;

    /// A session in any status.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// All active sessions, oldest first.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_active(&self) -> Result<Vec<Session>, StoreError>;

    /// Active sessions with `expires_at <= now`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_expired(&self, now: Timestamp) -> Result<Vec<Session>, StoreError>;

    /// Number of active sessions.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn count_active(&self) -> Result<u64, StoreError>;

    /// Atomically ends `replacing` (if given, only while it is still active at
    /// its generation) and inserts `new` as `creating` with the chat's next
    /// generation, on its workspace: a `Fresh` one is inserted live for the
    /// chat; a `Kept` one must be the chat's live workspace and stops being
    /// hibernated. Returns the inserted session.
    ///
    /// # Errors
    /// `Conflict` when the chat has another active session, `replacing`
    /// moved on, a `Fresh` workspace meets a live one of the chat, or a
    /// `Kept` one is not the chat's live workspace; `Unavailable`, `Other`.
    async fn begin_create(
        &self,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError>;

    /// `creating` -> `running` with the container's id.
    ///
    /// # Errors
    /// `NotFound` unless the session is `creating`; `Unavailable`, `Other`.
    async fn mark_running(
        &self,
        id: &SessionId,
        container: &ContainerId,
    ) -> Result<Session, StoreError>;

    /// Records a use of an active session. `None` when it is no longer active.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn touch(&self, id: &SessionId, touch: Touch) -> Result<Option<Session>, StoreError>;

    /// Ends an active session and, in the same step, settles its workspace's
    /// `fate` (hibernated until a time, or marked `deleting`). `false` when
    /// it was not active (idempotent; the workspace is then left alone).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn end(
        &self,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError>;

    /// The chat's live workspace (a session runs on it, or it is hibernated).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn get_workspace(&self, chat: &ChatId) -> Result<Option<Workspace>, StoreError>;

    /// Every workspace row, live and `deleting`, oldest first.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError>;

    /// Hibernated workspaces (live, no session on them).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn count_hibernated(&self) -> Result<u64, StoreError>;

    /// Marks a hibernated workspace `deleting` (its volume goes next).
    /// `false` when it is not hibernated any more (a session took it over)
    /// or is gone; `true` also when it was `deleting` already.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn retire_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError>;

    /// Deletes a `deleting` workspace's row once its volume is gone.
    /// `false` when there was no such row.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn forget_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError>;

    /// Deletes sessions that ended before `before`, except each chat's
    /// latest one, which keeps the chat's generation counting up (ended rows
    /// would otherwise grow forever). Returns how many rows went.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Adds a warm pool member (as given, normally `warming`, before its
    /// container exists).
    ///
    /// # Errors
    /// `Conflict` when its session id is taken; `Unavailable`, `Other`.
    async fn add_pool_member(&self, member: &PoolMember) -> Result<(), StoreError>;

    /// `warming` -> `ready` with its container. `false` when the member is
    /// gone (drained meanwhile) or not `warming`.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn mark_pool_ready(
        &self,
        session: &SessionId,
        container: &ContainerId,
    ) -> Result<bool, StoreError>;

    /// Every pool member, oldest first.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn list_pool(&self) -> Result<Vec<PoolMember>, StoreError>;

    /// Removes a member. `false` when it was not there (claimed or drained).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn remove_pool_member(&self, session: &SessionId) -> Result<bool, StoreError>;

    /// Atomically takes the oldest `ready` member of `spec_hash` and
    /// `fingerprint` and makes it `new.chat_id`'s first session: the member
    /// row goes; a live workspace row (the member's workspace id, created by
    /// the member's session id) and a `running` session row (the member's
    /// session id and container, the chat's next generation, `new`'s image,
    /// spec hash, overrides, TTL and times) come. `new.id` and
    /// `new.workspace` are not used. `None` when no member fits. Two
    /// concurrent claims never take one member.
    ///
    /// # Errors
    /// `Conflict` when the chat has an active session or a live workspace
    /// (nothing is taken then); `Unavailable`, `Other`.
    async fn claim_pool_member(
        &self,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError>;

    /// The deployment whose sessions this store holds: fixed on first use
    /// and kept by the store, so the sandboxes labelled with it are told
    /// from another deployment's on the same runtime, wherever the store
    /// lives. The same on every call.
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn instance_id(&self) -> Result<String, StoreError>;

    /// Whether the store answers (readiness).
    ///
    /// # Errors
    /// `Unavailable`, `Other`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Releases the store's connections at shutdown; calls after it fail
    /// with `Unavailable`. Nothing to release by default.
    async fn close(&self) {}
}
