//! A workspace: a chat's files (its volume), kept across the chat's
//! sessions and through hibernation until its retention passes (DESIGN
//! section 1).

use std::time::Duration;

use super::ids::{ChatId, SessionId, WorkspaceId};
use super::session::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkspaceStatus {
    /// Kept: a session runs on it, or it is hibernated (`retained_until`).
    /// At most one per chat, enforced by the store.
    Live,
    /// Being removed: its volume goes, then its row.
    Deleting,
}

impl WorkspaceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Deleting => "deleting",
        }
    }
}

impl std::str::FromStr for WorkspaceStatus {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        [Self::Live, Self::Deleting]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown workspace status {raw:?}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub chat_id: ChatId,
    pub created_at: Timestamp,
    /// The session it was made for: undoing that session's create deletes it.
    pub created_by: SessionId,
    pub status: WorkspaceStatus,
    /// When its last session ended and nothing took over; `None` while a
    /// session runs on it.
    pub hibernated_at: Option<Timestamp>,
    /// When a hibernated workspace is deleted; `None` while a session runs on it.
    pub retained_until: Option<Timestamp>,
}

impl Workspace {
    /// Kept with no session on it.
    pub fn is_hibernated(&self) -> bool {
        self.status == WorkspaceStatus::Live && self.retained_until.is_some()
    }

    /// Hibernated and past its retention at `now`.
    pub fn is_past_retention(&self, now: Timestamp) -> bool {
        self.is_hibernated() && self.retained_until.is_some_and(|until| until <= now)
    }
}

/// What happens to a session's workspace when the session ends and no
/// other session takes it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceFate {
    /// Hibernated, kept until then.
    Keep { until: Timestamp },
    /// Marked `deleting`: the volume goes, then the row.
    Delete,
}

/// Retention when the operator sets none (DESIGN section 1).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Hibernated workspaces kept at most when the operator sets no cap.
pub const DEFAULT_MAX_HIBERNATED: u64 = 10_000;

/// How long a hibernated chat's workspace is kept, and how many are kept
/// at most (the oldest go first past the cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Zero: no hibernation (an idle sandbox is deleted, workspace and all).
    pub period: Duration,
    pub max_hibernated: u64,
}

impl Retention {
    pub fn hibernates(&self) -> bool {
        !self.period.is_zero() && self.max_hibernated > 0
    }

    /// What becomes of a workspace whose session ends at `now` with nothing
    /// taking over.
    pub fn fate_at(&self, now: Timestamp) -> WorkspaceFate {
        if self.hibernates() {
            WorkspaceFate::Keep {
                until: now + self.period,
            }
        } else {
            WorkspaceFate::Delete
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            period: DEFAULT_RETENTION,
            max_hibernated: DEFAULT_MAX_HIBERNATED,
        }
    }
}
