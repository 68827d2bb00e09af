//! Live processes (DESIGN section 10): a command started in the background
//! under a caller-chosen id, whose output is kept in a bounded buffer per
//! stream with absolute byte offsets, so any number of readers can come and
//! go and resume where they stopped.

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use super::exec::{ExecRequest, InvalidExecRequest};
use super::session::Timestamp;

/// Longest a process may be asked to live.
pub const MAX_PROCESS_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long a process lives unless the caller asks for another limit.
pub const DEFAULT_PROCESS_TIMEOUT: Duration = Duration::from_secs(3600);
pub const PROCESS_ID_MAX_LEN: usize = 64;
/// Terminal sizes a caller may ask for, per side.
pub const PTY_MAX_SIDE: u16 = 1000;

/// A process's id within its sandbox: 1 to 64 bytes of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "process id must be 1 to {PROCESS_ID_MAX_LEN} bytes of letters, digits and `_.:-`, got {0:?}"
)]
pub struct InvalidProcessId(pub String);

impl ProcessId {
    /// # Errors
    /// `InvalidProcessId` when `raw` is empty, too long or has other bytes.
    pub fn parse(raw: &str) -> Result<Self, InvalidProcessId> {
        let ok = !raw.is_empty()
            && raw.len() <= PROCESS_ID_MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidProcessId(raw.to_owned()))
        }
    }

    /// A fresh id, for a process whose caller named none.
    pub fn generate() -> Self {
        Self(format!("p-{}", uuid::Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtySize {
    pub cols: u16,
    pub rows: u16,
}

impl PtySize {
    /// # Errors
    /// `InvalidProcessRequest::Pty` unless both sides are 1 ..= 1000.
    pub fn new(cols: u16, rows: u16) -> Result<Self, InvalidProcessRequest> {
        let side = 1..=PTY_MAX_SIDE;
        if side.contains(&cols) && side.contains(&rows) {
            Ok(Self { cols, rows })
        } else {
            Err(InvalidProcessRequest::Pty { cols, rows })
        }
    }
}

/// A validated start request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRequest {
    pub id: ProcessId,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: String,
    /// First bytes of stdin.
    pub stdin: Option<Vec<u8>>,
    /// Stdin stays open for writes after `stdin`.
    pub keep_stdin_open: bool,
    pub pty: Option<PtySize>,
    /// Past this the process's tree is killed.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidProcessRequest {
    #[error(transparent)]
    Exec(#[from] InvalidExecRequest),
    #[error(transparent)]
    Id(#[from] InvalidProcessId),
    #[error("timeout_ms must be between 1 and {} ms", MAX_PROCESS_TIMEOUT.as_millis())]
    Timeout,
    #[error("pty cols and rows must be between 1 and {PTY_MAX_SIDE}, got {cols}x{rows}")]
    Pty { cols: u16, rows: u16 },
}

impl ProcessRequest {
    /// A process of `exec`'s argv, env, workdir and stdin, living up to the
    /// default process timeout (`exec`'s own timeout is an exec's).
    pub fn new(id: ProcessId, exec: ExecRequest) -> Self {
        Self {
            id,
            argv: exec.argv,
            env: exec.env,
            workdir: exec.workdir,
            stdin: exec.stdin,
            keep_stdin_open: false,
            pty: None,
            timeout: DEFAULT_PROCESS_TIMEOUT,
        }
    }

    /// # Errors
    /// `InvalidProcessRequest::Timeout` outside 1 ms ..= 24 h.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, InvalidProcessRequest> {
        if timeout.is_zero() || timeout > MAX_PROCESS_TIMEOUT {
            return Err(InvalidProcessRequest::Timeout);
        }
        self.timeout = timeout;
        Ok(self)
    }

    pub fn keep_stdin_open(mut self, open: bool) -> Self {
        self.keep_stdin_open = open;
        self
    }

    /// A terminal keeps stdin open: it is how the caller types.
    pub fn with_pty(mut self, size: PtySize) -> Self {
        self.pty = Some(size);
        self.keep_stdin_open = true;
        self
    }
}

/// One stream's offsets: `start` is the oldest byte still buffered, `end`
/// how many bytes the stream produced in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamRange {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StdinState {
    /// Bytes written to stdin so far.
    pub offset: u64,
    pub open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    Running,
    Exited {
        exit_code: i64,
        timed_out: bool,
        killed: bool,
    },
}

impl ProcessState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Exited { .. } => "exited",
        }
    }

    pub const fn exit_code(self) -> Option<i64> {
        match self {
            Self::Running => None,
            Self::Exited { exit_code, .. } => Some(exit_code),
        }
    }

    /// Ended by its timeout.
    pub const fn timed_out(self) -> bool {
        matches!(
            self,
            Self::Exited {
                timed_out: true,
                ..
            }
        )
    }

    /// Ended by a kill.
    pub const fn killed(self) -> bool {
        matches!(self, Self::Exited { killed: true, .. })
    }
}

/// A process as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub id: ProcessId,
    pub argv: Vec<String>,
    pub pty: bool,
    pub pid: u32,
    pub state: ProcessState,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub stdout: StreamRange,
    pub stderr: StreamRange,
    pub stdin: StdinState,
}

impl ProcessInfo {
    pub fn is_running(&self) -> bool {
        self.state == ProcessState::Running
    }
}

/// What a start did: made the process, or found the same one there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub info: ProcessInfo,
    pub created: bool,
}

/// Where a reader stands in each stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCursor {
    pub stdout: u64,
    pub stderr: u64,
}

