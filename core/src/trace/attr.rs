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
    pub const EXEC_TIMED_OUT: &str = "sandbox.exec.timed_out";
    pub const EXEC_TRUNCATED: &str = "sandbox.exec.truncated";
    pub const FILE_PATH: &str = "sandbox.file.path";
    pub const FILE_SIZE: &str = "sandbox.file.size";
    pub const CLEANUP_EXPIRED: &str = "sandbox.cleanup.expired";
    pub const CLEANUP_REMOVED: &str = "sandbox.cleanup.removed";
    pub const CLEANUP_FAILED: &str = "sandbox.cleanup.failed";
    pub const CLEANUP_ORPHANS_REMOVED: &str = "sandbox.cleanup.orphans_removed";
    pub const CLEANUP_CONTAINERS_GONE: &str = "sandbox.cleanup.containers_gone";
    pub const CLEANUP_SKIPPED: &str = "sandbox.cleanup.skipped";
    pub const RECONCILE_ADOPTED: &str = "sandbox.reconcile.adopted";
    pub const RECONCILE_UNDONE: &str = "sandbox.reconcile.undone";
    pub const ACTIVE_SESSIONS: &str = "sandbox.active_sessions";
    pub const STOP_ERROR: &str = "sandbox.replace.stop_error";
}

/// Span names of the use cases.
pub mod span {
    pub const CREATE_SANDBOX: &str = "CreateSandbox.execute";
    pub const CLEANUP: &str = "CleanupExpiredSandboxes.execute";
    pub const CLEANUP_SESSION: &str = "CleanupExpiredSandboxes.cleanup_session";
    pub const RECONCILE: &str = "Reconcile.execute";
    pub const EXEC: &str = "ExecInSandbox.execute";
    pub const PUT_FILE: &str = "PutFile.execute";
    pub const GET_FILE: &str = "GetFile.execute";
    pub const STOP_SANDBOX: &str = "StopSandbox.execute";
}

/// `sandbox.operation` values.
pub mod op {
    pub const CREATE: &str = "create";
    pub const CLEANUP: &str = "cleanup";
    pub const CLEANUP_SESSION: &str = "cleanup_session";
    pub const RECONCILE: &str = "reconcile";
    pub const EXEC: &str = "exec";
    pub const PUT_FILE: &str = "put_file";
    pub const GET_FILE: &str = "get_file";
    pub const STOP: &str = "stop";
}

/// `sandbox.result` values.
pub mod result {
    pub const CREATED: &str = "created";
    pub const REUSED: &str = "reused";
    pub const REPLACED: &str = "replaced";
    pub const STOPPED: &str = "stopped";
    pub const ALREADY_GONE: &str = "already_gone";
    pub const CLEANED: &str = "cleaned";
    pub const SKIPPED: &str = "skipped";
    pub const OK: &str = "ok";
    pub const FAILED: &str = "failed";
}

/// `error.type` values: short, low-cardinality, the same on spans and metrics.
pub mod error_type {
    pub const INVALID_CHAT_ID: &str = "invalid_chat_id";
    pub const INVALID_PATH: &str = "invalid_path";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const DOCKER_UNAVAILABLE: &str = "docker_unavailable";
    pub const IMAGE_NOT_FOUND: &str = "image_not_found";
    pub const CONFLICT: &str = "conflict";
    pub const TIMEOUT: &str = "timeout";
    pub const CONTAINER_GONE: &str = "container_gone";
    pub const FILE_NOT_FOUND: &str = "file_not_found";
    pub const NOT_A_FILE: &str = "not_a_file";
    pub const RUNTIME_ERROR: &str = "runtime_error";
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    pub const STORE_CONFLICT: &str = "store_conflict";
    pub const STORE_ERROR: &str = "store_error";
    pub const BUSY: &str = "busy";
    pub const INTERNAL: &str = "internal";
    // Refused at the HTTP edge, before any use case runs.
    pub const INVALID_JSON: &str = "invalid_json";
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const NO_SANDBOX: &str = "no_sandbox";
    pub const ROUTE_NOT_FOUND: &str = "route_not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
}
