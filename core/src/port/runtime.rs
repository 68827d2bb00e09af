//! The sandbox runtime port: where containers are made, run and removed.

use std::collections::BTreeMap;

use async_trait::async_trait;
use thiserror::Error;

use crate::domain::{
    ChatId, ContainerId, ContainerState, ExecOutcome, ExecRequest, FileEntry, OutputCursor,
    OutputRead, ProcessId, ProcessInfo, ProcessRequest, PtySize, ReadOptions, SandboxSpec, Session,
    SessionId, Signal, Started, StdinState, StdinWrite, Timestamp, WorkspaceId, WorkspacePath,
    WorkspaceUse,
};
use crate::trace::{ErrorType, attr::ErrorClass};

/// Names one session's sandbox. The runtime finds the container by its id
/// or, before the id is known, by the name derived from the session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRef {
    pub session_id: SessionId,
    pub chat_id: ChatId,
    pub container_id: Option<ContainerId>,
}

impl From<&Session> for SandboxRef {
    fn from(s: &Session) -> Self {
        Self {
            session_id: s.id,
            chat_id: s.chat_id.clone(),
            container_id: s.container_id.clone(),
        }
    }
}

/// Everything the runtime needs to make one session's sandbox, labels included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub session_id: SessionId,
    pub chat_id: ChatId,
    /// The volume mounted at `/workspace`: a fresh one (made now, removed
    /// again if the create fails) or the chat's kept one (never removed here).
    pub workspace: WorkspaceUse,
    pub generation: u64,
    pub created_at: Timestamp,
    pub spec: SandboxSpec,
}

/// A sandbox the runtime holds, in any state, as its labels describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSandbox {
    pub container_id: ContainerId,
    pub session_id: SessionId,
    pub chat_id: ChatId,
    pub workspace_id: WorkspaceId,
    pub generation: u64,
    pub created_at: Timestamp,
    pub running: bool,
}

impl RuntimeSandbox {
    pub fn to_ref(&self) -> SandboxRef {
        SandboxRef {
            session_id: self.session_id,
            chat_id: self.chat_id.clone(),
            container_id: Some(self.container_id.clone()),
        }
    }
}

/// A workspace volume the runtime holds for us, as its labels describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeWorkspace {
    pub id: WorkspaceId,
    /// When the runtime made it, if it says.
    pub created_at: Option<Timestamp>,
    /// The bytes it holds, where the runtime tells them.
    pub bytes: Option<u64>,
}

/// The service's bounds on a sandbox's live processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Running processes per sandbox.
    pub max_running: u32,
    /// Output kept per stream of each process.
    pub buffer_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    AlreadyGone,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuntimeError {
    #[error("the container runtime is unavailable: {0}")]
    Unavailable(String),
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the sandbox's container is gone")]
    ContainerGone,
    #[error("no such file or directory: {0}")]
    FileNotFound(String),
    #[error("{0} is not a regular file")]
    NotAFile(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("the container runtime did not answer in time: {0}")]
    Timeout(String),
    #[error("the runtime refused the request: {0}")]
    Rejected(String),
    #[error("container runtime error: {0}")]
    Other(String),
    #[error("no process {0:?} in this sandbox")]
    ProcessNotFound(String),
    #[error("this sandbox already runs {0} processes, its limit")]
    TooManyProcesses(u32),
    /// A read offset is older than the buffer; `oldest` is what it holds.
    #[error(
        "the output before offset {} (stdout) / {} (stderr) is no longer buffered",
        oldest.stdout, oldest.stderr
    )]
    CursorExpired { oldest: OutputCursor },
    /// An output offset past a stream's end, or a stdin offset past what
    /// was written.
    #[error("{0}")]
    InvalidOffset(String),
    /// The disk that holds the sandboxes or their workspaces is full.
    #[error("{0}")]
    NoSpace(String),
}

