//! The port's live-process calls (DESIGN section 10) over a sandbox's
//! agent: the agent keeps the processes, their output rings and exit
//! statuses, so they outlive every connection and a restart of the
//! service. A sandbox without the agent (made by an older release) has no
//! live processes: a `Conflict` that says how to get them.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sandboxer_agent_proto::{
    self as proto, AgentClient, AgentError, ErrorKind, ProcessSpec, ReadSpec, Reply, Request,
};
use sandboxer_core::domain::{
    OutputCursor, OutputRead, ProcessId, ProcessInfo, ProcessRequest, ProcessState, PtySize,
    ReadOptions, Signal, Started, StdinState, StdinWrite, StreamRange,
};
use sandboxer_core::port::{ProcessLimits, RuntimeError, SandboxRef};
use serde_bytes::ByteBuf;

use super::calls::{TERM_GRACE, env_pairs, unexpected};
use crate::runtime::DockerSandboxRuntime;

/// Added to a call's own waiting for the round trip and a loaded agent.
const MARGIN: Duration = Duration::from_secs(10);
/// How long a stdin write waits for a process that is not reading.
const STDIN_WAIT: Duration = Duration::from_secs(2);

impl DockerSandboxRuntime {
    /// The sandbox's agent, which live processes need.
    async fn process_agent(
        &self,
        sandbox: &SandboxRef,
    ) -> Result<(AgentClient, String), RuntimeError> {
        let target = Self::target(sandbox);
        match self.agent_of(&target).await? {
            Some(agent) => Ok((agent, target)),
            None => Err(RuntimeError::Conflict(
                "this sandbox runs without the sandbox agent (it was made by an older release): \
                 live processes need it; DELETE the sandbox to get one that has it"
                    .into(),
            )),
        }
    }

    /// One process call: its reply, or the agent's refusal as the port's error.
    async fn process_call(
        &self,
        sandbox: &SandboxRef,
        request: &Request,
        wait: Duration,
        limit: Option<u32>,
    ) -> Result<Reply, RuntimeError> {
        let (agent, target) = self.process_agent(sandbox).await?;
        match self.ask(&agent, &target, request, wait).await? {
            Reply::Error(e) => Err(process_refusal(e, limit)),
            reply => Ok(reply),
        }
    }

