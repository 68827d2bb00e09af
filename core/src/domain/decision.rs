//! The create / resume / reuse / replace decision of DESIGN section 2, as
//! pure functions.
//!
//! `decide` settles what the store's rows alone can (no session, a kept
//! workspace, abandoned create, past max lifetime, spec changed); only when
//! it answers `AskRuntime` does the container's state matter, and
//! `on_container` takes it. Every rule is here once; the use case runs one
//! step per decision.

use super::policy::Policy;
use super::session::{EndReason, Session, SessionStatus, Timestamp};
use super::spec::SpecHash;
use super::workspace::{Workspace, WorkspaceStatus};

/// What the runtime says about a session's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    Exited,
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceReason {
    MaxLifetime,
    ContainerGone,
    SpecChanged,
}

impl ReplaceReason {
    pub fn as_str(self) -> &'static str {
        self.end_reason().as_str()
    }

    /// The old session ends with the reason it was replaced for.
    pub fn end_reason(self) -> EndReason {
        match self {
            Self::MaxLifetime => EndReason::MaxLifetime,
            Self::ContainerGone => EndReason::ContainerGone,
            Self::SpecChanged => EndReason::SpecChanged,
        }
    }
}

/// What to do with a chat's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// No active session and no kept workspace: a new session on a fresh one.
    Create,
    /// No active session, a kept workspace: a new session on it.
    Resume(&'a Workspace),
    /// The active session serves: extend it.
    Reuse(&'a Session),
    /// A new session on the same workspace replaces the active one, which
    /// ends with the reason.
    Replace(&'a Session, ReplaceReason),
}

/// What the store's rows alone decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    Decided(Decision<'a>),
    /// Only the container's state can tell reuse from replace: ask the
    /// runtime, then `on_container`.
    AskRuntime(&'a Session),
}

/// Decides from the chat's active session and its live workspace as the
/// store has them.
///
/// `wanted` is the spec the caller asks for; `None` means "whatever the chat
/// already has" (exec and file calls never replace a sandbox over its spec).
/// A session still `creating` here was waited for and abandoned: its
/// process died mid-create, so its container counts as gone. A session
/// whose idle TTL passed is still reused while its container runs (cleanup
/// has not come yet): it holds the chat's files and processes.
pub fn decide<'a>(
    active: Option<&'a Session>,
    workspace: Option<&'a Workspace>,
    wanted: Option<&SpecHash>,
    policy: &Policy,
    now: Timestamp,
) -> Verdict<'a> {
    let Some(session) = active else {
        return Verdict::Decided(match workspace {
            Some(kept) if kept.status == WorkspaceStatus::Live => Decision::Resume(kept),
            _ => Decision::Create,
        });
    };
    let replace = |reason| Verdict::Decided(Decision::Replace(session, reason));
    if session.status == SessionStatus::Creating {
        return replace(ReplaceReason::ContainerGone);
    }
    if policy.is_past_lifetime(session, now) {
        return replace(ReplaceReason::MaxLifetime);
    }
    if wanted.is_some_and(|w| *w != session.spec_hash) {
        return replace(ReplaceReason::SpecChanged);
    }
    Verdict::AskRuntime(session)
}

