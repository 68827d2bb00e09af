//! Live processes of the in-memory runtime. A process runs its program
//! (the fake userland or a test's handler) at start: its output is there at
//! once, and it stays running for the program's run time (`sleep 5` runs
//! 5 s of the tokio clock) or until signalled or killed. A process started
//! with stdin kept open (or on a terminal) echoes what is written to it, as
//! `cat` would, and ends when stdin closes. Output goes to a ring per stream
//! with absolute offsets, as the agent keeps it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use crate::domain::{
    ExecOutcome, OutputCursor, OutputRead, ProcessId, ProcessInfo, ProcessRequest, ProcessState,
    Signal, StdinState, StdinWrite, StreamRange,
};
use crate::port::{ProcessLimits, RuntimeError};

/// Every sandbox's processes, shared with the timers that end them.
pub(super) type Tables = Arc<Mutex<HashMap<crate::domain::SessionId, Table>>>;

#[derive(Default)]
pub(super) struct Table {
    processes: BTreeMap<String, Process>,
    next_pid: u32,
    changed: Arc<Notify>,
}

struct Process {
    request: ProcessRequest,
    info: ProcessInfo,
    stdout: Ring,
    stderr: Ring,
    /// Echoes stdin to stdout while it is open.
    echoes: bool,
}

/// The last `cap` bytes of a stream, with the offset of the first.
struct Ring {
    start: u64,
    bytes: VecDeque<u8>,
    cap: usize,
}

impl Ring {
    fn new(cap: u64) -> Self {
        Self {
            start: 0,
            bytes: VecDeque::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        while self.bytes.len() > self.cap {
            self.bytes.pop_front();
            self.start += 1;
        }
    }

    fn range(&self) -> StreamRange {
        StreamRange {
            start: self.start,
            end: self.start + self.bytes.len() as u64,
        }
    }

    fn read(&self, from: u64, max: u64) -> Vec<u8> {
        let skip = usize::try_from(from - self.start).unwrap_or(usize::MAX);
        let take = usize::try_from(max).unwrap_or(usize::MAX);
        self.bytes.iter().skip(skip).take(take).copied().collect()
    }
}

impl Process {
    fn snapshot(&self) -> ProcessInfo {
        ProcessInfo {
            stdout: self.stdout.range(),
            stderr: self.stderr.range(),
            ..self.info.clone()
        }
    }

    fn end(&mut self, exit_code: i64, timed_out: bool, killed: bool) {
        if self.info.is_running() {
            self.info.state = ProcessState::Exited {
                exit_code,
                timed_out,
                killed,
            };
            self.info.ended_at = Some(Utc::now());
            self.info.stdin.open = false;
        }
    }
}

impl Table {
    fn running(&self) -> usize {
        self.processes
            .values()
            .filter(|p| p.info.is_running())
            .count()
    }

    fn get(&mut self, id: &ProcessId) -> Result<&mut Process, RuntimeError> {
        self.processes
            .get_mut(id.as_str())
            .ok_or_else(|| RuntimeError::ProcessNotFound(id.to_string()))
    }

    /// Ends every process: the sandbox went away.
    pub(super) fn end_all(&mut self) {
        for process in self.processes.values_mut() {
            process.end(137, false, true);
        }
        self.changed.notify_waiters();
    }
}

/// When a process that outlives its start ends by itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ending {
    pub after: Duration,
    exit_code: i64,
    timed_out: bool,
}

/// Starts `request`; `ran` is its program's outcome (run by the caller).
/// Returns the info and whether it was made, and, if it outlives the call,
/// when to end it and whether that is its timeout.
pub(super) fn start(
    table: &mut Table,
    request: &ProcessRequest,
    limits: ProcessLimits,
    ran: impl FnOnce() -> ExecOutcome,
) -> Result<(ProcessInfo, bool, Option<Ending>), RuntimeError> {
    if let Some(existing) = table.processes.get(request.id.as_str()) {
        if existing.request == *request {
            return Ok((existing.snapshot(), false, None));
        }
        return Err(RuntimeError::Conflict(format!(
            "process id {} is taken by another command",
            request.id
        )));
    }
    if table.running() >= limits.max_running as usize {
        return Err(RuntimeError::TooManyProcesses(limits.max_running));
    }
    table.next_pid += 1;
    let echoes = request.keep_stdin_open || request.pty.is_some();
    let mut process = Process {
        request: request.clone(),
        info: ProcessInfo {
            id: request.id.clone(),
            argv: request.argv.clone(),
            pty: request.pty.is_some(),
            pid: 1000 + table.next_pid,
            state: ProcessState::Running,
            started_at: Utc::now(),
            ended_at: None,
            stdout: StreamRange::default(),
            stderr: StreamRange::default(),
            stdin: StdinState {
                offset: request.stdin.as_ref().map_or(0, |s| s.len() as u64),
                open: echoes,
            },
        },
        stdout: Ring::new(limits.buffer_bytes),
        stderr: Ring::new(limits.buffer_bytes),
        echoes,
    };
    let mut lasts = None;
    if echoes {
        if let Some(stdin) = &request.stdin {
            process.stdout.push(stdin);
        }
    } else {
        let outcome = ran();
        process.stdout.push(&outcome.stdout);
        process.stderr.push(&outcome.stderr);
        if outcome.duration > request.timeout {
            lasts = Some(Ending {
                after: request.timeout,
                exit_code: 137,
                timed_out: true,
            });
        } else if outcome.duration >= Duration::from_millis(50) {
            lasts = Some(Ending {
                after: outcome.duration,
                exit_code: outcome.exit_code,
                timed_out: false,
            });
        } else {
            process.end(outcome.exit_code, false, false);
        }
    }
    let info = process.snapshot();
    table.processes.insert(request.id.to_string(), process);
    table.changed.notify_waiters();
    Ok((info, true, lasts))
}

