//! The warm pool (DESIGN section 11): sandboxes of the default spec started
//! ahead, each on a fresh workspace and with no chat, handed to new chats.

use std::fmt;

use super::ids::{ContainerId, SessionId, WorkspaceId};
use super::session::Timestamp;
use super::spec::{SandboxSpec, SpecHash};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolStatus {
    /// The row exists, the container may not yet.
    Warming,
    /// Started and answering: can be claimed.
    Ready,
}

impl PoolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warming => "warming",
            Self::Ready => "ready",
        }
    }
}

impl std::str::FromStr for PoolStatus {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        [Self::Warming, Self::Ready]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown pool status {raw:?}"))
    }
}

impl fmt::Display for PoolStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A warm sandbox as the store keeps it. Its session id is the one its
/// container is labelled with; a claim turns it into that chat's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMember {
    pub session_id: SessionId,
    pub workspace_id: WorkspaceId,
    pub container_id: Option<ContainerId>,
    pub image: String,
    pub spec_hash: SpecHash,
    /// What the runtime built it from (image id, agent build): a member
    /// whose fingerprint is not the current one is drained.
    pub fingerprint: String,
    pub created_at: Timestamp,
    pub status: PoolStatus,
}

/// Whether a chat's spec can take a warm sandbox: it differs from the
/// pool's (the defaults) in env alone, which the agent applies at claim.
pub fn claimable(wanted: &SandboxSpec, pool: &SandboxSpec) -> bool {
    let mut without_env = wanted.clone();
    without_env.env.clone_from(&pool.env);
    without_env.hash() == pool.hash()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_alone_is_claimable_anything_else_is_not() {
        let pool = SandboxSpec::with_defaults("img:1");
        let mut env = pool.clone();
        env.env.insert("A".into(), "1".into());
        assert!(claimable(&pool, &pool));
        assert!(claimable(&env, &pool));
        let mut image = pool.clone();
        image.image = "img:2".into();
        assert!(!claimable(&image, &pool));
        let mut runtime = pool.clone();
        runtime.runtime = "runsc".into();
        assert!(!claimable(&runtime, &pool));
    }
}
