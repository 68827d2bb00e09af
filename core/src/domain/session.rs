//! A session: one sandbox incarnation of one chat, as the store keeps it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ids::{ChatId, ContainerId, SessionId, WorkspaceId};
use super::spec::{SpecHash, SpecOverrides};

/// Instants are UTC everywhere; they are shown as RFC 3339 at the edges.
pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    /// The row exists, the container may not yet.
    Creating,
    Running,
    Ended,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Running => "running",
            Self::Ended => "ended",
        }
    }

    /// `creating` and `running` sessions are active: at most one per chat.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Ended)
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Idle TTL passed and the workspace went with it (retention 0).
    Expired,
    /// Idle TTL passed: the container went, the workspace is kept.
    Hibernated,
    /// Max lifetime passed: a new session took over the workspace.
    MaxLifetime,
    /// The container was missing or exited.
    ContainerGone,
    /// A different image, limits or runtime were asked for.
    SpecChanged,
    /// A caller stopped it.
    Stopped,
    /// The runtime refused to create it.
    CreateFailed,
    /// The process creating it died before finishing.
    CreateInterrupted,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Hibernated => "hibernated",
            Self::MaxLifetime => "max_lifetime",
            Self::ContainerGone => "container_gone",
            Self::SpecChanged => "spec_changed",
            Self::Stopped => "stopped",
            Self::CreateFailed => "create_failed",
            Self::CreateInterrupted => "create_interrupted",
        }
    }
}

macro_rules! parse_by_name {
    ($ty:ty, [$($variant:expr),+ $(,)?]) => {
        impl FromStr for $ty {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                [$($variant),+]
                    .into_iter()
                    .find(|v| v.as_str() == raw)
                    .ok_or_else(|| format!("unknown {} {raw:?}", stringify!($ty)))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

parse_by_name!(SessionStatus, [Self::Creating, Self::Running, Self::Ended]);
parse_by_name!(
    EndReason,
    [
        Self::Expired,
        Self::Hibernated,
        Self::MaxLifetime,
        Self::ContainerGone,
        Self::SpecChanged,
        Self::Stopped,
        Self::CreateFailed,
        Self::CreateInterrupted,
    ]
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub chat_id: ChatId,
    /// The chat's files this session runs on.
    pub workspace_id: WorkspaceId,
    /// Known once the runtime created the container.
    pub container_id: Option<ContainerId>,
    pub image: String,
    pub spec_hash: SpecHash,
    /// What the caller chose over the defaults; a replacement keeps it.
    pub overrides: SpecOverrides,
    /// The chat's incarnation number: 1 for its first session, +1 per replacement.
    pub generation: u64,
    /// This session's idle TTL (the policy's default unless the caller chose one).
    pub idle_ttl: Duration,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub status: SessionStatus,
    pub end_reason: Option<EndReason>,
    pub ended_at: Option<Timestamp>,
}

impl Session {
    pub fn is_active(&self) -> bool {
        self.status.is_active()
    }
}

/// What the store needs to open a session; it assigns the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: SessionId,
    pub chat_id: ChatId,
    pub workspace: WorkspaceUse,
    pub image: String,
    pub spec_hash: SpecHash,
    pub overrides: SpecOverrides,
    pub idle_ttl: Duration,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The workspace a new session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceUse {
    /// A new workspace, made for this session; undoing the session's create
    /// deletes it.
    Fresh(WorkspaceId),
    /// The chat's kept workspace (a resume or a replacement); never deleted
    /// by an undone create.
    Kept(WorkspaceId),
}

impl WorkspaceUse {
    pub fn id(self) -> WorkspaceId {
        match self {
            Self::Fresh(id) | Self::Kept(id) => id,
        }
    }
}

/// RFC 3339 in UTC with milliseconds, the form shown at every edge.
pub fn rfc3339(at: Timestamp) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            SessionStatus::Creating,
            SessionStatus::Running,
            SessionStatus::Ended,
        ] {
            assert_eq!(s.as_str().parse::<SessionStatus>().unwrap(), s);
        }
        for r in [
            EndReason::Expired,
            EndReason::Hibernated,
            EndReason::MaxLifetime,
            EndReason::ContainerGone,
            EndReason::CreateInterrupted,
        ] {
            assert_eq!(r.to_string().parse::<EndReason>().unwrap(), r);
        }
        assert!("zombie".parse::<SessionStatus>().is_err());
    }
}