/// Ends a process whose program's run time passed (a timer's work).
pub(super) fn run_out(
    tables: &Tables,
    session: crate::domain::SessionId,
    id: &ProcessId,
    ending: Ending,
) {
    let mut tables = tables.lock().unwrap();
    let Some(table) = tables.get_mut(&session) else {
        return;
    };
    if let Some(process) = table.processes.get_mut(id.as_str()) {
        process.end(ending.exit_code, ending.timed_out, false);
    }
    table.changed.notify_waiters();
}

pub(super) fn list(table: &Table) -> Vec<ProcessInfo> {
    let mut all: Vec<_> = table.processes.values().map(Process::snapshot).collect();
    all.sort_by_key(|p| (p.started_at, p.pid));
    all
}

pub(super) fn status(table: &mut Table, id: &ProcessId) -> Result<ProcessInfo, RuntimeError> {
    Ok(table.get(id)?.snapshot())
}

/// A read now, or `None` when the caller should wait (nothing new, running).
pub(super) fn read(
    table: &mut Table,
    id: &ProcessId,
    from: OutputCursor,
    max_bytes: u64,
    may_wait: bool,
) -> Result<Option<OutputRead>, RuntimeError> {
    let process = table.get(id)?;
    let info = process.snapshot();
    for (offset, range, name) in [
        (from.stdout, info.stdout, "stdout"),
        (from.stderr, info.stderr, "stderr"),
    ] {
        if offset > range.end {
            return Err(RuntimeError::InvalidOffset(format!(
                "offset {offset} is past the end {} of {name}",
                range.end
            )));
        }
    }
    if from.stdout < info.stdout.start || from.stderr < info.stderr.start {
        return Err(RuntimeError::CursorExpired {
            oldest: OutputCursor {
                stdout: info.stdout.start,
                stderr: info.stderr.start,
            },
        });
    }
    let quiet = from.stdout == info.stdout.end && from.stderr == info.stderr.end;
    if quiet && info.is_running() && may_wait {
        return Ok(None);
    }
    Ok(Some(OutputRead {
        stdout: process.stdout.read(from.stdout, max_bytes),
        stderr: process.stderr.read(from.stderr, max_bytes),
        info,
    }))
}

/// What a reader waits on.
pub(super) fn changes(table: &Table) -> Arc<Notify> {
    Arc::clone(&table.changed)
}

pub(super) fn write_stdin(
    table: &mut Table,
    id: &ProcessId,
    write: &StdinWrite,
) -> Result<StdinState, RuntimeError> {
    let process = table.get(id)?;
    let written = process.info.stdin.offset;
    let offset = write.offset.unwrap_or(written);
    if offset > written {
        return Err(RuntimeError::InvalidOffset(format!(
            "stdin offset {offset} is past the {written} bytes written"
        )));
    }
    let skip = usize::try_from(written - offset).unwrap_or(usize::MAX);
    let fresh = write.data.get(skip..).unwrap_or_default();
    if !process.info.stdin.open {
        if fresh.is_empty() && !write.close {
            return Ok(process.info.stdin);
        }
        return Err(RuntimeError::Conflict("stdin is closed".into()));
    }
    if process.echoes {
        process.stdout.push(fresh);
    }
    process.info.stdin.offset += fresh.len() as u64;
    if write.close {
        process.info.stdin.open = false;
        process.end(0, false, false);
    }
    let state = process.info.stdin;
    table.changed.notify_waiters();
    Ok(state)
}

pub(super) fn signal(
    table: &mut Table,
    id: &ProcessId,
    signal: Signal,
) -> Result<(), RuntimeError> {
    let process = table.get(id)?;
    if !matches!(
        signal,
        Signal::Cont | Signal::Stop | Signal::Tstp | Signal::Winch
    ) {
        process.end(128 + i64::from(signal.number()), false, false);
    }
    table.changed.notify_waiters();
    Ok(())
}

pub(super) fn kill(table: &mut Table, id: &ProcessId) -> Result<ProcessInfo, RuntimeError> {
    let process = table.get(id)?;
    process.end(137, false, true);
    let info = process.snapshot();
    table.changed.notify_waiters();
    Ok(info)
}

pub(super) fn resize(table: &mut Table, id: &ProcessId) -> Result<(), RuntimeError> {
    let process = table.get(id)?;
    if process.info.pty {
        Ok(())
    } else {
        Err(RuntimeError::Conflict(format!(
            "process {id} has no terminal to resize"
        )))
    }
}