impl ErrorType for RuntimeError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Unavailable(_) => ErrorClass::RuntimeUnavailable,
            Self::ImageNotFound(_) => ErrorClass::ImageNotFound,
            Self::Conflict(_) => ErrorClass::Conflict,
            Self::ContainerGone => ErrorClass::ContainerGone,
            Self::FileNotFound(_) => ErrorClass::FileNotFound,
            Self::NotAFile(_) => ErrorClass::NotAFile,
            Self::NotADirectory(_) => ErrorClass::NotADirectory,
            Self::Timeout(_) => ErrorClass::Timeout,
            Self::Rejected(_) => ErrorClass::InvalidRequest,
            Self::Other(_) => ErrorClass::RuntimeError,
            Self::ProcessNotFound(_) => ErrorClass::ProcessNotFound,
            Self::TooManyProcesses(_) => ErrorClass::TooManyProcesses,
            Self::CursorExpired { .. } => ErrorClass::CursorExpired,
            Self::InvalidOffset(_) => ErrorClass::InvalidOffset,
            Self::NoSpace(_) => ErrorClass::NoSpace,
        }
    }
}

#[async_trait]
pub trait SandboxRuntime: Send + Sync {
    /// Creates and starts the sandbox of `request.session_id`. If that
    /// session's sandbox already exists (another process got there first), it
    /// is adopted, never destroyed.
    ///
    /// # Errors
    /// `ImageNotFound` (never a hanging pull), `Rejected` when the image
    /// name (a caller's choice) is not a valid reference, `Unavailable`,
    /// `Timeout`, `Other` (also what the runtime refuses in the operator's
    /// settings, such as an unknown runtime name).
    /// On error nothing made for the session is left behind.
    async fn create(&self, request: &CreateRequest) -> Result<ContainerId, RuntimeError>;

    /// Stops and removes the sandbox and everything made for it except its
    /// workspace, which outlives it (`delete_workspace`). Idempotent.
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`; a sandbox already gone is `Ok(AlreadyGone)`.
    async fn stop(&self, sandbox: &SandboxRef) -> Result<StopOutcome, RuntimeError>;

    /// Removes a workspace and its files. Idempotent: one already gone is
    /// `Ok`. Never half done: the files stay until the whole volume goes.
    ///
    /// # Errors
    /// `Conflict` while a sandbox still mounts it, `Unavailable`,
    /// `Timeout`, `Other`.
    async fn delete_workspace(&self, workspace: &WorkspaceId) -> Result<(), RuntimeError>;

    /// Every workspace this runtime holds for this instance, with the bytes
    /// each holds where the runtime can tell cheaply (`measure`).
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`.
    async fn list_workspaces(&self, measure: bool) -> Result<Vec<RuntimeWorkspace>, RuntimeError>;

    /// Every sandbox footprint this runtime holds for us, whoever made it,
    /// one entry per session, as its labels describe it. Despite the name
    /// (DESIGN and the spans call it so), not only active ones:
    ///
    /// - a running container: `running: true`;
    /// - a container in any other state (created, exited, dead, ...):
    ///   `running: false`;
    /// - a session whose container is gone but whose workspace or other
    ///   leftover is still there (a crash between two removals):
    ///   `running: false`, `container_id` the name the container had, so
    ///   `stop` removes the rest.
    ///
    /// A runtime shared by several services lists only this instance's.
    /// Entries whose labels do not parse are skipped. Reconciliation
    /// compares this with the store; `running` is what tells a live
    /// sandbox from the rest.
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`.
    async fn list_active_sessions(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError>;

    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`; a missing container is `Ok(Missing)`.
    async fn inspect(&self, sandbox: &SandboxRef) -> Result<ContainerState, RuntimeError>;

    /// Runs a command to completion or timeout. A timeout kills the command's
    /// whole process tree and leaves the sandbox usable.
    ///
    /// # Errors
    /// `ContainerGone` when the sandbox no longer runs (nothing was started),
    /// `Unavailable`, `Timeout` (the runtime itself), `Other`.
    async fn exec(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, RuntimeError>;

    /// Writes a file below the workspace, creating parent directories.
    ///
    /// # Errors
    /// `ContainerGone`, `NotAFile` (a directory is in the way), `Unavailable`, `Timeout`, `Other`.
    async fn put_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError>;

    /// Reads a regular file below the workspace.
    ///
    /// # Errors
    /// `FileNotFound`, `NotAFile`, `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn get_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError>;

    /// The entries of a directory below the workspace (`None`: the
    /// workspace itself), sorted by name (byte order), not recursive, `.`
    /// and `..` left out. A symlink is listed as `Symlink`, not followed.
    ///
    /// # Errors
    /// `FileNotFound` (nothing at `dir`), `NotADirectory` (`dir` is a file),
    /// `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn list_files(
        &self,
        sandbox: &SandboxRef,
        dir: Option<&WorkspacePath>,
    ) -> Result<Vec<FileEntry>, RuntimeError>;

