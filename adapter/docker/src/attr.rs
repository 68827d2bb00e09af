//! Span names, attribute keys and operation values that only the Docker
//! adapter uses (DESIGN section 5); the shared ones live in
//! `sandboxer_core::trace::attr`.

/// Span names, one per port call.
pub mod span {
    pub const CREATE: &str = "DockerSandboxRuntime.create";
    pub const STOP: &str = "DockerSandboxRuntime.stop";
    pub const LIST: &str = "DockerSandboxRuntime.list_active_sessions";
    pub const DELETE_WORKSPACE: &str = "DockerSandboxRuntime.delete_workspace";
    pub const LIST_WORKSPACES: &str = "DockerSandboxRuntime.list_workspaces";
    pub const INSPECT: &str = "DockerSandboxRuntime.inspect";
    pub const EXEC: &str = "DockerSandboxRuntime.exec";
    pub const PUT_FILE: &str = "DockerSandboxRuntime.put_file";
    pub const GET_FILE: &str = "DockerSandboxRuntime.get_file";
    pub const LIST_FILES: &str = "DockerSandboxRuntime.list_files";
    pub const START_PROCESS: &str = "DockerSandboxRuntime.start_process";
    pub const LIST_PROCESSES: &str = "DockerSandboxRuntime.list_processes";
    pub const PROCESS_STATUS: &str = "DockerSandboxRuntime.process_status";
    pub const WRITE_STDIN: &str = "DockerSandboxRuntime.write_stdin";
    pub const SIGNAL_PROCESS: &str = "DockerSandboxRuntime.signal_process";
    pub const KILL_PROCESS: &str = "DockerSandboxRuntime.kill_process";
    pub const RESIZE_PTY: &str = "DockerSandboxRuntime.resize_pty";
    pub const PREPARE: &str = "DockerSandboxRuntime.prepare";
    pub const FINGERPRINT: &str = "DockerSandboxRuntime.fingerprint";
}

/// Docker-specific attribute keys.
pub mod key {
    pub const IMAGE_NAME: &str = "container.image.name";
    /// The node (Docker Engine) a call went to, when there are several.
    pub const NODE: &str = "sandbox.node";
    pub const RUNTIME: &str = "container.runtime";
    /// How a timed-out exec was killed (`kill` values below).
    pub const EXEC_KILL: &str = "sandbox.exec.kill";
    /// Whether `inspect` answered from the liveness cache (no engine call).
    pub const INSPECT_CACHED: &str = "sandbox.inspect.cached";
    /// How an exec or file call reached the sandbox (`via` values below).
    pub const EXEC_VIA: &str = "sandbox.exec.via";
    /// Whether a create's workspace is new or the chat's kept one
    /// (`workspace` values below).
    pub const WORKSPACE_USE: &str = "sandbox.workspace.use";
    /// Workspaces `list_workspaces` returned.
    pub const WORKSPACES_COUNT: &str = "sandbox.workspaces.count";
    /// Whether `list_workspaces` was asked for sizes and got them.
    pub const WORKSPACES_MEASURED: &str = "sandbox.workspaces.measured";
    /// The bytes of every workspace listed, when measured.
    pub const WORKSPACES_BYTES: &str = "sandbox.workspaces.bytes";
}

/// `sandbox.workspace.use` values.
pub mod workspace {
    /// Made for this create (removed again should it fail).
    pub const FRESH: &str = "fresh";
    /// The chat's existing workspace (never removed by a create).
    pub const KEPT: &str = "kept";
}

/// `sandbox.exec.via` values.
pub mod via {
    /// Over the sandbox agent's attach stream.
    pub const AGENT: &str = "agent";
    /// Through `docker exec` and the archive API (a sandbox without the agent).
    pub const DOCKER: &str = "docker";
}

/// `sandbox.operation` values of this adapter.
pub mod op {
    pub const CREATE: &str = "docker.create";
    pub const STOP: &str = "docker.stop";
    pub const LIST: &str = "docker.list";
    pub const DELETE_WORKSPACE: &str = "docker.delete_workspace";
    pub const LIST_WORKSPACES: &str = "docker.list_workspaces";
    pub const INSPECT: &str = "docker.inspect";
    pub const EXEC: &str = "docker.exec";
    pub const PUT_FILE: &str = "docker.put_file";
    pub const GET_FILE: &str = "docker.get_file";
    pub const LIST_FILES: &str = "docker.list_files";
    pub const START_PROCESS: &str = "docker.start_process";
    pub const LIST_PROCESSES: &str = "docker.list_processes";
    pub const PROCESS_STATUS: &str = "docker.process_status";
    pub const WRITE_STDIN: &str = "docker.write_stdin";
    pub const SIGNAL_PROCESS: &str = "docker.signal_process";
    pub const KILL_PROCESS: &str = "docker.kill_process";
    pub const RESIZE_PTY: &str = "docker.resize_pty";
    pub const PREPARE: &str = "docker.prepare";
    pub const FINGERPRINT: &str = "docker.fingerprint";
}

/// `sandbox.result` value of a create that found the session's container
/// already made by another process.
pub const RESULT_ADOPTED: &str = "adopted";

/// `sandbox.exec.kill` values.
pub mod kill {
    /// The sandbox agent killed the command's group and swept the rest.
    pub const AGENT: &str = "agent";
    /// A second exec inside the sandbox stopped and killed the tree.
    pub const IN_SANDBOX: &str = "in_sandbox";
    /// The tree was killed by host pid (local engine, pids exhausted).
    pub const HOST_PID: &str = "host_pid";
    /// Nothing else worked: the container was restarted.
    pub const RESTART: &str = "restart";
    /// Every attempt failed; processes may be left.
    pub const FAILED: &str = "failed";
}
