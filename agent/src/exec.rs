//! Running one command to completion: spawned in its own
//! session and process group with a marker in its environment, stdin fed from the
//! request, stdout and stderr kept up to a cap (the rest read and dropped,
//! so a chatty command never blocks on a full pipe), and on timeout its
//! whole tree killed (`kill`).

use std::io;
use std::os::unix::process::CommandExt;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use sandboxer_agent_proto::{AgentError, ErrorKind, ExecResult, ExecSpec, MARKER_VAR, Reply};
use serde_bytes::ByteBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::oneshot;

use crate::kill::{self, Markers};
use crate::reap::{Exit, Reaper};

/// How long output is still read after the command's main process ended: a
/// background child may hold the pipes open for as long as it lives.
const DRAIN: Duration = Duration::from_millis(50);
/// Per stream, whatever the request asks: both streams fit in one frame.
const MAX_OUTPUT_LIMIT: u64 = 32 * 1024 * 1024;
const READ_CHUNK: usize = 32 * 1024;

pub struct Executor {
    reaper: Arc<Reaper>,
    running: AtomicU32,
    markers: Arc<Markers>,
}

/// A command that could not be started, as a shell would report it.
pub struct Refusal {
    pub exit_code: i32,
    pub message: String,
}

/// How the command's main process ended.
pub struct Ended {
    pub exit: Exit,
    pub timed_out: bool,
    pub swept: u32,
}

impl Executor {
    pub fn new(reaper: Arc<Reaper>, markers: Arc<Markers>) -> Self {
        Self {
            reaper,
            running: AtomicU32::new(0),
            markers,
        }
    }

    /// Commands running now.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    pub async fn run(&self, mut spec: ExecSpec) -> Reply {
        if spec.argv.is_empty() {
            return Reply::Error(AgentError::new(ErrorKind::BadRequest, "an empty argv"));
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        let _running = Running(&self.running);
        let marker = self.markers.next();
        let mut command = command(&spec, &marker);
        let reaper = Arc::clone(&self.reaper);
        let workdir = spec.workdir.clone();
        let program = spec.argv[0].clone();
        let spawned = tokio::task::spawn_blocking(move || {
            check_workdir(&workdir)?;
            reaper
                .spawn(&mut command)
                .map_err(|e| refusal(&format!("cannot run {program:?}"), &e))
        })
        .await;
        match spawned {
            Ok(Ok((child, exit, started))) => {
                let input = spec.stdin.take();
                supervise(child, exit, started, input, &spec, &marker).await
            }
            Ok(Err(refusal)) => Reply::Exec(ExecResult {
                exit_code: i64::from(refusal.exit_code),
                stdout: ByteBuf::new(),
                stderr: ByteBuf::from(refusal.message.into_bytes()),
                timed_out: false,
                truncated: false,
                duration_us: 0,
                swept: 0,
            }),
            Err(e) => Reply::Error(AgentError::new(ErrorKind::Io, format!("spawn failed: {e}"))),
        }
    }
}

/// Counts a command as running until dropped, however its request ends.
struct Running<'a>(&'a AtomicU32);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn command(spec: &ExecSpec, marker: &str) -> Command {
    let env = spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut command = new_command(&spec.argv, env, &spec.workdir, marker);
    command
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    in_own_session(&mut command, false);
    command
}

/// `argv` (not empty) with `env` over the session's env over the agent's
/// own, in `workdir` (empty: the agent's), carrying `marker`; stdio and the
/// session are the caller's.
pub fn new_command<'a>(
    argv: &[String],
    env: impl IntoIterator<Item = (&'a str, &'a str)>,
    workdir: &str,
    marker: &str,
) -> Command {
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(crate::session_env::get())
        .envs(env)
        // Last: a request cannot override the marker the sweep relies on.
        .env(MARKER_VAR, marker);
    if !workdir.is_empty() {
        command.current_dir(workdir);
    }
    command
}

/// Puts the command in a session and process group of its own before it
/// runs anything, so a timeout can signal the group whole from the start,
/// and makes it the OOM killer's first pick. With `tty` its stdin is a
/// terminal's slave, which becomes its controlling terminal.
///
/// The forked child inherits the agent's "not dumpable", which makes its
/// /proc files root's, so it could not raise its own `oom_score_adj`: it
/// becomes dumpable first, as the exec a moment later would make it anyway.
/// By then its stdio are the command's pipes (std sets them up before this
/// hook); what it still holds of the agent is a copy of memory that serves
/// this sandbox only, and descriptors closed at the exec.
#[allow(unsafe_code)]
pub fn in_own_session(command: &mut Command, tty: bool) {
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are sound. It makes plain system calls
    // through rustix (setsid, ioctl, prctl, open, write, close) on static
    // data: no allocation, no locks, no access to the parent's state.
    // Errors convert to io::Error without allocating.
    unsafe {
        command.pre_exec(move || {
            rustix::process::setsid()?;
            if tty {
                // A session leader without a terminal takes this one.
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            }
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)?;
            // Without the file (an odd /proc), the command runs anyway.
            if let Ok(file) = rustix::fs::open(
                c"/proc/self/oom_score_adj",
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                let _ = rustix::io::write(&file, b"1000");
            }
            Ok(())
        });
    }
}

/// A missing workdir is refused before the fork, with its own message.
pub fn check_workdir(workdir: &str) -> Result<(), Refusal> {
    if workdir.is_empty() {
        return Ok(());
    }
    match std::fs::metadata(workdir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Refusal {
            exit_code: 126,
            message: format!("sandboxer-agent: cannot change to {workdir:?}: Not a directory\n"),
        }),
        Err(e) => Err(refusal(&format!("cannot change to {workdir:?}"), &e)),
    }
}

