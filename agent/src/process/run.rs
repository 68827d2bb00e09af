//! Running a live process: the spawn (through the one reaper, in its own
//! session, on pipes or a terminal), a pump per output stream into the
//! process's rings, and a supervisor that enforces the timeout and marks
//! the end once the main process is reaped and the output drained.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use sandboxer_agent_proto::ProcessSpec;
use tokio::net::unix::pipe;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::live::Process;
use super::output::Stream;
use super::pty::{self, Master};
use super::stdin::{self, StdinPipe};
use crate::exec::{self, Refusal};
use crate::kill;
use crate::reap::{Exit, Reaper};

/// How long output is still read after the main process ended (time spent
/// waiting for a follower does not count): a background child may hold the
/// pipes open for as long as it lives.
const DRAIN: Duration = Duration::from_millis(100);
const READ_CHUNK: usize = 64 * 1024;
/// What a terminal's programs expect unless the spec says otherwise.
const TERM: &str = "xterm-256color";

/// A spawned main process and the agent's ends of its stdio.
struct Spawned {
    child: Child,
    exit: oneshot::Receiver<Exit>,
    master: Option<OwnedFd>,
}

/// Where a pump reads from.
enum Source {
    Pipe(pipe::Receiver),
    Pty(Arc<Master>),
    /// The agent's own words, read once.
    Message(Vec<u8>),
}

impl Source {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Pipe(pipe) => tokio::io::AsyncReadExt::read(pipe, buf).await,
            Self::Pty(master) => master.read(buf).await,
            Self::Message(message) => {
                let n = message.len().min(buf.len());
                buf[..n].copy_from_slice(&message[..n]);
                message.drain(..n);
                Ok(n)
            }
        }
    }
}

/// Spawns the process and sets it running; a program that cannot be run
/// makes a process that has ended, as a shell would report it.
pub async fn launch(process: Arc<Process>, reaper: Arc<Reaper>) {
    let spawning = Arc::clone(&process);
    let spawned =
        tokio::task::spawn_blocking(move || spawn(&reaper, &spawning.spec, &spawning.marker)).await;
    match spawned {
        Ok(Ok(spawned)) => run(process, spawned),
        Ok(Err(refusal)) => process.refuse(refusal.exit_code, &refusal.message),
        Err(e) => process.refuse(126, &format!("sandboxer-agent: cannot run it: {e}\n")),
    }
}

