//! A live process's output: pumps add to the rings, readers read from
//! absolute offsets (long polls), and followers hold the rings: bytes a
//! follower seen within `HOLD` has not read yet are not overwritten; the
//! pump waits for it instead (and so, through the pipe, the process).

use std::time::Duration;

use sandboxer_agent_proto::{AgentError, ErrorKind, OutputChunk, ReadSpec, Reply};
use serde_bytes::ByteBuf;
use tokio::time::Instant;

use super::live::{HOLD, Process, State};
use super::ring::Ring;

/// Per stream, whatever the read asks: both streams fit in one frame.
const MAX_READ: u64 = 32 * 1024 * 1024;
/// The longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Out,
    Err,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Out => "stdout",
            Self::Err => "stderr",
        }
    }
}

/// Where a follower has read to, and until when it holds the output.
#[derive(Clone, Copy)]
pub(super) struct Follower {
    stdout: u64,
    stderr: u64,
    until: Instant,
}

impl Process {
    /// Adds a pump's bytes to `stream`. Bytes a live follower has not read
    /// yet are not overwritten: this waits for it to read on, or for its
    /// hold to lapse.
    pub async fn deliver(&self, stream: Stream, mut data: &[u8]) {
        loop {
            let (mut moved, until) = {
                let mut state = self.lock();
                let now = Instant::now();
                let hold = state.hold(stream, now);
                let ring = state.ring(stream);
                let room = hold.map_or(u64::MAX, |(limit, _)| {
                    (limit + ring.capacity()).saturating_sub(ring.end())
                });
                let take = usize::try_from(room).map_or(data.len(), |room| room.min(data.len()));
                if take > 0 {
                    state.ring_mut(stream).push(&data[..take]);
                    data = &data[take..];
                    self.output.send_replace(());
                }
                match hold {
                    Some((_, until)) if !data.is_empty() => (self.read_on.subscribe(), until),
                    _ => return,
                }
            };
            tokio::select! {
                _ = moved.changed() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Answers a read: at once when there is something past the offsets or
    /// the process has ended, else after a long poll of `wait_ms`.
    pub async fn read(&self, spec: &ReadSpec) -> Reply {
        let max = usize::try_from(spec.max_bytes.min(MAX_READ)).unwrap_or(usize::MAX);
        let wait = Duration::from_millis(spec.wait_ms).min(MAX_WAIT);
        let deadline = Instant::now() + wait;
        let mut changes = self.output.subscribe();
        loop {
            {
                let mut state = self.lock();
                let offsets = [
                    (Stream::Out, spec.stdout_offset),
                    (Stream::Err, spec.stderr_offset),
                ];
                for (stream, offset) in offsets {
                    let end = state.ring(stream).end();
                    if offset > end {
                        let why =
                            format!("offset {offset} is past the end {end} of {}", stream.name());
                        return Reply::Error(AgentError::new(ErrorKind::BadRequest, why));
                    }
                }
                if spec.stdout_offset < state.out.start() || spec.stderr_offset < state.err.start()
                {
                    return Reply::CursorExpired(self.info_of(&state));
                }
                let fresh =
                    state.out.end() > spec.stdout_offset || state.err.end() > spec.stderr_offset;
                let now = Instant::now();
                if fresh || state.ended_at.is_some() || now >= deadline {
                    let stdout = state.out.read(spec.stdout_offset, max);
                    let stderr = state.err.read(spec.stderr_offset, max);
                    if let Some(token) = spec.follower {
                        let (out, err) = (
                            spec.stdout_offset + stdout.len() as u64,
                            spec.stderr_offset + stderr.len() as u64,
                        );
                        state.follow(token, out, err, now + HOLD);
                        self.read_on.send_replace(());
                    }
                    return Reply::Output(OutputChunk {
                        stdout: ByteBuf::from(stdout),
                        stderr: ByteBuf::from(stderr),
                        info: self.info_of(&state),
                    });
                }
                if let Some(token) = spec.follower {
                    // A follower in a long poll is live until it is answered.
                    let (out, err) = (spec.stdout_offset, spec.stderr_offset);
                    state.follow(token, out, err, deadline + HOLD);
                    self.read_on.send_replace(());
                }
            }
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

impl State {
    fn ring(&self, stream: Stream) -> &Ring {
        match stream {
            Stream::Out => &self.out,
            Stream::Err => &self.err,
        }
    }

    fn ring_mut(&mut self, stream: Stream) -> &mut Ring {
        match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        }
    }

    /// Notes a follower's read; forgets followers whose hold has lapsed.
    fn follow(&mut self, token: u64, stdout: u64, stderr: u64, until: Instant) {
        let now = Instant::now();
        self.followers.retain(|_, f| f.until > now);
        self.first_hold = None;
        self.followers.insert(
            token,
            Follower {
                stdout,
                stderr,
                until,
            },
        );
    }

    /// The oldest offset of `stream` a live follower still needs, and when
    /// the earliest of the holds lapses. `None`: nothing holds the stream.
    fn hold(&mut self, stream: Stream, now: Instant) -> Option<(u64, Instant)> {
        if self.killed {
            return None;
        }
        self.followers.retain(|_, f| f.until > now);
        self.first_hold = self.first_hold.filter(|until| *until > now);
        let start = self.ring(stream).start();
        let first = self.first_hold.map(|until| (0, until));
        let followers = self.followers.values().map(|f| match stream {
            Stream::Out => (f.stdout, f.until),
            Stream::Err => (f.stderr, f.until),
        });
        // A follower already behind the start has lost bytes anyway.
        first
            .into_iter()
            .chain(followers)
            .filter(|(offset, _)| *offset >= start)
            .reduce(|(o1, u1), (o2, u2)| (o1.min(o2), u1.min(u2)))
    }
}