    /// Starts a live process (DESIGN section 10) that outlives this call
    /// and every connection; the same id with the same request answers the
    /// process already there (`created: false`).
    ///
    /// # Errors
    /// `Conflict` (the id is taken by another request, or the sandbox
    /// cannot run live processes), `TooManyProcesses`, `ContainerGone`,
    /// `Unavailable`, `Timeout`, `Other`. A program that cannot run is a
    /// process that ended with 127 or 126.
    async fn start_process(
        &self,
        sandbox: &SandboxRef,
        request: &ProcessRequest,
        limits: ProcessLimits,
    ) -> Result<Started, RuntimeError>;

    /// The sandbox's processes, running and recently ended, by start time.
    ///
    /// # Errors
    /// `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn list_processes(&self, sandbox: &SandboxRef) -> Result<Vec<ProcessInfo>, RuntimeError>;

    /// # Errors
    /// `ProcessNotFound`, `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn process_status(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError>;

    /// Output from `from`, up to `options.max_bytes` per stream; with
    /// nothing new and the process running, waits up to `options.wait`.
    ///
    /// # Errors
    /// `CursorExpired` (an offset older than the buffer), `InvalidOffset`
    /// (an offset past the end), `ProcessNotFound`, `ContainerGone`,
    /// `Unavailable`, `Timeout`, `Other`.
    async fn read_output(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        from: OutputCursor,
        options: ReadOptions,
    ) -> Result<OutputRead, RuntimeError>;

    /// Writes to the process's stdin; answers how far the stream got (a
    /// process that does not read takes less than was sent).
    ///
    /// # Errors
    /// `InvalidOffset` (an offset past what was written), `Conflict` (stdin is
    /// closed), `ProcessNotFound`, `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn write_stdin(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        write: &StdinWrite,
    ) -> Result<StdinState, RuntimeError>;

    /// Signals the process's group; a process that ended is left as it is.
    ///
    /// # Errors
    /// `ProcessNotFound`, `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn signal_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        signal: Signal,
    ) -> Result<(), RuntimeError>;

    /// Kills the process's whole tree and answers once it is gone.
    ///
    /// # Errors
    /// `ProcessNotFound`, `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn kill_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError>;

    /// A terminal's new size.
    ///
    /// # Errors
    /// `Conflict` (the process has no terminal), `ProcessNotFound`,
    /// `ContainerGone`, `Unavailable`, `Timeout`, `Other`.
    async fn resize_pty(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        size: PtySize,
    ) -> Result<(), RuntimeError>;

    /// Makes a running sandbox ready for a chat: checks that it answers
    /// and sets `env` for every later command and process in it (a claimed
    /// warm sandbox gets its chat's env this way), replacing any set before.
    ///
    /// # Errors
    /// `ContainerGone` when it does not run, `Conflict` when it cannot take
    /// an env (made without the agent), `Unavailable`, `Timeout`, `Other`.
    async fn prepare(
        &self,
        sandbox: &SandboxRef,
        env: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError>;

    /// What a sandbox of `spec` is made from beyond the spec itself (the
    /// image's id, the agent's build): two sandboxes of one spec with one
    /// fingerprint are alike. Warm sandboxes of another fingerprint are
    /// drained.
    ///
    /// # Errors
    /// `ImageNotFound`, `Unavailable`, `Timeout`, `Other`.
    async fn fingerprint(&self, spec: &SandboxSpec) -> Result<String, RuntimeError>;

    /// Whether the runtime answers (readiness).
    ///
    /// # Errors
    /// `Unavailable` or `Timeout`.
    async fn ping(&self) -> Result<(), RuntimeError>;
}
