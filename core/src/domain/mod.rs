//! Pure domain types and rules: no I/O, no clocks, no async.

pub mod decision;
pub mod env;
pub mod exec;
pub mod files;
pub mod ids;
pub mod path;
pub mod policy;
pub mod pool;
pub mod process;
pub mod session;
pub mod spec;
pub mod workspace;

pub use decision::{ContainerState, Decision, ReplaceReason, Verdict, decide, on_container};
pub use env::{InvalidEnv, check_env};
pub use exec::{ExecOutcome, ExecRequest, InvalidExecRequest};
pub use files::{FileEntry, FileKind};
pub use ids::{
    ChatId, ContainerId, InvalidChatId, InvalidSessionId, InvalidWorkspaceId, SessionId,
    WorkspaceId,
};
pub use path::{InvalidWorkspacePath, WORKSPACE_ROOT, WorkspacePath};
pub use policy::{InvalidPolicy, Policy};
pub use pool::{PoolMember, PoolStatus, claimable};
pub use process::{
    InvalidProcessId, InvalidProcessRequest, InvalidSignal, OutputCursor, OutputRead, ProcessId,
    ProcessInfo, ProcessRequest, ProcessState, PtySize, ReadOptions, Signal, Started, StdinState,
    StdinWrite, StreamRange,
};
pub use session::{
    EndReason, NewSession, Session, SessionStatus, Timestamp, WorkspaceUse, rfc3339,
};
pub use spec::{InvalidSpec, ResourceLimits, SandboxSpec, SpecHash, SpecOverrides};
pub use workspace::{Retention, Workspace, WorkspaceFate, WorkspaceStatus};
