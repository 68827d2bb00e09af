//! The sandbox agent (DESIGN section 9) on Docker: its binary in one
//! read-only named volume per agent build (`volume`), one attach stream per
//! sandbox carrying the agent protocol (`channel`), and the port's exec and
//! file calls over it (`calls`), and its live processes (`processes`).

mod calls;
mod channel;
mod processes;
mod volume;

#[cfg(feature = "testing")]
pub(crate) use channel::open_channel;
pub(crate) use channel::{Channels, Via};

/// Where the agent's volume is mounted in a sandbox.
pub(crate) const AGENT_DIR: &str = "/opt/sandboxer";
/// The agent inside a sandbox: its entrypoint and PID 1.
pub(crate) const AGENT_PROGRAM: &str = "/opt/sandboxer/sandboxer-agent";
/// On a sandbox started with the agent: the agent build's digest.
pub(crate) const LABEL_AGENT: &str = "sandboxer.agent";

/// The agent binary the service puts into its sandboxes, named by its
/// digest (SHA-256, hex).
#[derive(Clone)]
pub struct AgentBinary {
    bytes: &'static [u8],
    digest: String,
}

impl AgentBinary {
    /// # Panics
    /// When `digest` is not 64 hex digits (it names volumes and labels).
    pub fn new(bytes: &'static [u8], digest: impl Into<String>) -> Self {
        let digest = digest.into();
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "an agent digest is 64 hex digits, got {digest:?}"
        );
        Self { bytes, digest }
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub(crate) fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// The volume holding this build: one per build, shared by every sandbox.
    pub(crate) fn volume_name(&self) -> String {
        format!("sandboxer-agent-{}", &self.digest[..16])
    }
}

impl std::fmt::Debug for AgentBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBinary")
            .field("digest", &self.digest)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl PartialEq for AgentBinary {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for AgentBinary {}
