//! `FollowProcessOutput`: a process's output from a cursor, as events: a
//! snapshot of what is buffered, or a follow stream that lasts until the
//! process ends (or its reader leaves). A follow stream holds the sandbox's
//! lease and counts as use while it is attached; it is one span, ended with
//! the stream. A streamed exec is a follow stream of a process it starts
//! itself, killed if its reader leaves before the end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    ChatId, ExecRequest, OutputCursor, OutputRead, ProcessId, ProcessInfo, ProcessRequest,
    ReadOptions, Session,
};
use crate::port::tracer::{Parent, Span, SpanKind};
use crate::port::{RuntimeError, SandboxRef, SandboxRuntime};
use crate::trace::attr::{key, op, result, span};
use crate::trace::{self, ErrorType, record_session};

use super::super::create_sandbox::{CreateSandbox, CreateSandboxInput, SpecChoice};
use super::super::errors::ExecError;
use super::super::guards::Lease;
use super::{ProcessSettings, process_attr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// Bytes of one stream starting at `offset`.
    Output {
        stream: OutputStream,
        offset: u64,
        data: Vec<u8>,
    },
    /// Where the reader stands while the process runs: the end of a
    /// snapshot, or a follow stream's heartbeat after a quiet spell.
    Position {
        info: ProcessInfo,
        cursor: OutputCursor,
    },
    /// The process ended and all its output was delivered: the last event.
    Exited(ProcessInfo),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowMode {
    /// What is buffered now, then a `Position` (or `Exited`).
    Snapshot,
    /// Until the process ends.
    Follow,
}

#[derive(Clone)]
pub struct FollowProcessOutput {
    sandboxes: CreateSandbox,
    settings: ProcessSettings,
}

impl FollowProcessOutput {
    pub fn new(sandboxes: CreateSandbox, settings: ProcessSettings) -> Self {
        Self {
            sandboxes,
            settings,
        }
    }

    /// Opens a reader of `id`'s output at `from`. The first read happens
    /// here, so a bad cursor or an unknown process is an error of this call
    /// and not of the stream.
    ///
    /// # Errors
    /// `ExecError`: `ProcessNotFound`, `CursorExpired`, `InvalidOffset` (an
    /// offset past the end), no sandbox, the runtime's failures.
    pub async fn open(
        &self,
        chat: &ChatId,
        id: &ProcessId,
        from: OutputCursor,
        mode: FollowMode,
    ) -> Result<OutputFollower, ExecError> {
        let span = self.span((span::FOLLOW_OUTPUT, op::FOLLOW_OUTPUT), chat, id);
        let mut follower = self.follower(chat, id.clone(), from, mode, span).await?;
        follower.first_read().await?;
        Ok(follower)
    }

    /// Starts `exec` as a process and follows it: a streamed exec. The
    /// process ends with the stream: a reader that leaves kills it.
    ///
    /// # Errors
    /// `ExecError`: no sandbox, `TooManyProcesses`, the runtime's failures.
    pub async fn exec(
        &self,
        chat: &ChatId,
        exec: &ExecRequest,
    ) -> Result<OutputFollower, ExecError> {
        let id = ProcessId::generate();
        let span = self.span((span::EXEC, op::EXEC), chat, &id);
        let mut follower = self
            .follower(
                chat,
                id.clone(),
                OutputCursor::default(),
                FollowMode::Follow,
                span,
            )
            .await?;
        let request = ProcessRequest {
            timeout: exec.timeout,
            ..ProcessRequest::new(id, exec.clone())
        };
        let started = {
            let runtime = Arc::clone(&follower.runtime);
            let sandbox = follower.sandbox.clone();
            let limits = self.settings.limits;
            follower
                .traced(async move { runtime.start_process(&sandbox, &request, limits).await })
                .await
        };
        if let Err(err) = started {
            return Err(follower.fail(err));
        }
        follower.kill_on_drop = true;
        Ok(follower)
    }

    fn span(
        &self,
        (name, operation): (&'static str, &'static str),
        chat: &ChatId,
        id: &ProcessId,
    ) -> Box<dyn Span> {
        let tracer = &self.sandboxes.ports().tracer;
        let mut span = tracer.start_span(name.into(), SpanKind::Internal, Parent::Current);
        span.set_attribute(key::CHAT_ID, chat.to_string().into());
        span.set_attribute(key::OPERATION, operation.into());
        process_attr(id)(span.as_mut());
        span
    }

    async fn follower(
        &self,
        chat: &ChatId,
        id: ProcessId,
        from: OutputCursor,
        mode: FollowMode,
        mut span: Box<dyn Span>,
    ) -> Result<OutputFollower, ExecError> {
        let input = CreateSandboxInput {
            chat_id: chat.clone(),
            spec: SpecChoice::Existing,
            ttl: None,
        };
        let acquired = trace::in_span(span.as_ref(), self.sandboxes.acquire(input)).await;
        let (outcome, lease) = match acquired {
            Ok(acquired) => acquired,
            Err(err) => {
                let err = ExecError::from(err);
                trace::mark_failed(span.as_mut(), &err);
                span.end();
                return Err(err);
            }
        };
        record_session(span.as_mut(), &outcome.session);
        Ok(OutputFollower {
            sandboxes: self.sandboxes.clone(),
            runtime: Arc::clone(&self.sandboxes.ports().runtime),
            sandbox: SandboxRef::from(&outcome.session),
            session: outcome.session,
            lease: Some(lease),
            id,
            cursor: from,
            mode,
            settings: self.settings,
            token: rand_token(),
            pending: VecDeque::new(),
            finished: false,
            kill_on_drop: false,
            delivered: 0,
            span,
        })
    }
}

/// One reader of one process's output. Dropping it ends its span (and,
/// for a streamed exec not yet ended, kills the process).
pub struct OutputFollower {
    sandboxes: CreateSandbox,
    runtime: Arc<dyn SandboxRuntime>,
    sandbox: SandboxRef,
    session: Session,
    /// Released when the stream ends, not only when it is dropped.
    lease: Option<Lease>,
    id: ProcessId,
    cursor: OutputCursor,
    mode: FollowMode,
    settings: ProcessSettings,
    token: u64,
    pending: VecDeque<FollowEvent>,
    finished: bool,
    kill_on_drop: bool,
    delivered: u64,
    span: Box<dyn Span>,
}

impl OutputFollower {
    pub fn process_id(&self) -> &ProcessId {
        &self.id
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Where the next read starts.
    pub fn cursor(&self) -> OutputCursor {
        self.cursor
    }

    /// The next event; `None` after the last. An error is the last item.
    pub async fn next(&mut self) -> Option<Result<FollowEvent, ExecError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            let wait = match self.mode {
                FollowMode::Snapshot => Duration::ZERO,
                FollowMode::Follow => self.settings.heartbeat,
            };
            if let Err(err) = self.read(wait).await {
                return Some(Err(self.fail(err)));
            }
        }
    }

    async fn first_read(&mut self) -> Result<(), ExecError> {
        match self.read(Duration::ZERO).await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.fail(err)),
        }
    }

    /// One read: its bytes as events, and the end or a position when due.
    async fn read(&mut self, wait: Duration) -> Result<(), ExecError> {
        let options = ReadOptions {
            max_bytes: self.settings.read_chunk,
            wait,
            follower: (self.mode == FollowMode::Follow).then_some(self.token),
        };
        let from = self.cursor;
        let read = {
            let runtime = Arc::clone(&self.runtime);
            let sandbox = self.sandbox.clone();
            let id = self.id.clone();
            self.traced(async move { runtime.read_output(&sandbox, &id, from, options).await })
                .await?
        };
        self.session = self.sandboxes.record_use(&self.session).await;
        let news = !read.stdout.is_empty() || !read.stderr.is_empty();
        self.cursor = read.next_cursor(from);
        let last = read.is_last(from);
        let OutputRead {
            stdout,
            stderr,
            info,
        } = read;
        for (stream, offset, data) in [
            (OutputStream::Stdout, from.stdout, stdout),
            (OutputStream::Stderr, from.stderr, stderr),
        ] {
            if !data.is_empty() {
                self.delivered += data.len() as u64;
                self.pending.push_back(FollowEvent::Output {
                    stream,
                    offset,
                    data,
                });
            }
        }
        if last {
            self.finish_exited(&info);
            self.pending.push_back(FollowEvent::Exited(info));
        } else if !news && (self.mode == FollowMode::Snapshot || !wait.is_zero()) {
            if self.mode == FollowMode::Snapshot {
                self.finish(result::OK);
            }
            self.pending.push_back(FollowEvent::Position {
                info,
                cursor: self.cursor,
            });
        }
        Ok(())
    }

    async fn traced<T>(
        &self,
        call: impl Future<Output = Result<T, RuntimeError>>,
    ) -> Result<T, ExecError> {
        Ok(trace::in_span(self.span.as_ref(), call).await?)
    }

    fn finish_exited(&mut self, info: &ProcessInfo) {
        if let Some(code) = info.state.exit_code() {
            self.span.set_attribute(key::EXIT_CODE, code.into());
        }
        self.span
            .set_attribute(key::EXEC_TIMED_OUT, info.state.timed_out().into());
        self.finish(result::EXITED);
    }

    fn finish(&mut self, outcome: &'static str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.lease = None;
        record_session(self.span.as_mut(), &self.session);
        self.span
            .set_attribute(key::PROCESS_BYTES, self.delivered.into());
        self.span.set_attribute(key::RESULT, outcome.into());
        self.span.end();
    }

    fn fail(&mut self, err: ExecError) -> ExecError {
        if !self.finished {
            self.finished = true;
            self.lease = None;
            record_session(self.span.as_mut(), &self.session);
            self.span
                .set_attribute(key::PROCESS_BYTES, self.delivered.into());
            trace::mark_failed(self.span.as_mut(), &err as &dyn ErrorType);
            self.span.end();
        }
        err
    }
}

impl Drop for OutputFollower {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if self.kill_on_drop {
            // A streamed exec is not a background process: its reader left.
            let runtime = Arc::clone(&self.runtime);
            let sandbox = self.sandbox.clone();
            let id = self.id.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(err) = runtime.kill_process(&sandbox, &id).await {
                        tracing::warn!(process.id = %id, error = %err, "killing a streamed exec whose reader left failed");
                    }
                });
            }
        }
        self.finish(result::DETACHED);
    }
}

/// A follower's token: unique enough among the readers of one process.
fn rand_token() -> u64 {
    let id = uuid::Uuid::now_v7();
    let (high, low) = id.as_u64_pair();
    high ^ low
}
