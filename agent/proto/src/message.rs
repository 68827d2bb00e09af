//! The messages frames carry. Each request gets exactly one reply with the
//! same request id. New variants go at the end of each enum: postcard names
//! variants by index, and a peer answers a variant it does not know with
//! `ErrorKind::Unsupported`.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Bumped when a message changes shape; the service refuses an agent of
/// another protocol and falls back to `docker exec`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The environment variable every command's process tree carries, with a
/// value unique to the command: how a kill finds descendants that left the
/// command's process group.
pub const MARKER_VAR: &str = "SANDBOXER_EXEC_ID";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Hello,
    Exec(ExecSpec),
    /// Writes a whole file (parents made, replaced atomically).
    WriteFile {
        path: String,
        data: ByteBuf,
    },
    /// Reads a regular file of at most `limit` bytes.
    ReadFile {
        path: String,
        limit: u64,
    },
    Stat {
        path: String,
    },
    List {
        path: String,
    },
    Mkdir {
        path: String,
    },
    /// Removes a file, a symlink or a directory with everything below it.
    Remove {
        path: String,
    },
    /// Starts a live process, or (same id, same spec) answers the one that
    /// exists: `Reply::Process` with `created` telling which.
    Start(ProcessSpec),
    /// Every process the agent remembers: `Reply::Processes`.
    ListProcesses,
    /// One process: `Reply::Process`.
    ProcessStatus {
        id: String,
    },
    /// Output from offsets: `Reply::Output`, or `Reply::CursorExpired`
    /// when an offset is older than what the buffer still holds.
    ReadOutput(ReadSpec),
    /// Bytes for the process's stdin: `Reply::Stdin`.
    WriteStdin(StdinWrite),
    /// A signal to the process's group: `Reply::Done`.
    Signal {
        id: String,
        signal: i32,
    },
    /// Kills the whole tree (group, then the marker sweep) and answers once
    /// the main process is reaped: `Reply::Process`.
    Kill {
        id: String,
    },
    /// A terminal's new size: `Reply::Done`.
    Resize {
        id: String,
        size: PtySize,
    },
    /// The env every later command and process gets (over the agent's own,
    /// under the request's), replacing any set before: `Reply::Done`.
    SetEnv {
        env: Vec<(String, String)>,
    },
}

/// One command to run to completion. Paths of files are relative to the
/// workspace; `workdir` is absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    /// Fed to the command, then closed; `None` is `/dev/null`.
    pub stdin: Option<ByteBuf>,
    pub timeout_ms: u64,
    /// Bytes kept per stream; the rest is read and dropped.
    pub output_limit: u64,
    /// Between TERM and KILL of a timed-out command's process group.
    pub kill_grace_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Hello(AgentInfo),
    Exec(ExecResult),
    Done,
    File(ByteBuf),
    Stat(Entry),
    List(Vec<Entry>),
    Error(AgentError),
    Process(ProcessInfo),
    Processes(Vec<ProcessInfo>),
    Output(OutputChunk),
    /// A read offset is older than the buffer's start; the info has the
    /// oldest offsets still held.
    CursorExpired(ProcessInfo),
    Stdin(StdinState),
}

/// A live process to start. It outlives every connection: the agent keeps
/// it, its output and, after it ends, its exit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Chosen by the caller; a second start with the same id and spec
    /// answers the first process, with another spec it is `Conflict`.
    pub id: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    /// First bytes of stdin.
    pub stdin: Option<ByteBuf>,
    /// Stdin stays open for `WriteStdin` (after `stdin`, if any); else it
    /// is closed once `stdin` is written (`/dev/null` without it).
    pub keep_stdin_open: bool,
    /// Runs on a terminal of this size: stdout and stderr are the
    /// terminal's output (all on stdout), stdin its input.
    pub pty: Option<PtySize>,
    /// Past this the tree is killed as an exec's is; 0 is no limit.
    pub timeout_ms: u64,
    pub kill_grace_ms: u64,
    /// Ring buffer bytes per stream.
    pub buffer_bytes: u64,
    /// Running processes the agent may hold, this one included:
    /// `TooMany` past it.
    pub max_running: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtySize {
    pub cols: u16,
    pub rows: u16,
}

