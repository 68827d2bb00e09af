//! Attribute keys, operation names, results and `error.type` values shared
//! by spans, logs and metrics (DESIGN section 5). Runtime-specific keys
//! live with their adapter.

/// Attribute keys.
pub mod key {
    pub const CHAT_ID: &str = "chat.id";
    pub const SESSION_ID: &str = "session.id";
    pub const CONTAINER_ID: &str = "container.id";
    pub const EXPIRES_AT: &str = "sandbox.expires_at";
    pub const OPERATION: &str = "sandbox.operation";
    pub const RESULT: &str = "sandbox.result";
    pub const REPLACE_REASON: &str = "sandbox.replace_reason";
    pub const ERROR_TYPE: &str = "error.type";
    pub const GENERATION: &str = "sandbox.generation";
    pub const EXIT_CODE: &str = "process.exit.code";
    /// A live process's id within its sandbox (DESIGN section 10).
    pub const PROCESS_ID: &str = "sandbox.process.id";
    pub const PROCESS_SIGNAL: &str = "sandbox.process.signal";
    pub const PROCESS_PTY: &str = "sandbox.process.pty";
    /// Bytes a follow stream delivered.
    pub const PROCESS_BYTES: &str = "sandbox.process.output_bytes";
    /// Bytes a process's stdin has taken in all.
    pub const STDIN_OFFSET: &str = "sandbox.process.stdin_offset";
    /// The process was ended by a kill.
    pub const PROCESS_KILLED: &str = "sandbox.process.killed";
    pub const EXEC_TIMED_OUT: &str = "sandbox.exec.timed_out";
    pub const EXEC_TRUNCATED: &str = "sandbox.exec.truncated";
    pub const FILE_PATH: &str = "sandbox.file.path";
    pub const FILE_SIZE: &str = "sandbox.file.size";
    /// Entries a directory listing returned.
    pub const FILES_COUNT: &str = "sandbox.files.count";
    pub const CLEANUP_EXPIRED: &str = "sandbox.cleanup.expired";
    pub const CLEANUP_REMOVED: &str = "sandbox.cleanup.removed";
    pub const CLEANUP_FAILED: &str = "sandbox.cleanup.failed";
    pub const CLEANUP_ORPHANS_REMOVED: &str = "sandbox.cleanup.orphans_removed";
    pub const CLEANUP_CONTAINERS_GONE: &str = "sandbox.cleanup.containers_gone";
    pub const CLEANUP_SKIPPED: &str = "sandbox.cleanup.skipped";
    pub const CLEANUP_HIBERNATED: &str = "sandbox.cleanup.hibernated";
    pub const CLEANUP_WORKSPACES_DELETED: &str = "sandbox.cleanup.workspaces_deleted";
    /// Whether a new chat got a warm sandbox: `hit`, `miss` or `off`.
    pub const POOL: &str = "sandbox.pool";
    /// Ready warm sandboxes after a refill.
    pub const POOL_SIZE: &str = "sandbox.pool.size";
    /// Warm sandboxes the pool keeps.
    pub const POOL_TARGET: &str = "sandbox.pool.target";
    pub const POOL_MADE: &str = "sandbox.pool.made";
    pub const POOL_DRAINED: &str = "sandbox.pool.drained";
    /// The chat's workspace (its volume) a session runs on.
    pub const WORKSPACE_ID: &str = "sandbox.workspace.id";
    pub const RECONCILE_ADOPTED: &str = "sandbox.reconcile.adopted";
    pub const RECONCILE_UNDONE: &str = "sandbox.reconcile.undone";
    pub const ACTIVE_SESSIONS: &str = "sandbox.active_sessions";
    pub const STOP_ERROR: &str = "sandbox.replace.stop_error";
    /// The tool an MCP `tools/call` named (its SERVER span, adapter/mcp).
    pub const MCP_TOOL_NAME: &str = "mcp.tool.name";
    /// The MCP method of that span (`tools/call`).
    pub const MCP_METHOD_NAME: &str = "mcp.method.name";
}