/// 127 for something missing, 126 for anything else, as a shell says.
pub fn refusal(what: &str, e: &io::Error) -> Refusal {
    let exit_code = if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let text = e.to_string();
    let reason = text.split(" (os error").next().unwrap_or(&text);
    Refusal {
        exit_code,
        message: format!("sandboxer-agent: {what}: {reason}\n"),
    }
}

async fn supervise(
    mut child: Child,
    mut exit: oneshot::Receiver<Exit>,
    started: Instant,
    input: Option<ByteBuf>,
    spec: &ExecSpec,
    marker: &str,
) -> Reply {
    let group = Pid::from_child(&child);
    let pipes = (|| -> io::Result<_> {
        let out = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let err = child.stderr.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let stdin = child
            .stdin
            .take()
            .map(|s| pipe::Sender::from_owned_fd(s.into()));
        Ok((
            pipe::Receiver::from_owned_fd(out.into())?,
            pipe::Receiver::from_owned_fd(err.into())?,
            stdin.transpose()?,
        ))
    })();
    let (out, err, stdin) = match pipes {
        Ok(pipes) => pipes,
        Err(e) => {
            kill::signal_group(group, Signal::KILL);
            return Reply::Error(AgentError::new(
                ErrorKind::Io,
                format!("cannot read the command's output: {e}"),
            ));
        }
    };
    let feeder = stdin
        .zip(input)
        .map(|(pipe, data)| tokio::spawn(feed(pipe, data)));
    let limit = usize::try_from(spec.output_limit.min(MAX_OUTPUT_LIMIT)).unwrap_or(usize::MAX);
    let (mut stdout, mut stderr) = (Capture::new(limit), Capture::new(limit));
    let ended = {
        let mut pumps = pin!(async {
            tokio::join!(pump(out, &mut stdout), pump(err, &mut stderr));
        });
        let mut life = pin!(wait_or_kill(
            &mut exit,
            group,
            (spec.timeout_ms, spec.kill_grace_ms),
            marker
        ));
        let mut drained = false;
        let ended = loop {
            tokio::select! {
                ended = &mut life => break ended,
                () = &mut pumps, if !drained => drained = true,
            }
        };
        if !drained {
            let _ = tokio::time::timeout(DRAIN, pumps).await;
        }
        ended
    };
    // A command that never read its stdin (or a child still holding it).
    if let Some(feeder) = feeder {
        feeder.abort();
    }
    let Ok(ended) = ended else {
        return Reply::Error(AgentError::new(
            ErrorKind::Io,
            "lost the command's exit status",
        ));
    };
    Reply::Exec(ExecResult {
        exit_code: ended.exit.code(),
        truncated: stdout.dropped || stderr.dropped,
        stdout: ByteBuf::from(stdout.kept),
        stderr: ByteBuf::from(stderr.kept),
        timed_out: ended.timed_out,
        duration_us: u64::try_from(ended.exit.at.saturating_duration_since(started).as_micros())
            .unwrap_or(u64::MAX),
        swept: ended.swept,
    })
}

/// Waits for the main process; past the timeout signals its group (TERM,
/// the grace, KILL) and sweeps what escaped it. A zero timeout is none.
pub async fn wait_or_kill(
    exit: &mut oneshot::Receiver<Exit>,
    group: Pid,
    (timeout_ms, kill_grace_ms): (u64, u64),
    marker: &str,
) -> Result<Ended, oneshot::error::RecvError> {
    let limit = Duration::from_millis(timeout_ms);
    if timeout_ms == 0 {
        return exit.await.map(|exit| Ended {
            exit,
            timed_out: false,
            swept: 0,
        });
    }
    if let Ok(exit) = tokio::time::timeout(limit, &mut *exit).await {
        return exit.map(|exit| Ended {
            exit,
            timed_out: false,
            swept: 0,
        });
    }
    kill::signal_group(group, Signal::TERM);
    let grace = Duration::from_millis(kill_grace_ms);
    let exit = match tokio::time::timeout(grace, &mut *exit).await {
        Ok(exit) => exit?,
        Err(_) => {
            kill::signal_group(group, Signal::KILL);
            exit.await?
        }
    };
    // Members of the group that outlived its leader (or ignored TERM).
    kill::signal_group(group, Signal::KILL);
    let marker = marker.to_owned();
    let swept = tokio::task::spawn_blocking(move || kill::sweep(&marker))
        .await
        .unwrap_or(0);
    Ok(Ended {
        exit,
        timed_out: true,
        swept,
    })
}

/// One stream's output: the first `limit` bytes, and whether more came.
struct Capture {
    kept: Vec<u8>,
    limit: usize,
    dropped: bool,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Self {
            kept: Vec::new(),
            limit,
            dropped: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.limit - self.kept.len();
        let take = bytes.len().min(room);
        self.kept.extend_from_slice(&bytes[..take]);
        self.dropped |= take < bytes.len();
    }
}

/// Reads `pipe` to its end (or until this future is dropped, which closes
/// it), keeping what the capture has room for.
async fn pump(mut pipe: pipe::Receiver, capture: &mut Capture) {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => capture.push(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Writes the request's stdin, then closes it (dropping the pipe).
async fn feed(mut pipe: pipe::Sender, data: ByteBuf) {
    // EPIPE: the command stopped reading, or never did; nothing to report.
    let _ = pipe.write_all(&data).await;
}