/// Reads both streams from the given offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadSpec {
    pub id: String,
    pub stdout_offset: u64,
    pub stderr_offset: u64,
    /// Bytes per stream at most in the reply.
    pub max_bytes: u64,
    /// Waits up to this long for a byte past the offsets or the end of the
    /// process; 0 answers at once.
    pub wait_ms: u64,
    /// A follower's token: while it reads on, the process's output waits
    /// (a bounded time) for it rather than overwrite what it has not read.
    pub follower: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// From `stdout_offset` (the info's offsets say where it ends).
    pub stdout: ByteBuf,
    pub stderr: ByteBuf,
    /// The process after the read: offsets and state.
    pub info: ProcessInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdinWrite {
    pub id: String,
    /// Where `data` starts in the stdin stream: bytes already written are
    /// skipped (a retried write), a gap is `BadRequest`. `None` appends.
    pub offset: Option<u64>,
    pub data: ByteBuf,
    /// Closes stdin after `data` (on a terminal: sends end-of-file).
    pub close: bool,
    /// How long to wait for a process that is not reading; what did not
    /// fit by then is not written (the reply's offset says how far it got).
    pub wait_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdinState {
    /// Bytes written to stdin so far.
    pub offset: u64,
    pub open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRange {
    /// The oldest offset still in the buffer.
    pub start: u64,
    /// Bytes the stream has produced in all.
    pub end: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessState {
    Running,
    Exited {
        /// As an exec's: the code, or 128 + the signal.
        exit_code: i64,
        /// Ended by its timeout.
        timed_out: bool,
        /// Ended by `Kill`.
        killed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub id: String,
    pub argv: Vec<String>,
    pub pty: bool,
    pub pid: u32,
    pub state: ProcessState,
    /// Milliseconds since the Unix epoch.
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub stdout: StreamRange,
    pub stderr: StreamRange,
    pub stdin: StdinState,
    /// This `Start` made the process (false: it was there).
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub protocol: u32,
    /// The agent crate's version.
    pub version: String,
    pub pid: u32,
    /// Commands running now.
    pub running: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The exit code, or 128 + the signal that ended the command (as a
    /// shell reports it); 127 / 126 when the program could not be run.
    pub exit_code: i64,
    pub stdout: ByteBuf,
    pub stderr: ByteBuf,
    pub timed_out: bool,
    pub truncated: bool,
    pub duration_us: u64,
    /// Processes of a timed-out command killed by the sweep after its
    /// group was (they had left the group). A background process left by a
    /// command that ended by itself is not killed.
    pub swept: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub mtime_ms: i64,
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The request does not make sense (empty argv, a bad path, ...).
    BadRequest,
    NotFound,
    NotAFile,
    NotADirectory,
    /// The path leaves the workspace (through `..` or a symlink).
    OutsideWorkspace,
    TooLarge,
    /// A message this agent does not know (a newer service).
    Unsupported,
    /// Any other failure of the agent's system calls.
    Io,
    /// The disk (or the workspace's quota) is full.
    NoSpace,
    /// The state does not allow it: a process id taken by another spec,
    /// stdin already closed, a resize of a process without a terminal.
    Conflict,
    /// The running-process limit is reached.
    TooMany,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct AgentError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AgentError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_postcard() {
        let req = Request::Exec(ExecSpec {
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec![("A".into(), "1".into())],
            workdir: "/workspace".into(),
            stdin: Some(ByteBuf::from(b"in".to_vec())),
            timeout_ms: 1000,
            output_limit: 1 << 20,
            kill_grace_ms: 100,
        });
        let bytes = postcard::to_allocvec(&req).unwrap();
        assert_eq!(postcard::from_bytes::<Request>(&bytes).unwrap(), req);
    }

    #[test]
    fn file_bytes_are_carried_as_bytes_not_as_a_sequence() {
        let data = vec![0xabu8; 1000];
        let req = Request::WriteFile {
            path: "a".into(),
            data: ByteBuf::from(data),
        };
        // Variant, path (len + 1 byte), data length (2 bytes) and the data.
        assert_eq!(postcard::to_allocvec(&req).unwrap().len(), 1 + 2 + 2 + 1000);
    }
}
