//! How the adapter reaches the Docker Engine and how long it waits for it.

use std::time::Duration;

use crate::agent::AgentBinary;

/// Settings of `DockerSandboxRuntime`. `Default` gives the values below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// Engine address: `unix:///path/docker.sock`, a bare socket path, or
    /// `tcp://host:port`. `None` means `DOCKER_HOST`, else the local socket.
    pub host: Option<String>,
    /// Bound on every single call to the engine (default 30 s). bollard's own
    /// timeout covers only response headers, so each call is also wrapped.
    pub call_timeout: Duration,
    /// Grace given to the sandbox's processes on `stop` before they are
    /// killed (default 0: the container is removed with force at once). The
    /// workspace outlives the stop, so a grace lets a process finish a
    /// write the next sandbox on the workspace will read, at the cost of a
    /// slower stop (hibernation, replacement).
    pub stop_grace: Duration,
    /// Time allowed, after an exec's own timeout, to kill its process tree
    /// and collect what it printed (default 5 s).
    pub exec_kill_grace: Duration,
    /// When the engine is local (a unix socket) and this process may signal
    /// the container's processes, an exec that cannot be killed from inside
    /// (pids exhausted) is killed by host pid (default true).
    pub host_kill: bool,
    /// Last resort when an exec's processes survive every kill: restart the
    /// container (the workspace volume survives; `/tmp` and background
    /// processes do not). Default true: a sandbox stuck at its pids limit is
    /// worse than one restarted.
    pub restart_on_failed_kill: bool,
    /// The service instance these sandboxes belong to: created sandboxes are
    /// labelled `sandboxer.instance=<id>` and only those are listed, so
    /// services (or test runs) sharing one engine never touch each other's.
    /// `None`: no such label; every sandbox labelled as ours is listed.
    pub instance: Option<String>,
    /// Answer `inspect` of a running sandbox from memory while the engine's
    /// event stream is connected (default true): a real inspect or our own
    /// start records it running, and any event that may end that (die, kill,
    /// stop, destroy, ...) or a break in the stream forgets it. Off: every
    /// inspect asks the engine.
    pub liveness_cache: bool,
    /// Largest file `get_file` returns (default 64 MiB): it is held in
    /// memory, so a sandbox must not be able to make the service load more.
    pub max_download_bytes: u64,
    /// The agent put into new sandboxes as their PID 1, through which exec
    /// and files go (DESIGN section 9). `None`: sandboxes are made without
    /// it (docker-init and the spec's keepalive) and reached through
    /// `docker exec` and the archive API, as those made before the agent.
    pub agent: Option<AgentBinary>,
    /// The node this engine is, when the service has several
    /// (`DockerNodes`): sandboxes and volumes are labelled
    /// `sandboxer.node=<name>` and spans carry `sandbox.node`.
    pub node: Option<String>,
    /// TLS client files for a `tcp://` engine (the engine verifies the
    /// client, the client the engine). The event stream is plain HTTP, so
    /// such an engine runs without the liveness cache.
    pub tls: Option<TlsFiles>,
}

/// A TLS client's key, certificate and the CA the engine's is signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            host: None,
            call_timeout: Duration::from_secs(30),
            stop_grace: Duration::ZERO,
            exec_kill_grace: Duration::from_secs(5),
            host_kill: true,
            restart_on_failed_kill: true,
            instance: None,
            liveness_cache: true,
            max_download_bytes: 64 * 1024 * 1024,
            agent: None,
            node: None,
            tls: None,
        }
    }
}

/// The engine address in force: the config's, else `DOCKER_HOST`, else the
/// default socket.
pub(crate) fn resolve_host(config: &DockerConfig) -> String {
    config
        .host
        .clone()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|h| !h.trim().is_empty())
        })
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned())
}
