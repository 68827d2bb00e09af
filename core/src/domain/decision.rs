//! The create / reuse / replace decision of DESIGN section 2, as pure functions.
//!
//! `precheck` decides what can be decided from the store's row alone (no
//! session, expired, spec changed); only when it returns `None` does the
//! container's state matter, and `decide` takes it.

use super::policy::Policy;
use super::session::{EndReason, Session, Timestamp};
use super::spec::SpecHash;

/// What the runtime says about a session's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    Exited,
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceReason {
    Expired,
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
            Self::Expired => EndReason::Expired,
            Self::ContainerGone => EndReason::ContainerGone,
            Self::SpecChanged => EndReason::SpecChanged,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Create,
    Reuse,
    Replace(ReplaceReason),
}

/// Decides without the runtime where the row suffices.
///
/// `wanted` is the spec the caller asks for; `None` means "whatever the chat
/// already has" (exec and file calls never replace a sandbox over its spec).
pub fn precheck(
    active: Option<&Session>,
    wanted: Option<&SpecHash>,
    policy: &Policy,
    now: Timestamp,
) -> Option<Decision> {
    let Some(session) = active else {
        return Some(Decision::Create);
    };
    if policy.is_expired(session, now) {
        return Some(Decision::Replace(ReplaceReason::Expired));
    }
    if wanted.is_some_and(|w| *w != session.spec_hash) {
        return Some(Decision::Replace(ReplaceReason::SpecChanged));
    }
    None
}

/// The full decision, given what the runtime says about the container.
pub fn decide(
    active: Option<&Session>,
    wanted: Option<&SpecHash>,
    policy: &Policy,
    now: Timestamp,
    container: ContainerState,
) -> Decision {
    precheck(active, wanted, policy, now).unwrap_or(match container {
        ContainerState::Running => Decision::Reuse,
        ContainerState::Exited | ContainerState::Missing => {
            Decision::Replace(ReplaceReason::ContainerGone)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{ChatId, SessionId, SessionStatus, SpecOverrides};

    fn session(hash: &str, created_min_ago: i64, expires_in_min: i64, now: Timestamp) -> Session {
        Session {
            id: SessionId::new(),
            chat_id: ChatId::parse("c").unwrap(),
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

    #[test]
    fn every_row_of_the_table() {
        let policy = Policy::default();
        let now = chrono::Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let same = SpecHash::from_stored("aaa");
        let other = SpecHash::from_stored("bbb");
        let live = session("aaa", 10, 20, now);
        let idle = session("aaa", 40, 0, now);
        let old = session("aaa", 24 * 60, 20, now);
        use ContainerState::*;
        let rows: [(
            Option<&Session>,
            Option<&SpecHash>,
            ContainerState,
            Decision,
        ); 9] = [
            (None, Some(&same), Missing, Decision::Create),
            (Some(&live), Some(&same), Running, Decision::Reuse),
            (Some(&live), None, Running, Decision::Reuse),
            (
                Some(&live),
                Some(&same),
                Missing,
                Decision::Replace(ReplaceReason::ContainerGone),
            ),
            (
                Some(&live),
                Some(&same),
                Exited,
                Decision::Replace(ReplaceReason::ContainerGone),
            ),
            (
                Some(&idle),
                Some(&same),
                Running,
                Decision::Replace(ReplaceReason::Expired),
            ),
            (
                Some(&old),
                Some(&same),
                Running,
                Decision::Replace(ReplaceReason::Expired),
            ),
            (
                Some(&live),
                Some(&other),
                Running,
                Decision::Replace(ReplaceReason::SpecChanged),
            ),
            (
                Some(&live),
                Some(&other),
                Missing,
                Decision::Replace(ReplaceReason::SpecChanged),
            ),
        ];
        for (active, wanted, state, expected) in rows {
            assert_eq!(
                decide(active, wanted, &policy, now, state),
                expected,
                "{active:?} {wanted:?} {state:?}"
            );
        }
        // Only the container rows need the runtime.
        assert_eq!(precheck(Some(&live), Some(&same), &policy, now), None);
        assert_eq!(precheck(None, None, &policy, now), Some(Decision::Create));
    }
}
