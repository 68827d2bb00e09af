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
