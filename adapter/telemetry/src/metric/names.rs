//! Every metric Sandboxer exports, with its labels. Durations are in
//! seconds; `error_type` carries the same values as the spans' `error.type`
//! (they are taken from the span, so they cannot drift apart).

/// Histogram of `CreateSandbox.execute`, label `result`
/// (`created`, `resumed`, `reused`, `replaced`, `failed`).
pub const CREATE_DURATION: &str = "sandboxer_create_duration_seconds";
/// Histogram of `ExecInSandbox.execute`, label `result`.
pub const EXEC_DURATION: &str = "sandboxer_exec_duration_seconds";
/// Histogram of `CleanupExpiredSandboxes.execute`, label `result`.
pub const CLEANUP_DURATION: &str = "sandboxer_cleanup_duration_seconds";
/// Histogram of every other span (other use cases, `DockerSandboxRuntime.*`,
/// store and HTTP spans), labels `operation` (the span name) and `result`.
/// An HTTP request's duration is its SERVER span's, `operation` =
/// `METHOD /route` (the only HTTP duration: the middleware records none).
pub const OPERATION_DURATION: &str = "sandboxer_operation_duration_seconds";
/// Counter of spans that ended with an error, labels `operation` (the span
/// name) and `error_type`.
pub const FAILURES: &str = "sandboxer_failures_total";
/// Gauge of active sandboxes, set by the app.
pub const ACTIVE_SANDBOXES: &str = "sandboxer_active_sandboxes";
/// Gauge of hibernated chats (workspace kept, no container), set by the app.
pub const HIBERNATED_SANDBOXES: &str = "sandboxer_sandboxes_hibernated";
/// Counter of idle sandboxes cleanup hibernated (its span's
/// `sandbox.cleanup.hibernated`).
pub const CLEANUP_HIBERNATED: &str = "sandboxer_cleanup_hibernated_total";
/// Counter of workspaces cleanup deleted: past their retention, past the
/// cap, or left half deleted (its span's `sandbox.cleanup.workspaces_deleted`).
pub const CLEANUP_WORKSPACES_DELETED: &str = "sandboxer_cleanup_workspaces_deleted_total";

/// Counter of new chats' creates by whether a warm sandbox served them,
/// label `result` (`hit`, `miss`; a pool that is off counts nothing).
pub const POOL_CLAIMS: &str = "sandboxer_pool_claims_total";
/// Gauge of ready warm sandboxes, as the latest refill left them.
pub const POOL_READY: &str = "sandboxer_pool_ready";
/// Counter of warm sandboxes a refill could not make or drain.
pub const POOL_REFILL_FAILURES: &str = "sandboxer_pool_refill_failures_total";
/// Gauge of the bytes the workspaces hold, where the engine tells them,
/// set by the app after each background cleanup.
pub const WORKSPACE_BYTES: &str = "sandboxer_workspaces_bytes";

/// Counter of live processes started (a repeated start of the same id
/// counts once).
pub const PROCESSES_STARTED: &str = "sandboxer_processes_started_total";
/// Counter of live processes killed through the API.
pub const PROCESSES_KILLED: &str = "sandboxer_processes_killed_total";
/// Gauge of live processes this service started that have not ended yet
/// (processes of an earlier run of the service are not counted).
pub const PROCESSES_RUNNING: &str = "sandboxer_processes_running";

/// Gauges of each Docker node (label `node`), when the service has several.
pub const NODE_UP: &str = "sandboxer_node_up";
pub const NODE_SANDBOXES: &str = "sandboxer_node_sandboxes";
pub const NODE_CAPACITY_SANDBOXES: &str = "sandboxer_node_capacity_sandboxes";
pub const NODE_MEMORY_BYTES: &str = "sandboxer_node_memory_bytes";
pub const NODE_CAPACITY_MEMORY_BYTES: &str = "sandboxer_node_capacity_memory_bytes";

/// Every family above with its type and HELP text: `describe` registers
/// these, and a test checks the rendered registry holds no other family.
pub const ALL: &[(&str, Kind, &str)] = &[
    (
        CREATE_DURATION,
        Kind::Histogram,
        "Duration of CreateSandbox (get-or-create), by result.",
    ),
    (
        EXEC_DURATION,
        Kind::Histogram,
        "Duration of ExecInSandbox, by result.",
    ),
    (
        CLEANUP_DURATION,
        Kind::Histogram,
        "Duration of one cleanup run, by result.",
    ),
    (
        OPERATION_DURATION,
        Kind::Histogram,
        "Duration of other operations (use cases, Docker and store calls, HTTP requests), by span name and result.",
    ),
    (
        FAILURES,
        Kind::Counter,
        "Operations that ended with an error, by span name and error.type.",
    ),
    (
        ACTIVE_SANDBOXES,
        Kind::Gauge,
        "Sandboxes currently active (creating or running).",
    ),
    (
        HIBERNATED_SANDBOXES,
        Kind::Gauge,
        "Chats currently hibernated: no container, workspace kept until its retention passes.",
    ),
    (
        CLEANUP_HIBERNATED,
        Kind::Counter,
        "Idle sandboxes cleanup hibernated (container removed, workspace kept).",
    ),
    (
        CLEANUP_WORKSPACES_DELETED,
        Kind::Counter,
        "Workspaces cleanup deleted (past retention, past the cap, or half deleted).",
    ),
    (
        POOL_CLAIMS,
        Kind::Counter,
        "New chats' creates by whether a warm sandbox served them (hit or miss).",
    ),
    (
        POOL_READY,
        Kind::Gauge,
        "Ready warm sandboxes after the latest refill.",
    ),
    (
        POOL_REFILL_FAILURES,
        Kind::Counter,
        "Warm sandboxes a refill could not make or drain.",
    ),
    (
        WORKSPACE_BYTES,
        Kind::Gauge,
        "Bytes held by the workspaces (active and hibernated), where the engine tells them.",
    ),
    (PROCESSES_STARTED, Kind::Counter, "Live processes started."),
    (
        PROCESSES_KILLED,
        Kind::Counter,
        "Live processes killed through the API.",
    ),
    (
        PROCESSES_RUNNING,
        Kind::Gauge,
        "Live processes this service started that have not ended yet.",
    ),
    (
        NODE_UP,
        Kind::Gauge,
        "1 while the Docker node answers its health check, else 0.",
    ),
    (
        NODE_SANDBOXES,
        Kind::Gauge,
        "Live sandboxes on the Docker node.",
    ),
    (
        NODE_CAPACITY_SANDBOXES,
        Kind::Gauge,
        "Sandboxes the Docker node may hold.",
    ),
    (
        NODE_MEMORY_BYTES,
        Kind::Gauge,
        "Memory limits of the live sandboxes on the Docker node, together.",
    ),
    (
        NODE_CAPACITY_MEMORY_BYTES,
        Kind::Gauge,
        "Memory the Docker node may give its sandboxes.",
    ),
];

/// Prometheus metric types, as `# TYPE` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Label keys.
pub mod label {
    pub const RESULT: &str = "result";
    pub const OPERATION: &str = "operation";
    pub const ERROR_TYPE: &str = "error_type";
    pub const NODE: &str = "node";
}

/// `result` when the span said neither `sandbox.result` nor failed.
pub const RESULT_OK: &str = "ok";
/// `result` of a span that ended with an error.
pub const RESULT_FAILED: &str = "failed";

/// Histogram buckets in seconds: 100 µs (an in-memory lookup) up to 60 s (a
/// slow image start or a long exec).
pub const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];