/// How to read: how much per stream, and how long to wait for news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    pub max_bytes: u64,
    /// Zero answers at once.
    pub wait: Duration,
    /// A follower's token: its reads hold the process's output back (a
    /// bounded time) rather than let the buffer overwrite what it has not read.
    pub follower: Option<u64>,
}

/// Output from a cursor, and the process as it was after the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRead {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub info: ProcessInfo,
}

impl OutputRead {
    /// Where the next read starts.
    pub fn next_cursor(&self, from: OutputCursor) -> OutputCursor {
        OutputCursor {
            stdout: from.stdout + self.stdout.len() as u64,
            stderr: from.stderr + self.stderr.len() as u64,
        }
    }

    /// The process ended and the read reached both streams' ends.
    pub fn is_last(&self, from: OutputCursor) -> bool {
        let next = self.next_cursor(from);
        !self.info.is_running()
            && next.stdout >= self.info.stdout.end
            && next.stderr >= self.info.stderr.end
    }
}

/// A write to a process's stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdinWrite {
    /// Where `data` starts in the stdin stream (a retried write skips what
    /// was written); `None` appends.
    pub offset: Option<u64>,
    pub data: Vec<u8>,
    pub close: bool,
}

/// The signals a caller may send, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hup,
    Int,
    Quit,
    Kill,
    Usr1,
    Usr2,
    Pipe,
    Alrm,
    Term,
    Cont,
    Stop,
    Tstp,
    Winch,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unknown signal {0:?}: use one of HUP, INT, QUIT, KILL, USR1, USR2, PIPE, ALRM, TERM, CONT, STOP, TSTP, WINCH"
)]
pub struct InvalidSignal(pub String);

impl Signal {
    pub const ALL: [Self; 13] = [
        Self::Hup,
        Self::Int,
        Self::Quit,
        Self::Kill,
        Self::Usr1,
        Self::Usr2,
        Self::Pipe,
        Self::Alrm,
        Self::Term,
        Self::Cont,
        Self::Stop,
        Self::Tstp,
        Self::Winch,
    ];

    /// `TERM` or `SIGTERM`: the names of `ALL`, with or without `SIG`.
    ///
    /// # Errors
    /// `InvalidSignal` for anything else.
    pub fn parse(raw: &str) -> Result<Self, InvalidSignal> {
        let name = raw.strip_prefix("SIG").unwrap_or(raw);
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| InvalidSignal(raw.to_owned()))
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Hup => "HUP",
            Self::Int => "INT",
            Self::Quit => "QUIT",
            Self::Kill => "KILL",
            Self::Usr1 => "USR1",
            Self::Usr2 => "USR2",
            Self::Pipe => "PIPE",
            Self::Alrm => "ALRM",
            Self::Term => "TERM",
            Self::Cont => "CONT",
            Self::Stop => "STOP",
            Self::Tstp => "TSTP",
            Self::Winch => "WINCH",
        }
    }

    /// The Linux number (x86-64 and arm64 agree on these).
    pub const fn number(self) -> i32 {
        match self {
            Self::Hup => 1,
            Self::Int => 2,
            Self::Quit => 3,
            Self::Kill => 9,
            Self::Usr1 => 10,
            Self::Usr2 => 12,
            Self::Pipe => 13,
            Self::Alrm => 14,
            Self::Term => 15,
            Self::Cont => 18,
            Self::Stop => 19,
            Self::Tstp => 20,
            Self::Winch => 28,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(ProcessId::parse("build-1.a:b_c").is_ok());
        assert!(ProcessId::parse("").is_err());
        assert!(ProcessId::parse("a b").is_err());
        assert!(ProcessId::parse("a/b").is_err());
        assert!(ProcessId::parse(&"x".repeat(65)).is_err());
        assert!(ProcessId::parse(ProcessId::generate().as_str()).is_ok());
    }

    #[test]
    fn signals_by_name_with_or_without_sig() {
        assert_eq!(Signal::parse("TERM"), Ok(Signal::Term));
        assert_eq!(Signal::parse("SIGINT"), Ok(Signal::Int));
        assert!(Signal::parse("sigint").is_err());
        assert!(Signal::parse("9").is_err());
        assert!(Signal::parse("NOPE").is_err());
        assert!(Signal::parse("").is_err());
        for s in Signal::ALL {
            assert_eq!(Signal::parse(s.name()), Ok(s));
        }
    }

    #[test]
    fn a_state_says_how_it_ended() {
        let ended = |timed_out, killed| ProcessState::Exited {
            exit_code: 137,
            timed_out,
            killed,
        };
        assert!(!ProcessState::Running.timed_out() && !ProcessState::Running.killed());
        assert!(ended(true, false).timed_out() && !ended(true, false).killed());
        assert!(!ended(false, true).timed_out() && ended(false, true).killed());
        assert_eq!(ended(false, false).exit_code(), Some(137));
        assert_eq!(ProcessState::Running.exit_code(), None);
    }

    #[test]
    fn limits_are_checked() {
        assert!(PtySize::new(80, 24).is_ok());
        assert!(PtySize::new(0, 24).is_err());
        assert!(PtySize::new(80, 1001).is_err());
        let exec = ExecRequest::new(vec!["sh".into()]).unwrap();
        let req = ProcessRequest::new(ProcessId::generate(), exec);
        assert_eq!(req.timeout, DEFAULT_PROCESS_TIMEOUT);
        assert!(req.clone().with_timeout(Duration::ZERO).is_err());
        assert!(req.clone().with_timeout(MAX_PROCESS_TIMEOUT).is_ok());
        assert!(
            req.clone()
                .with_timeout(MAX_PROCESS_TIMEOUT + Duration::from_millis(1))
                .is_err()
        );
        assert!(req.with_pty(PtySize::new(80, 24).unwrap()).keep_stdin_open);
    }
}