/// Span names of the use cases.
pub mod span {
    pub const CREATE_SANDBOX: &str = "CreateSandbox.execute";
    pub const CLEANUP: &str = "CleanupExpiredSandboxes.execute";
    pub const CLEANUP_SESSION: &str = "CleanupExpiredSandboxes.cleanup_session";
    /// A workspace past its retention (or the cap) removed by cleanup.
    pub const DELETE_WORKSPACE: &str = "CleanupExpiredSandboxes.delete_workspace";
    pub const RECONCILE: &str = "Reconcile.execute";
    pub const EXEC: &str = "ExecInSandbox.execute";
    pub const PUT_FILE: &str = "PutFile.execute";
    pub const GET_FILE: &str = "GetFile.execute";
    pub const LIST_FILES: &str = "ListFiles.execute";
    pub const STOP_SANDBOX: &str = "StopSandbox.execute";
    pub const HIBERNATE_SANDBOX: &str = "HibernateSandbox.execute";
    pub const POOL_CLAIM: &str = "WarmPool.claim";
    pub const POOL_REFILL: &str = "WarmPool.refill";
    pub const START_PROCESS: &str = "StartProcess.execute";
    /// A background process's end, seen by the service's watcher: a child
    /// of the start's span, ended when the process did.
    pub const PROCESS_EXITED: &str = "StartProcess.exited";
    pub const SIGNAL_PROCESS: &str = "SignalProcess.execute";
    pub const KILL_PROCESS: &str = "KillProcess.execute";
    /// One follow stream, from its first read to its end.
    pub const FOLLOW_OUTPUT: &str = "FollowProcessOutput.execute";
    pub const LIST_PROCESSES: &str = "ListProcesses.execute";
    pub const PROCESS_STATUS: &str = "ProcessStatus.execute";
    pub const WRITE_STDIN: &str = "WriteProcessStdin.execute";
    pub const RESIZE_PTY: &str = "ResizeProcessPty.execute";
}

/// `sandbox.operation` values.
pub mod op {
    pub const CREATE: &str = "create";
    pub const CLEANUP: &str = "cleanup";
    pub const CLEANUP_SESSION: &str = "cleanup_session";
    pub const POOL_CLAIM: &str = "pool_claim";
    pub const POOL_REFILL: &str = "pool_refill";
    /// A cleanup_session that keeps the workspace, and `HibernateSandbox`.
    pub const HIBERNATE: &str = "hibernate";
    /// A cleanup_session that removes the workspace too (retention 0), and
    /// the removal of a workspace past its retention.
    pub const DELETE: &str = "delete";
    pub const RECONCILE: &str = "reconcile";
    pub const EXEC: &str = "exec";
    pub const PUT_FILE: &str = "put_file";
    pub const GET_FILE: &str = "get_file";
    pub const LIST_FILES: &str = "list_files";
    pub const STOP: &str = "stop";
    pub const START_PROCESS: &str = "start_process";
    pub const PROCESS_EXITED: &str = "process_exited";
    pub const SIGNAL_PROCESS: &str = "signal_process";
    pub const KILL_PROCESS: &str = "kill_process";
    pub const FOLLOW_OUTPUT: &str = "follow_output";
    pub const LIST_PROCESSES: &str = "list_processes";
    pub const PROCESS_STATUS: &str = "process_status";
    pub const WRITE_STDIN: &str = "write_stdin";
    pub const RESIZE_PTY: &str = "resize_pty";
}