    pub(crate) async fn start_via_agent(
        &self,
        sandbox: &SandboxRef,
        request: &ProcessRequest,
        limits: ProcessLimits,
    ) -> Result<Started, RuntimeError> {
        let spec = ProcessSpec {
            id: request.id.to_string(),
            argv: request.argv.clone(),
            env: env_pairs(&request.env),
            workdir: request.workdir.clone(),
            stdin: request.stdin.clone().map(ByteBuf::from),
            keep_stdin_open: request.keep_stdin_open,
            pty: request.pty.map(|p| proto::PtySize {
                cols: p.cols,
                rows: p.rows,
            }),
            timeout_ms: millis(request.timeout),
            kill_grace_ms: millis(TERM_GRACE),
            buffer_bytes: limits.buffer_bytes,
            max_running: limits.max_running,
        };
        let wait = self.config.call_timeout;
        let request = Request::Start(spec);
        match self
            .process_call(sandbox, &request, wait, Some(limits.max_running))
            .await?
        {
            Reply::Process(info) => Ok(Started {
                created: info.created,
                info: process_info(info)?,
            }),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn processes_via_agent(
        &self,
        sandbox: &SandboxRef,
    ) -> Result<Vec<ProcessInfo>, RuntimeError> {
        let wait = self.config.call_timeout;
        match self
            .process_call(sandbox, &Request::ListProcesses, wait, None)
            .await?
        {
            Reply::Processes(all) => all.into_iter().map(process_info).collect(),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn status_via_agent(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        let request = Request::ProcessStatus { id: id.to_string() };
        let wait = self.config.call_timeout;
        match self.process_call(sandbox, &request, wait, None).await? {
            Reply::Process(info) => process_info(info),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn read_via_agent(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        from: OutputCursor,
        options: ReadOptions,
    ) -> Result<OutputRead, RuntimeError> {
        let request = Request::ReadOutput(ReadSpec {
            id: id.to_string(),
            stdout_offset: from.stdout,
            stderr_offset: from.stderr,
            max_bytes: options.max_bytes,
            wait_ms: millis(options.wait),
            follower: options.follower,
        });
        let wait = options.wait + MARGIN;
        match self
            .process_call(sandbox, &request, wait, None)
            .await
            .map_err(offset_refusal)?
        {
            Reply::Output(chunk) => Ok(OutputRead {
                stdout: chunk.stdout.into_vec(),
                stderr: chunk.stderr.into_vec(),
                info: process_info(chunk.info)?,
            }),
            Reply::CursorExpired(info) => Err(RuntimeError::CursorExpired {
                oldest: OutputCursor {
                    stdout: info.stdout.start,
                    stderr: info.stderr.start,
                },
            }),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn stdin_via_agent(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        write: &StdinWrite,
    ) -> Result<StdinState, RuntimeError> {
        let request = Request::WriteStdin(proto::StdinWrite {
            id: id.to_string(),
            offset: write.offset,
            data: ByteBuf::from(write.data.clone()),
            close: write.close,
            wait_ms: millis(STDIN_WAIT),
        });
        match self
            .process_call(sandbox, &request, STDIN_WAIT + MARGIN, None)
            .await
            .map_err(offset_refusal)?
        {
            Reply::Stdin(state) => Ok(StdinState {
                offset: state.offset,
                open: state.open,
            }),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn signal_via_agent(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        signal: Signal,
    ) -> Result<(), RuntimeError> {
        let request = Request::Signal {
            id: id.to_string(),
            signal: signal.number(),
        };
        let wait = self.config.call_timeout;
        match self.process_call(sandbox, &request, wait, None).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn kill_via_agent(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        let request = Request::Kill { id: id.to_string() };
        // The sweep of escaped descendants may take a few scans.
        let wait = self.config.call_timeout + MARGIN;
        match self.process_call(sandbox, &request, wait, None).await? {
            Reply::Process(info) => process_info(info),
            other => Err(unexpected(&other)),
        }
    }

    /// The session's env through the agent; its answer is also the proof
    /// that the sandbox serves.
    pub(crate) async fn prepare_via_agent(
        &self,
        sandbox: &SandboxRef,
        env: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let request = Request::SetEnv {
            env: env_pairs(env),
        };
        let wait = self.config.call_timeout;
        match self.process_call(sandbox, &request, wait, None).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn resize_via_agent(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        size: PtySize,
    ) -> Result<(), RuntimeError> {
        let request = Request::Resize {
            id: id.to_string(),
            size: proto::PtySize {
                cols: size.cols,
                rows: size.rows,
            },
        };
        let wait = self.config.call_timeout;
        match self.process_call(sandbox, &request, wait, None).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

/// A read or a stdin write is refused as a bad request only for its offset.
fn offset_refusal(e: RuntimeError) -> RuntimeError {
    match e {
        RuntimeError::Rejected(why) => RuntimeError::InvalidOffset(why),
        other => other,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A process call's refusal as the port's error.
fn process_refusal(e: AgentError, limit: Option<u32>) -> RuntimeError {
    match e.kind {
        ErrorKind::NotFound => RuntimeError::ProcessNotFound(e.message),
        ErrorKind::Conflict => RuntimeError::Conflict(e.message),
        ErrorKind::TooMany => RuntimeError::TooManyProcesses(limit.unwrap_or_default()),
        ErrorKind::BadRequest | ErrorKind::TooLarge => RuntimeError::Rejected(e.message),
        ErrorKind::Unsupported => RuntimeError::Conflict(format!(
            "this sandbox's agent is of an older release and has no live processes \
             (DELETE the sandbox to get a new one): {}",
            e.message
        )),
        ErrorKind::NoSpace => crate::errors::no_space(&e.message),
        ErrorKind::NotAFile
        | ErrorKind::NotADirectory
        | ErrorKind::OutsideWorkspace
        | ErrorKind::Io => RuntimeError::Other(format!("the sandbox agent failed: {}", e.message)),
    }
}

fn process_info(info: proto::ProcessInfo) -> Result<ProcessInfo, RuntimeError> {
    let id = ProcessId::parse(&info.id).map_err(|e| {
        RuntimeError::Other(format!("the sandbox agent named a process oddly: {e}"))
    })?;
    Ok(ProcessInfo {
        id,
        argv: info.argv,
        pty: info.pty,
        pid: info.pid,
        state: match info.state {
            proto::ProcessState::Running => ProcessState::Running,
            proto::ProcessState::Exited {
                exit_code,
                timed_out,
                killed,
            } => ProcessState::Exited {
                exit_code,
                timed_out,
                killed,
            },
        },
        started_at: at(info.started_ms),
        ended_at: info.ended_ms.map(at),
        stdout: range(info.stdout),
        stderr: range(info.stderr),
        stdin: StdinState {
            offset: info.stdin.offset,
            open: info.stdin.open,
        },
    })
}

fn range(r: proto::StreamRange) -> StreamRange {
    StreamRange {
        start: r.start,
        end: r.end,
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
