//! One live process as the agent holds it: its spec, its state from spawn
//! to end, its output rings (filled and read in `output`), its stdin.
//!
//! Everything mutable sits behind one short-held lock, so an answer's data
//! and its info are one consistent snapshot. Two watches wake waiters
//! without polling: `output` (new bytes, the spawn, the end) for readers,
//! `read_on` (a follower read on, or stopped holding) for held pumps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustix::process::Pid;
use sandboxer_agent_proto::{ProcessInfo, ProcessSpec, ProcessState, StdinState};
use tokio::sync::watch;
use tokio::time::Instant;

use super::output::Follower;
use super::pty::Master;
use super::ring::Ring;
use super::stdin::StdinPipe;

/// How long a follower holds the output after its last read.
pub const HOLD: Duration = Duration::from_secs(2);
/// The largest ring per stream.
const MAX_BUFFER: u64 = 1 << 30;

pub struct Process {
    pub spec: ProcessSpec,
    /// Orders processes started in the same millisecond.
    pub seq: u64,
    pub marker: String,
    pub started: Instant,
    pub started_ms: i64,
    state: Mutex<State>,
    pub(super) output: watch::Sender<()>,
    pub(super) read_on: watch::Sender<()>,
    /// The writer's end of stdin; the async lock serializes writes.
    pub stdin: Arc<tokio::sync::Mutex<Option<StdinPipe>>>,
}

#[derive(Default)]
struct Exit {
    code: i64,
    ended_ms: i64,
    timed_out: bool,
}

pub(super) struct State {
    spawned: bool,
    /// The process group (the main pid), until the main process is reaped.
    group: Option<Pid>,
    pid: u32,
    pub(super) out: Ring,
    pub(super) err: Ring,
    pub(super) followers: HashMap<u64, Follower>,
    /// Until the first follower reads (or `HOLD` passes), output is held
    /// from offset 0 as if a follower were there: a caller that starts a
    /// process and then follows it loses nothing to the race between them.
    pub(super) first_hold: Option<Instant>,
    exit: Option<Exit>,
    pub(super) killed: bool,
    /// Ended for readers: reaped and the output drained.
    pub(super) ended_at: Option<Instant>,
    stdin: StdinState,
    pty: Option<Arc<Master>>,
}

impl Process {
    pub fn new(spec: ProcessSpec, seq: u64, marker: String) -> Arc<Self> {
        let capacity = usize::try_from(spec.buffer_bytes.min(MAX_BUFFER)).unwrap_or(usize::MAX);
        let started = Instant::now();
        let stdin_open = spec.keep_stdin_open || spec.stdin.is_some();
        Arc::new(Self {
            seq,
            marker,
            started,
            started_ms: now_ms(),
            state: Mutex::new(State {
                spawned: false,
                group: None,
                pid: 0,
                out: Ring::new(capacity),
                err: Ring::new(capacity),
                followers: HashMap::new(),
                first_hold: Some(started + HOLD),
                exit: None,
                killed: false,
                ended_at: None,
                stdin: StdinState {
                    offset: 0,
                    open: stdin_open,
                },
                pty: None,
            }),
            output: watch::channel(()).0,
            read_on: watch::channel(()).0,
            stdin: Arc::new(tokio::sync::Mutex::new(None)),
            spec,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves plain data behind; carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn info(&self) -> ProcessInfo {
        self.info_of(&self.lock())
    }

    pub(super) fn info_of(&self, state: &State) -> ProcessInfo {
        let ended = state.ended_at.is_some();
        let exit = state.exit.as_ref().filter(|_| ended);
        ProcessInfo {
            id: self.spec.id.clone(),
            argv: self.spec.argv.clone(),
            pty: self.spec.pty.is_some(),
            pid: state.pid,
            state: exit.map_or(ProcessState::Running, |exit| ProcessState::Exited {
                exit_code: exit.code,
                timed_out: exit.timed_out,
                killed: state.killed,
            }),
            started_ms: self.started_ms,
            ended_ms: exit.map(|exit| exit.ended_ms),
            stdout: state.out.range(),
            stderr: state.err.range(),
            stdin: state.stdin,
            created: false,
        }
    }

    pub fn ended_at(&self) -> Option<Instant> {
        self.lock().ended_at
    }

    pub fn is_running(&self) -> bool {
        self.ended_at().is_none()
    }

    /// The running process's group: `None` once its main process is reaped
    /// (its pid may be another's by then).
    pub fn group(&self) -> Option<Pid> {
        self.lock().group
    }

    pub fn pty(&self) -> Option<Arc<Master>> {
        self.lock().pty.clone()
    }

    pub fn spawned(&self, group: Pid, pty: Option<Arc<Master>>) {
        let mut state = self.lock();
        state.spawned = true;
        state.group = Some(group);
        state.pid = group.as_raw_pid().unsigned_abs();
        state.pty = pty;
        drop(state);
        self.output.send_replace(());
    }

    /// Waits until `pred` holds, woken by the output watch.
    async fn wait_until(&self, pred: impl Fn(&State) -> bool) {
        let mut changes = self.output.subscribe();
        while !pred(&self.lock()) {
            // The sender lives as long as `self`.
            let _ = changes.changed().await;
        }
    }

    pub async fn wait_spawned(&self) {
        self.wait_until(|state| state.spawned || state.ended_at.is_some())
            .await;
    }

    pub async fn wait_ended(&self) {
        self.wait_until(|state| state.ended_at.is_some()).await;
    }

    /// Notes a `Kill`: the process's followers stop holding its output (its
    /// end is what matters now). The group to kill, unless already reaped.
    pub fn kill_requested(&self) -> Option<Pid> {
        let mut state = self.lock();
        let group = state.group;
        if state.exit.is_none() {
            state.killed = true;
        }
        drop(state);
        self.read_on.send_replace(());
        group
    }

    /// The main process was reaped; the output may still drain.
    pub fn reaped(&self, code: i64, at: Instant, timed_out: bool) {
        let after = u64::try_from(at.saturating_duration_since(self.started).as_millis());
        let mut state = self.lock();
        state.group = None;
        state.exit = Some(Exit {
            code,
            ended_ms: self.started_ms + i64::try_from(after.unwrap_or(0)).unwrap_or(0),
            timed_out,
        });
    }

    /// Ended for readers: stdin closes and everyone waiting hears of it.
    pub fn finish(&self) {
        let mut state = self.lock();
        state.exit.get_or_insert_with(Exit::default);
        state.ended_at = Some(Instant::now());
        state.stdin.open = false;
        state.group = None;
        state.pty = None;
        drop(state);
        self.output.send_replace(());
        self.read_on.send_replace(());
    }

    /// A process that could not be run: ended at once, the reason on stderr.
    pub fn refuse(&self, exit_code: i32, message: &str) {
        let mut state = self.lock();
        state.err.push(message.as_bytes());
        state.exit = Some(Exit {
            code: i64::from(exit_code),
            ended_ms: self.started_ms,
            timed_out: false,
        });
        drop(state);
        self.finish();
    }

    pub fn stdin_state(&self) -> StdinState {
        self.lock().stdin
    }

    /// `n` more bytes reached stdin.
    pub fn stdin_wrote(&self, n: usize) {
        self.lock().stdin.offset += n as u64;
    }

    pub fn stdin_closed(&self) {
        self.lock().stdin.open = false;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