/// `sandbox.result` values.
pub mod result {
    pub const CREATED: &str = "created";
    pub const REUSED: &str = "reused";
    pub const REPLACED: &str = "replaced";
    pub const RESUMED: &str = "resumed";
    pub const HIBERNATED: &str = "hibernated";
    pub const STOPPED: &str = "stopped";
    pub const ALREADY_GONE: &str = "already_gone";
    pub const CLEANED: &str = "cleaned";
    pub const SKIPPED: &str = "skipped";
    pub const OK: &str = "ok";
    pub const FAILED: &str = "failed";
    /// A process ended (its exit code is `process.exit.code`).
    pub const EXITED: &str = "exited";
    /// A follow stream whose reader left before the process ended.
    pub const DETACHED: &str = "detached";
}

/// `error.type` values: short, low-cardinality, the same on spans and
/// metrics. An enum, so every place that maps them (HTTP status codes)
/// is checked by the compiler for a missing class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    InvalidChatId,
    InvalidPath,
    InvalidRequest,
    RuntimeUnavailable,
    ImageNotFound,
    Conflict,
    Timeout,
    ContainerGone,
    FileNotFound,
    NotAFile,
    NotADirectory,
    RuntimeError,
    StoreUnavailable,
    StoreConflict,
    StoreError,
    Busy,
    Internal,
    ProcessNotFound,
    TooManyProcesses,
    CursorExpired,
    /// An output or stdin offset the stream has not reached.
    InvalidOffset,
    /// The disk that holds the sandboxes or their workspaces is full.
    NoSpace,
    // Refused at the HTTP edge, before any use case runs.
    InvalidJson,
    BodyTooLarge,
    Unauthorized,
    NoSandbox,
    RouteNotFound,
    MethodNotAllowed,
    /// A WebSocket route called without the upgrade.
    UpgradeRequired,
    /// An operator route names a Docker node the service does not have.
    NodeNotFound,
}

impl ErrorClass {
    /// Every class, for documentation and exhaustive tests.
    pub const ALL: [Self; 30] = [
        Self::InvalidChatId,
        Self::InvalidPath,
        Self::InvalidRequest,
        Self::RuntimeUnavailable,
        Self::ImageNotFound,
        Self::Conflict,
        Self::Timeout,
        Self::ContainerGone,
        Self::FileNotFound,
        Self::NotAFile,
        Self::NotADirectory,
        Self::RuntimeError,
        Self::StoreUnavailable,
        Self::StoreConflict,
        Self::StoreError,
        Self::Busy,
        Self::Internal,
        Self::ProcessNotFound,
        Self::TooManyProcesses,
        Self::CursorExpired,
        Self::InvalidOffset,
        Self::NoSpace,
        Self::InvalidJson,
        Self::BodyTooLarge,
        Self::Unauthorized,
        Self::NoSandbox,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::UpgradeRequired,
        Self::NodeNotFound,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidChatId => "invalid_chat_id",
            Self::InvalidPath => "invalid_path",
            Self::InvalidRequest => "invalid_request",
            Self::RuntimeUnavailable => "runtime_unavailable",
            Self::ImageNotFound => "image_not_found",
            Self::Conflict => "conflict",
            Self::Timeout => "timeout",
            Self::ContainerGone => "container_gone",
            Self::FileNotFound => "file_not_found",
            Self::NotAFile => "not_a_file",
            Self::NotADirectory => "not_a_directory",
            Self::RuntimeError => "runtime_error",
            Self::StoreUnavailable => "store_unavailable",
            Self::StoreConflict => "store_conflict",
            Self::StoreError => "store_error",
            Self::Busy => "busy",
            Self::Internal => "internal",
            Self::ProcessNotFound => "process_not_found",
            Self::TooManyProcesses => "too_many_processes",
            Self::CursorExpired => "cursor_expired",
            Self::InvalidOffset => "invalid_offset",
            Self::NoSpace => "no_space",
            Self::InvalidJson => "invalid_json",
            Self::BodyTooLarge => "body_too_large",
            Self::Unauthorized => "unauthorized",
            Self::NoSandbox => "no_sandbox",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UpgradeRequired => "upgrade_required",
            Self::NodeNotFound => "node_not_found",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
