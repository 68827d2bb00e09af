//! `StartProcess`: start a live process in the chat's sandbox (created if
//! needed). A process this call made is watched until it ends, so its exit
//! is recorded (a `StartProcess.exited` span under the start's) even when
//! nobody reads it.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    ChatId, OutputCursor, ProcessId, ProcessRequest, ReadOptions, Session, Started,
};
use crate::port::tracer::{SpanKind, Tracer};
use crate::port::{RuntimeError, SandboxRef, SandboxRuntime};
use crate::trace::attr::{key, op, result, span};
use crate::trace::{self, record_sandbox};

use super::super::create_sandbox::CreateSandbox;
use super::super::errors::ExecError;
use super::super::in_sandbox::SandboxAccess;
use super::{ProcessSettings, process_attr};

/// How long one wait of the exit watcher lasts before it asks again.
const WATCH_WAIT: Duration = Duration::from_secs(60);
/// Between two waits of a watcher whose process printed meanwhile: a chatty
/// process costs one call a second, not one per line.
const WATCH_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct StartProcess {
    access: SandboxAccess,
    settings: ProcessSettings,
}

impl StartProcess {
    pub fn new(sandboxes: CreateSandbox, settings: ProcessSettings) -> Self {
        Self {
            access: SandboxAccess::new(sandboxes),
            settings,
        }
    }

    pub fn settings(&self) -> &ProcessSettings {
        &self.settings
    }

    /// Starts `request` (or finds the same process there).
    ///
    /// # Errors
    /// `ExecError`: no sandbox could be had; `Conflict` (the id is taken by
    /// another command), `TooManyProcesses` and the runtime's failures.
    pub async fn execute(
        &self,
        chat: &ChatId,
        request: &ProcessRequest,
    ) -> Result<(Started, Session), ExecError> {
        let limits = self.settings.limits;
        let watch = std::sync::Mutex::new(None);
        let started =
            self.access
                .run(
                    (span::START_PROCESS, op::START_PROCESS),
                    chat,
                    |span| {
                        process_attr(&request.id)(span);
                        span.set_attribute(key::PROCESS_PTY, request.pty.is_some().into());
                    },
                    |runtime, sandbox| async move {
                        runtime.start_process(&sandbox, request, limits).await
                    },
                    |started: &Started, span| {
                        let made = if started.created {
                            result::CREATED
                        } else {
                            result::REUSED
                        };
                        span.set_attribute(key::RESULT, made.into());
                        if started.created {
                            *watch.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(trace::context_of(span));
                        }
                    },
                )
                .await?;
        let context = watch.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(context) = context {
            let ports = self.access.sandboxes.ports();
            let info = &started.0.info;
            let watcher = ExitWatcher {
                runtime: Arc::clone(&ports.runtime),
                tracer: Arc::clone(&ports.tracer),
                sandbox: SandboxRef::from(&started.1),
                id: request.id.clone(),
                from: OutputCursor {
                    stdout: info.stdout.end,
                    stderr: info.stderr.end,
                },
            };
            tokio::spawn(trace::in_context(context, watcher.run()));
        }
        Ok(started)
    }
}

/// Waits for one process to end and records its exit.
struct ExitWatcher {
    runtime: Arc<dyn SandboxRuntime>,
    tracer: Arc<dyn Tracer>,
    sandbox: SandboxRef,
    id: ProcessId,
    /// Where the output stood at the start: waits begin there.
    from: OutputCursor,
}

impl ExitWatcher {
    async fn run(self) {
        let mut span = self.tracer.start_span(
            span::PROCESS_EXITED.into(),
            SpanKind::Internal,
            crate::port::tracer::Parent::Current,
        );
        record_sandbox(span.as_mut(), &self.sandbox);
        span.set_attribute(key::OPERATION, op::PROCESS_EXITED.into());
        process_attr(&self.id)(span.as_mut());
        let ended = self.wait().await;
        match ended {
            Ok(info) => {
                if let Some(code) = info.state.exit_code() {
                    span.set_attribute(key::EXIT_CODE, code.into());
                }
                span.set_attribute(key::EXEC_TIMED_OUT, info.state.timed_out().into());
                span.set_attribute(key::PROCESS_KILLED, info.state.killed().into());
                span.set_attribute(key::RESULT, result::EXITED.into());
            }
            // Gone with its sandbox (removed, replaced, hibernated): it ended
            // without an exit code to report.
            Err(RuntimeError::ContainerGone | RuntimeError::ProcessNotFound(_)) => {
                span.set_attribute(key::RESULT, result::ALREADY_GONE.into());
            }
            Err(err) => trace::mark_failed(span.as_mut(), &err),
        }
        span.end();
    }

    /// The process's info once it ended.
    async fn wait(&self) -> Result<crate::domain::ProcessInfo, RuntimeError> {
        let mut failures = 0;
        let mut cursor = Some(self.from);
        loop {
            let from = match cursor {
                Some(c) => c,
                None => {
                    let info = self.runtime.process_status(&self.sandbox, &self.id).await?;
                    OutputCursor {
                        stdout: info.stdout.end,
                        stderr: info.stderr.end,
                    }
                }
            };
            let options = ReadOptions {
                max_bytes: 0,
                wait: WATCH_WAIT,
                follower: None,
            };
            match self
                .runtime
                .read_output(&self.sandbox, &self.id, from, options)
                .await
            {
                Ok(read) if !read.info.is_running() => return Ok(read.info),
                Ok(read) => {
                    let news =
                        read.info.stdout.end > from.stdout || read.info.stderr.end > from.stderr;
                    cursor = Some(OutputCursor {
                        stdout: read.info.stdout.end,
                        stderr: read.info.stderr.end,
                    });
                    failures = 0;
                    if news {
                        tokio::time::sleep(WATCH_PAUSE).await;
                    }
                }
                Err(err @ (RuntimeError::ContainerGone | RuntimeError::ProcessNotFound(_))) => {
                    return Err(err);
                }
                // The service's connection to the sandbox broke, or the
                // engine hiccuped: ask again a few times before giving up.
                Err(err) => {
                    failures += 1;
                    if failures > 5 {
                        return Err(err);
                    }
                    cursor = None;
                    tokio::time::sleep(WATCH_PAUSE * failures).await;
                }
            }
        }
    }
}
