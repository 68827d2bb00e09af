//! The calls of the in-memory runtime, to script failures and delays per
//! call and to count them; each names the span the fake records.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeOp {
    Create,
    Stop,
    List,
    Inspect,
    Exec,
    PutFile,
    GetFile,
    ListFiles,
    Ping,
    Prepare,
    Fingerprint,
    DeleteWorkspace,
    ListWorkspaces,
    StartProcess,
    /// Reads of a process's output (counted, no span).
    ReadOutput,
    /// Every other process call.
    ProcessCall,
}

impl RuntimeOp {
    pub(super) fn span_name(self) -> &'static str {
        match self {
            Self::Create => "FakeSandboxRuntime.create",
            Self::Stop => "FakeSandboxRuntime.stop",
            Self::List => "FakeSandboxRuntime.list_active_sessions",
            Self::Inspect => "FakeSandboxRuntime.inspect",
            Self::Exec => "FakeSandboxRuntime.exec",
            Self::PutFile => "FakeSandboxRuntime.put_file",
            Self::GetFile => "FakeSandboxRuntime.get_file",
            Self::ListFiles => "FakeSandboxRuntime.list_files",
            Self::Ping => "FakeSandboxRuntime.ping",
            Self::Prepare => "FakeSandboxRuntime.prepare",
            Self::Fingerprint => "FakeSandboxRuntime.fingerprint",
            Self::DeleteWorkspace => "FakeSandboxRuntime.delete_workspace",
            Self::ListWorkspaces => "FakeSandboxRuntime.list_workspaces",
            Self::StartProcess => "FakeSandboxRuntime.start_process",
            Self::ReadOutput => "FakeSandboxRuntime.read_output",
            Self::ProcessCall => "FakeSandboxRuntime.process",
        }
    }
}
