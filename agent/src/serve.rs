//! The request loop over stdin / stdout: one reader decoding frames, a task
//! per request, one writer for every reply. Each request id gets exactly one
//! reply; nothing else is ever written to stdout.
//!
//! The reader survives what an attach stream carries: bytes that are not a
//! frame and the tail of a frame whose writer died (the codec resyncs on
//! magic and CRC), a partial frame whose writer went away (dropped after
//! `IDLE` without a byte, so a reconnected service's frames are not taken as
//! its rest), frames over the cap, and requests of a newer protocol.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use sandboxer_agent_proto::{
    AgentError, AgentInfo, Decoded, ErrorKind, FrameCodec, MAX_FRAME_BYTES, PROTOCOL_VERSION,
    Reply, Request, encode_frame,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::FramedRead;

use crate::exec::Executor;
use crate::files::Workspace;
use crate::kill::Markers;
use crate::process::Processes;
use crate::reap::Reaper;

/// Silence after which a partial frame is given up.
const IDLE: Duration = Duration::from_millis(250);
/// Replies queued for the writer before a request task waits for room.
const WRITE_QUEUE: usize = 64;

struct Agent {
    exec: Executor,
    processes: Processes,
    files: Arc<Workspace>,
}

type Input = Box<dyn AsyncRead + Send + Unpin>;
type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// Serves until stdin ends, then (unless PID 1) until every request in
/// flight has been answered.
pub async fn run(root: PathBuf) -> io::Result<()> {
    let reaper = Reaper::start()?;
    let markers = Arc::new(Markers::new());
    let agent = Arc::new(Agent {
        exec: Executor::new(Arc::clone(&reaper), Arc::clone(&markers)),
        processes: Processes::new(reaper, markers),
        files: Arc::new(Workspace::new(root)),
    });
    let (input, output) = stdio()?;
    let (replies, queue) = mpsc::channel(WRITE_QUEUE);
    let writer = tokio::spawn(write_loop(output, queue));
    let mut in_flight = JoinSet::new();
    read_loop(input, &agent, &replies, &mut in_flight).await;
    if rustix::process::getpid().is_init() {
        // Exiting would end the container and everything in it; the
        // service may attach again. Keep reaping.
        std::future::pending::<()>().await;
    }
    while in_flight.join_next().await.is_some() {}
    drop(replies);
    let _ = writer.await;
    Ok(())
}

/// Stdin and stdout as non-blocking pipes (what an attach stream and a
/// test's pipes are); anything else through tokio's blocking std streams.
fn stdio() -> io::Result<(Input, Output)> {
    let input: Input =
        match pipe::Receiver::from_owned_fd(io::stdin().as_fd().try_clone_to_owned()?) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdin()),
        };
    let output: Output =
        match pipe::Sender::from_owned_fd(io::stdout().as_fd().try_clone_to_owned()?) {
            Ok(pipe) => Box::new(pipe),
            Err(_) => Box::new(tokio::io::stdout()),
        };
    Ok((input, output))
}

async fn read_loop(
    input: Input,
    agent: &Arc<Agent>,
    replies: &mpsc::Sender<Vec<u8>>,
    in_flight: &mut JoinSet<()>,
) {
    let mut frames = FramedRead::new(Timed::new(input), FrameCodec::new(MAX_FRAME_BYTES));
    let mut idle = pin!(tokio::time::sleep(IDLE));
    // After an oversized header the codec skips its body with an empty
    // buffer: that, too, is a partial frame to give up on silence.
    let mut skipping = false;
    loop {
        // Finished request tasks, so the set does not grow with the uptime.
        while in_flight.try_join_next().is_some() {}
        let item = next_or_idle(&mut frames, skipping, idle.as_mut()).await;
        let Some(item) = item else {
            // Idle with a partial frame: drop it and start afresh.
            frames.read_buffer_mut().clear();
            *frames.decoder_mut() = FrameCodec::new(MAX_FRAME_BYTES);
            skipping = false;
            continue;
        };
        skipping = false;
        let (id, request) = match item {
            // End of input; a read error is one too (and a trailing partial
            // frame at the end is reported as an error).
            None | Some(Err(_)) => return,
            Some(Ok(Decoded::Garbage(_))) => continue,
            Some(Ok(Decoded::Oversized { id, len })) => {
                skipping = true;
                let why = format!("a {len}-byte request is over the {MAX_FRAME_BYTES}-byte cap");
                send(
                    replies,
                    id,
                    Reply::Error(AgentError::new(ErrorKind::TooLarge, why)),
                )
                .await;
                continue;
            }
            Some(Ok(Decoded::Frame { id, body })) => match postcard::from_bytes::<Request>(&body) {
                Ok(request) => (id, request),
                Err(e) => {
                    // Most likely a variant of a newer protocol.
                    let why = format!("a request this agent cannot read: {e}");
                    let reply = Reply::Error(AgentError::new(ErrorKind::Unsupported, why));
                    send(replies, id, reply).await;
                    continue;
                }
            },
        };
        let agent = Arc::clone(agent);
        let replies = replies.clone();
        in_flight.spawn(async move {
            let reply = std::panic::AssertUnwindSafe(handle(&agent, request))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Reply::Error(AgentError::new(
                        ErrorKind::Io,
                        "the agent failed on this request",
                    ))
                });
            send(&replies, id, reply).await;
        });
    }
}