/// The rest of the decision, once the runtime told the container's state.
pub fn on_container(session: &Session, container: ContainerState) -> Decision<'_> {
    match container {
        ContainerState::Running => Decision::Reuse(session),
        ContainerState::Exited | ContainerState::Missing => {
            Decision::Replace(session, ReplaceReason::ContainerGone)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{ChatId, SessionId, SessionStatus, SpecOverrides, WorkspaceId};

    fn session(hash: &str, created_min_ago: i64, expires_in_min: i64, now: Timestamp) -> Session {
        Session {
            id: SessionId::new(),
            chat_id: ChatId::parse("c").unwrap(),
            workspace_id: WorkspaceId::new(),
            container_id: None,
            image: "img".into(),
            spec_hash: SpecHash::from_stored(hash),
            overrides: SpecOverrides::default(),
            generation: 1,
            idle_ttl: Duration::from_secs(1800),
            created_at: now - chrono::Duration::minutes(created_min_ago),
            last_used_at: now,
            expires_at: now + chrono::Duration::minutes(expires_in_min),
            status: SessionStatus::Running,
            end_reason: None,
            ended_at: None,
        }
    }

    /// The decision in full, as a caller sees it: the row first, then the
    /// container when the row cannot tell.
    fn full(
        active: Option<&Session>,
        wanted: Option<&SpecHash>,
        now: Timestamp,
        container: ContainerState,
    ) -> (Option<ReplaceReason>, bool) {
        let decision = match decide(active, None, wanted, &Policy::default(), now) {
            Verdict::Decided(d) => d,
            Verdict::AskRuntime(s) => on_container(s, container),
        };
        match decision {
            Decision::Create | Decision::Resume(_) => (None, false),
            Decision::Reuse(_) => (None, true),
            Decision::Replace(_, reason) => (Some(reason), false),
        }
    }

    fn kept(status: WorkspaceStatus, now: Timestamp) -> Workspace {
        Workspace {
            id: WorkspaceId::new(),
            chat_id: ChatId::parse("c").unwrap(),
            created_at: now,
            created_by: SessionId::new(),
            status,
            hibernated_at: Some(now),
            retained_until: Some(now + chrono::Duration::days(7)),
        }
    }

    #[test]
    fn no_session_resumes_a_live_workspace_and_creates_otherwise() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let policy = Policy::default();
        let live = kept(WorkspaceStatus::Live, now);
        let going = kept(WorkspaceStatus::Deleting, now);
        assert_eq!(
            decide(None, Some(&live), None, &policy, now),
            Verdict::Decided(Decision::Resume(&live))
        );
        assert_eq!(
            decide(None, Some(&going), None, &policy, now),
            Verdict::Decided(Decision::Create)
        );
        // An active session wins over what the workspace says.
        let session = session("aaa", 10, 20, now);
        assert_eq!(
            decide(Some(&session), Some(&live), None, &policy, now),
            Verdict::AskRuntime(&session)
        );
    }

    #[test]
    fn every_row_of_the_table() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let same = SpecHash::from_stored("aaa");
        let other = SpecHash::from_stored("bbb");
        let live = session("aaa", 10, 20, now);
        let idle = session("aaa", 40, 0, now);
        let old = session("aaa", 24 * 60, 20, now);
        let abandoned = Session {
            status: SessionStatus::Creating,
            ..live.clone()
        };
        use ContainerState::*;
        use ReplaceReason::*;
        const CREATE: (Option<ReplaceReason>, bool) = (None, false);
        const REUSE: (Option<ReplaceReason>, bool) = (None, true);
        let rows: [(Option<&Session>, Option<&SpecHash>, ContainerState, _); 12] = [
            (None, Some(&same), Missing, CREATE),
            (None, None, Running, CREATE),
            (Some(&live), Some(&same), Running, REUSE),
            (Some(&live), None, Running, REUSE),
            (
                Some(&live),
                Some(&same),
                Missing,
                (Some(ContainerGone), false),
            ),
            (
                Some(&live),
                Some(&same),
                Exited,
                (Some(ContainerGone), false),
            ),
            // Idle TTL passed, cleanup not there yet: still reused.
            (Some(&idle), Some(&same), Running, REUSE),
            (
                Some(&idle),
                Some(&same),
                Missing,
                (Some(ContainerGone), false),
            ),
            (Some(&old), Some(&same), Running, (Some(MaxLifetime), false)),
            (
                Some(&live),
                Some(&other),
                Running,
                (Some(SpecChanged), false),
            ),
            (
                Some(&live),
                Some(&other),
                Missing,
                (Some(SpecChanged), false),
            ),
            (
                Some(&abandoned),
                Some(&same),
                Running,
                (Some(ContainerGone), false),
            ),
        ];
        for (active, wanted, state, expected) in rows {
            assert_eq!(
                full(active, wanted, now, state),
                expected,
                "{active:?} {wanted:?} {state:?}"
            );
        }
    }

    #[test]
    fn only_a_live_session_of_the_wanted_spec_asks_the_runtime() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let policy = Policy::default();
        let live = session("aaa", 10, 20, now);
        let same = SpecHash::from_stored("aaa");
        assert_eq!(
            decide(Some(&live), None, Some(&same), &policy, now),
            Verdict::AskRuntime(&live)
        );
        assert_eq!(
            decide(Some(&live), None, None, &policy, now),
            Verdict::AskRuntime(&live)
        );
        assert_eq!(
            decide(None, None, None, &policy, now),
            Verdict::Decided(Decision::Create)
        );
        let replaced = Decision::Replace(&live, ReplaceReason::ContainerGone);
        assert_eq!(on_container(&live, ContainerState::Exited), replaced);
        assert_eq!(
            on_container(&live, ContainerState::Running),
            Decision::Reuse(&live)
        );
    }
}