/// Blocks (fork and exec): on a blocking thread.
fn spawn(reaper: &Reaper, spec: &ProcessSpec, marker: &str) -> Result<Spawned, Refusal> {
    exec::check_workdir(&spec.workdir)?;
    let own_term = spec.env.iter().any(|(k, _)| k == "TERM");
    let term = (spec.pty.is_some() && !own_term).then_some(("TERM", TERM));
    let env = spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut command = exec::new_command(&spec.argv, env.chain(term), &spec.workdir, marker);
    let master = match spec.pty {
        Some(size) => {
            let terminal = pty::open(size).and_then(|(master, slave)| {
                Ok((master, slave.try_clone()?, slave.try_clone()?, slave))
            });
            let (master, input, output, errors) = terminal.map_err(|e| Refusal {
                exit_code: 126,
                message: format!("sandboxer-agent: cannot open a terminal: {e}\n"),
            })?;
            command.stdin(input).stdout(output).stderr(errors);
            Some(master)
        }
        None => {
            let piped = spec.stdin.is_some() || spec.keep_stdin_open;
            command
                .stdin(if piped { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            None
        }
    };
    exec::in_own_session(&mut command, spec.pty.is_some());
    let program = &spec.argv[0];
    let (child, exit, _) = reaper
        .spawn(&mut command)
        .map_err(|e| exec::refusal(&format!("cannot run {program:?}"), &e))?;
    // `command` goes here with the parent's copies of the slave, so the
    // master sees the end once the process's side closes.
    Ok(Spawned {
        child,
        exit,
        master,
    })
}

/// Wires the spawned process's stdio to pumps and stdin, and supervises it.
fn run(process: Arc<Process>, mut spawned: Spawned) {
    let group = Pid::from_child(&spawned.child);
    let (exited, exit_seen) = watch::channel(false);
    let (sources, writer, master) = match wire(&mut spawned) {
        Ok(wired) => wired,
        Err(e) => {
            // Without its output the process is of no use: end it.
            kill::signal_group(group, Signal::KILL);
            let why = format!("sandboxer-agent: cannot read the process's output: {e}\n");
            (
                vec![(Stream::Err, Source::Message(why.into_bytes()))],
                None,
                None,
            )
        }
    };
    process.spawned(group, master);
    let open = process.stdin_state().open;
    let feeder = match Arc::clone(&process.stdin).try_lock_owned() {
        Ok(mut guard) if open && writer.is_some() => {
            *guard = writer;
            process
                .spec
                .stdin
                .clone()
                .map(|data| stdin::feed(Arc::clone(&process), guard, data))
        }
        _ => None,
    };
    let pumps: Vec<_> = sources
        .into_iter()
        .map(|(stream, source)| {
            tokio::spawn(pump(
                Arc::clone(&process),
                stream,
                source,
                exit_seen.clone(),
            ))
        })
        .collect();
    tokio::spawn(supervise(
        process,
        spawned.exit,
        group,
        pumps,
        exited,
        feeder,
    ));
}

type Wired = (
    Vec<(Stream, Source)>,
    Option<StdinPipe>,
    Option<Arc<Master>>,
);

/// The agent's ends of the process's stdio, on tokio's reactor.
fn wire(spawned: &mut Spawned) -> io::Result<Wired> {
    if let Some(master) = spawned.master.take() {
        let master = Arc::new(Master::new(master)?);
        let sources = vec![(Stream::Out, Source::Pty(Arc::clone(&master)))];
        return Ok((
            sources,
            Some(StdinPipe::Pty(Arc::clone(&master))),
            Some(master),
        ));
    }
    let child = &mut spawned.child;
    let mut sources = Vec::new();
    if let Some(out) = child.stdout.take() {
        sources.push((
            Stream::Out,
            Source::Pipe(pipe::Receiver::from_owned_fd(out.into())?),
        ));
    }
    if let Some(err) = child.stderr.take() {
        sources.push((
            Stream::Err,
            Source::Pipe(pipe::Receiver::from_owned_fd(err.into())?),
        ));
    }
    let input = child
        .stdin
        .take()
        .map(|s| pipe::Sender::from_owned_fd(s.into()));
    Ok((sources, input.transpose()?.map(StdinPipe::Pipe), None))
}

/// Waits for the main process (killing the tree past the timeout), then
/// for the output to drain, then marks the end.
async fn supervise(
    process: Arc<Process>,
    mut exit: oneshot::Receiver<Exit>,
    group: Pid,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    exited: watch::Sender<bool>,
    feeder: Option<tokio::task::JoinHandle<()>>,
) {
    let limits = (process.spec.timeout_ms, process.spec.kill_grace_ms);
    let ended = exec::wait_or_kill(&mut exit, group, limits, &process.marker).await;
    match ended {
        Ok(ended) => process.reaped(ended.exit.code(), ended.exit.at.into(), ended.timed_out),
        // The reaper is gone: nothing sensible to report but the end.
        Err(_) => process.reaped(-1, Instant::now(), false),
    }
    exited.send_replace(true);
    for pump in pumps {
        let _ = pump.await;
    }
    if let Some(feeder) = feeder {
        feeder.abort();
        let _ = feeder.await;
    }
    process.finish();
    stdin::release(&process).await;
}

/// Reads `source` into the process's `stream` until its end, or until the
/// main process has been gone for `DRAIN` of reading time.
async fn pump(
    process: Arc<Process>,
    stream: Stream,
    mut source: Source,
    mut exited: watch::Receiver<bool>,
) {
    let mut chunk = vec![0u8; READ_CHUNK];
    // Reading time left once the main process is gone.
    let mut drain: Option<Duration> = None;
    loop {
        let read = match drain {
            None => tokio::select! {
                read = source.read(&mut chunk) => read,
                // Changed, or the supervisor is gone: the drain starts.
                _ = exited.wait_for(|exited| *exited) => {
                    drain = Some(DRAIN);
                    continue;
                }
            },
            Some(left) => {
                let began = Instant::now();
                let Ok(read) = tokio::time::timeout(left, source.read(&mut chunk)).await else {
                    break;
                };
                drain = Some(left.saturating_sub(began.elapsed()));
                read
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => process.deliver(stream, &chunk[..n]).await,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}