/// The next decoded item (`Some(None)` at the end of input), or `None` once
/// a partial frame has seen no byte for `IDLE`.
async fn next_or_idle(
    frames: &mut FramedRead<Timed, FrameCodec>,
    skipping: bool,
    mut idle: Pin<&mut Sleep>,
) -> Option<Option<io::Result<Decoded>>> {
    poll_fn(|cx| {
        if let Poll::Ready(item) = frames.poll_next_unpin(cx) {
            return Poll::Ready(Some(item));
        }
        if frames.read_buffer().is_empty() && !skipping {
            return Poll::Pending;
        }
        let deadline = frames.get_ref().last_read + IDLE;
        if idle.deadline() != deadline {
            idle.as_mut().reset(deadline);
        }
        idle.as_mut().poll(cx).map(|()| None)
    })
    .await
}

async fn handle(agent: &Agent, request: Request) -> Reply {
    let files = &agent.files;
    match request {
        Request::Hello => Reply::Hello(AgentInfo {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            // Commands and live processes alike.
            running: agent.exec.running() + agent.processes.running(),
        }),
        Request::Exec(spec) => agent.exec.run(spec).await,
        Request::WriteFile { path, data } => file_op(files, move |ws| ws.write(&path, &data)).await,
        Request::ReadFile { path, limit } => file_op(files, move |ws| ws.read(&path, limit)).await,
        Request::Stat { path } => file_op(files, move |ws| ws.stat(&path)).await,
        Request::List { path } => file_op(files, move |ws| ws.list(&path)).await,
        Request::Mkdir { path } => file_op(files, move |ws| ws.mkdir(&path)).await,
        Request::Remove { path } => file_op(files, move |ws| ws.remove(&path)).await,
        Request::Start(spec) => agent.processes.start(spec).await,
        Request::ListProcesses => agent.processes.list(),
        Request::ProcessStatus { id } => agent.processes.status(&id),
        Request::ReadOutput(spec) => agent.processes.read(spec).await,
        Request::WriteStdin(write) => agent.processes.write_stdin(write).await,
        Request::Signal { id, signal } => agent.processes.signal(&id, signal).await,
        Request::Kill { id } => agent.processes.kill(&id).await,
        Request::Resize { id, size } => agent.processes.resize(&id, size).await,
        Request::SetEnv { env } => {
            crate::session_env::set(env);
            Reply::Done
        }
    }
}

/// Runs a file operation on a blocking thread.
async fn file_op<F>(files: &Arc<Workspace>, op: F) -> Reply
where
    F: FnOnce(&Workspace) -> Result<Reply, AgentError> + Send + 'static,
{
    let files = Arc::clone(files);
    match tokio::task::spawn_blocking(move || op(&files)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => Reply::Error(error),
        Err(e) => Reply::Error(AgentError::new(
            ErrorKind::Io,
            format!("the operation failed: {e}"),
        )),
    }
}

/// Queues the reply to `id`; one too large for a frame becomes an error, so
/// the request still gets its one reply.
async fn send(replies: &mpsc::Sender<Vec<u8>>, id: u64, reply: Reply) {
    let frame = encode_frame(id, &reply, MAX_FRAME_BYTES).or_else(|e| {
        let error = AgentError::new(ErrorKind::TooLarge, format!("the reply is too large: {e}"));
        encode_frame(id, &Reply::Error(error), MAX_FRAME_BYTES)
    });
    match frame {
        // Fails only once the writer is gone, at exit.
        Ok(frame) => {
            let _ = replies.send(frame).await;
        }
        Err(e) => eprintln!("sandboxer-agent: cannot encode a reply: {e}"),
    }
}

async fn write_loop(mut output: Output, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut broken = false;
    while let Some(frame) = queue.recv().await {
        if broken {
            // Keep taking replies so no request task waits forever.
            continue;
        }
        let mut written = output.write_all(&frame).await;
        // Flush only when nothing else is queued: a burst goes out together.
        if written.is_ok() && queue.is_empty() {
            written = output.flush().await;
        }
        if let Err(e) = written {
            eprintln!("sandboxer-agent: cannot write replies: {e}");
            broken = true;
        }
    }
}

/// The input, noting when a byte last arrived.
struct Timed {
    inner: Input,
    last_read: Instant,
}

impl Timed {
    fn new(inner: Input) -> Self {
        Self {
            inner,
            last_read: Instant::now(),
        }
    }
}

impl AsyncRead for Timed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last_read = Instant::now();
        }
        polled
    }
}
