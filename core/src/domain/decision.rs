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
