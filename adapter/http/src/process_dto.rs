//! Bodies and events of the live-process calls (DESIGN section 10), and
//! their translation to and from the domain.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sandboxer_core::domain::{
    OutputCursor, ProcessInfo, Session, StdinState, StreamRange, rfc3339,
};

use crate::dto::whole_number;
use crate::schema;

/// Body of `POST /v1/chats/{chat_id}/processes`: an exec's, plus the
/// process's own options.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartProcessBody {
    /// The program and its arguments; no shell unless you run one.
    #[schema(value_type = schema::Argv)]
    pub cmd: Vec<String>,
    /// Your id for the process; a repeat with the same id and body answers
    /// the same process (200), with another body 409. Generated when absent.
    #[schema(value_type = Option<schema::ProcessId>)]
    pub process_id: Option<String>,
    /// First bytes of stdin (text).
    pub stdin: Option<String>,
    /// Keep stdin open for `POST .../stdin` (else it is closed after `stdin`,
    /// or `/dev/null` without it). A terminal always keeps it open.
    pub keep_stdin_open: Option<bool>,
    #[schema(value_type = Option<schema::EnvVars>)]
    pub env: Option<BTreeMap<String, String>>,
    /// Absolute; defaults to `/workspace`.
    #[schema(value_type = Option<schema::Workdir>)]
    pub workdir: Option<String>,
    /// The process's lifetime: past it its tree is killed. Defaults to
    /// 3600000 (1 h); at most 86400000 (24 h).
    #[schema(minimum = 1, maximum = 86_400_000)]
    #[serde(default, deserialize_with = "whole_number")]
    pub timeout_ms: Option<u64>,
    /// Run on a terminal of this size (output on `stdout`, stdin its input).
    pub pty: Option<PtyBody>,
}

/// A terminal's size.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PtyBody {
    #[schema(value_type = u16, minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "whole_side")]
    pub cols: u64,
    #[schema(value_type = u16, minimum = 1, maximum = 1000)]
    #[serde(deserialize_with = "whole_side")]
    pub rows: u64,
}

/// A terminal side as JSON Schema reads `integer` (`80.0` is 80); the
/// range is `PtySize::new`'s to check.
fn whole_side<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    whole_number(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("a whole number is required"))
}

/// One stream's offsets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct StreamView {
    /// The oldest offset still buffered.
    pub start: u64,
    /// Bytes the stream produced in all: where the next output begins.
    pub end: u64,
}

impl From<StreamRange> for StreamView {
    fn from(r: StreamRange) -> Self {
        Self {
            start: r.start,
            end: r.end,
        }
    }
}

/// A process's stdin.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct StdinView {
    /// Bytes written so far: the `offset` of the next write.
    pub offset: u64,
    pub open: bool,
}

impl From<StdinState> for StdinView {
    fn from(s: StdinState) -> Self {
        Self {
            offset: s.offset,
            open: s.open,
        }
    }
}

/// A live process.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProcessView {
    pub process_id: String,
    pub cmd: Vec<String>,
    pub pty: bool,
    /// Inside the sandbox.
    pub pid: u32,
    /// `running` or `exited`.
    pub status: String,
    /// When exited: the code, or 128 + the signal that ended it.
    pub exit_code: Option<i64>,
    /// Ended by its `timeout_ms`.
    pub timed_out: bool,
    /// Ended by `DELETE`.
    pub killed: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: Option<String>,
    pub stdout: StreamView,
    pub stderr: StreamView,
    pub stdin: StdinView,
    pub session_id: String,
}

impl ProcessView {
    pub fn new(info: &ProcessInfo, session: &Session) -> Self {
        Self {
            process_id: info.id.to_string(),
            cmd: info.argv.clone(),
            pty: info.pty,
            pid: info.pid,
            status: info.state.as_str().to_owned(),
            exit_code: info.state.exit_code(),
            timed_out: info.state.timed_out(),
            killed: info.state.killed(),
            started_at: rfc3339(info.started_at),
            ended_at: info.ended_at.map(rfc3339),
            stdout: info.stdout.into(),
            stderr: info.stderr.into(),
            stdin: info.stdin.into(),
            session_id: session.id.to_string(),
        }
    }
}

/// Answer of a start: the process, and whether this call made it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StartedView {
    #[serde(flatten)]
    pub process: ProcessView,
    /// False when the same process was there (a repeated start).
    pub created: bool,
}

/// Answer of `GET /v1/chats/{chat_id}/processes`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProcessList {
    /// Running and recently ended, by start time.
    pub processes: Vec<ProcessView>,
}

/// Body of `POST .../signal`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalBody {
    /// One of HUP, INT, QUIT, KILL, USR1, USR2, PIPE, ALRM, TERM, CONT,
    /// STOP, TSTP, WINCH, with or without `SIG`.
    #[schema(value_type = schema::SignalName)]
    pub signal: String,
}

/// Answer of `POST .../stdin`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StdinWritten {
    /// Bytes stdin has taken in all; less than `offset` + the body's length
    /// when the process stopped reading (send the rest from here).
    pub offset: u64,
    pub open: bool,
}

/// Offsets in both streams.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct Offsets {
    pub stdout: u64,
    pub stderr: u64,
}

impl From<OutputCursor> for Offsets {
    fn from(c: OutputCursor) -> Self {
        Self {
            stdout: c.stdout,
            stderr: c.stderr,
        }
    }
}

/// One line of an output stream (NDJSON), or one SSE event's data: output
/// bytes, where the reader stands, the end, or an error that ended it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OutputEvent {
    Output(OutputData),
    End(OutputEnd),
    Error(OutputError),
}

/// Bytes of one stream (SSE event `output`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutputData {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Where `data` starts in its stream.
    pub offset: u64,
    pub data: String,
    /// `utf-8` (the bytes as text) or `base64` (bytes that are not UTF-8,
    /// or every chunk with `?encoding=base64`).
    pub encoding: String,
}

/// Where the reader stands (SSE event `position`: the end of a snapshot of
/// a running process, or a follow stream's heartbeat), or the process's end
/// (SSE event `exit`, the last).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutputEnd {
    /// `running` or `exited`.
    pub status: String,
    pub exit_code: Option<i64>,
    pub timed_out: bool,
    pub killed: bool,
    /// Where the next read starts (`?stdout_offset=&stderr_offset=`).
    pub stdout_offset: u64,
    pub stderr_offset: u64,
}

/// The error that ended a stream after it began (SSE event `error`), e.g.
/// `cursor_expired` for a reader too slow for the buffer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OutputError {
    pub error: StreamErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamErrorDetail {
    pub code: String,
    pub message: String,
    /// With `cursor_expired`: the oldest offsets still buffered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Offsets>,
}

/// The last line of a streamed exec (`"stream": true`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecStreamResult {
    pub exit_code: i64,
    pub timed_out: bool,
    /// Always false: a stream is not cut (a reader too slow for the buffer
    /// gets `cursor_expired` instead).
    pub truncated: bool,
    pub duration_ms: u64,
    pub session_id: String,
    pub process_id: String,
}
