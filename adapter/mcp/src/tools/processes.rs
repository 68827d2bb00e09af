//! `start_process`, `read_process_output`, `write_process_stdin` and
//! `kill_process`: the live-process use cases (DESIGN section 10) for a
//! model, which reads output by offsets in bounded pieces instead of a stream.

use std::time::Duration;

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use sandboxer_core::domain::{
    ChatId, ExecRequest, OutputCursor, ProcessId, ProcessInfo, ProcessRequest, Signal, StdinWrite,
    rfc3339,
};
use sandboxer_core::usecase::{FollowEvent, FollowMode, OutputFollower, OutputStream};

use crate::error::ToolError;
use crate::params::{KillProcessParams, ReadProcessParams, StartProcessParams, WriteStdinParams};
use crate::reply;
use crate::server::SandboxerMcp;

/// Longest a read waits for output.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Output one read returns per stream; the next offsets say where to go on.
const READ_LIMIT: usize = 64 * 1024;

fn input(e: impl std::fmt::Display) -> ToolError {
    ToolError::Input(e.to_string())
}

fn process_id(raw: &str) -> Result<ProcessId, ToolError> {
    ProcessId::parse(raw).map_err(input)
}

fn view(info: &ProcessInfo) -> Value {
    json!({
        "process_id": info.id.as_str(),
        "pid": info.pid,
        "status": info.state.as_str(),
        "exit_code": info.state.exit_code(),
        "started_at": rfc3339(info.started_at),
        "ended_at": info.ended_at.map(rfc3339),
        "stdout_end": info.stdout.end,
        "stderr_end": info.stderr.end,
        "stdin_open": info.stdin.open,
    })
}

pub(super) async fn start(
    server: &SandboxerMcp,
    args: StartProcessParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let argv = super::exec::argv(args.argv, args.command)?;
    let mut exec = ExecRequest::new(argv)?.with_env(args.env.unwrap_or_default())?;
    if let Some(workdir) = args.workdir {
        exec = exec.with_workdir(workdir)?;
    }
    if let Some(stdin) = args.stdin {
        exec = exec.with_stdin(stdin.into_bytes());
    }
    let id = match args.process_id {
        Some(raw) => process_id(&raw)?,
        None => ProcessId::generate(),
    };
    let mut request =
        ProcessRequest::new(id, exec).keep_stdin_open(args.keep_stdin_open.unwrap_or(false));
    if let Some(ms) = args.timeout_ms {
        request = request
            .with_timeout(Duration::from_millis(ms))
            .map_err(input)?;
    }
    let (started, _) = server
        .services
        .start_process
        .execute(&chat, &request)
        .await?;
    let info = &started.info;
    let made = if started.created {
        "started"
    } else {
        "was already running under this id"
    };
    Ok(reply::success(
        format!(
            "process {} {made} (pid {}, {}); read_process_output reads its output",
            info.id,
            info.pid,
            info.state.as_str()
        ),
        json!({"created": started.created, "process": view(info)}),
    ))
}

pub(super) async fn read(
    server: &SandboxerMcp,
    args: ReadProcessParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let id = process_id(&args.process_id)?;
    let from = OutputCursor {
        stdout: args.stdout_offset.unwrap_or(0),
        stderr: args.stderr_offset.unwrap_or(0),
    };
    let wait = Duration::from_millis(args.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let follow = &server.services.follow_output;
    let mut taken = Taken::new(from);
    let snapshot = follow.open(&chat, &id, from, FollowMode::Snapshot).await?;
    taken.drain(snapshot, Duration::ZERO).await?;
    if taken.is_quiet() && !wait.is_zero() {
        let follower = follow
            .open(&chat, &id, taken.next, FollowMode::Follow)
            .await?;
        taken.drain(follower, wait).await?;
    }
    Ok(taken.reply(&id))
}

/// What a read gathered: each stream's text (up to the limit), where the
/// next read starts, and the process as last seen.
struct Taken {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    next: OutputCursor,
    info: Option<ProcessInfo>,
    cut: bool,
}

impl Taken {
    fn new(from: OutputCursor) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: Vec::new(),
            next: from,
            info: None,
            cut: false,
        }
    }

    fn is_quiet(&self) -> bool {
        self.stdout.is_empty()
            && self.stderr.is_empty()
            && self.info.as_ref().is_none_or(ProcessInfo::is_running)
    }

    /// Takes events until the follower ends, says where it stands, or (when
    /// following) the wait runs out once something came or the time is up.
    async fn drain(
        &mut self,
        mut follower: OutputFollower,
        wait: Duration,
    ) -> Result<(), ToolError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = if wait.is_zero() {
                follower.next().await
            } else {
                match tokio::time::timeout_at(deadline, follower.next()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(()),
                }
            };
            match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(FollowEvent::Output {
                    stream,
                    offset,
                    data,
                })) => {
                    let (kept, at) = match stream {
                        OutputStream::Stdout => (&mut self.stdout, &mut self.next.stdout),
                        OutputStream::Stderr => (&mut self.stderr, &mut self.next.stderr),
                    };
                    let room = READ_LIMIT.saturating_sub(kept.len());
                    let take = data.len().min(room);
                    kept.extend_from_slice(&data[..take]);
                    *at = offset + take as u64;
                    if take < data.len() {
                        self.cut = true;
                        return Ok(());
                    }
                    if !wait.is_zero() {
                        // Following: what came is the answer; a little more
                        // may be on its way, but the model asks again.
                        return Ok(());
                    }
                }
                Some(Ok(FollowEvent::Position { info, .. } | FollowEvent::Exited(info))) => {
                    self.info = Some(info);
                    return Ok(());
                }
            }
        }
    }

    fn reply(self, id: &ProcessId) -> CallToolResult {
        let stdout = String::from_utf8_lossy(&self.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&self.stderr).into_owned();
        let status = self.info.as_ref().map_or("running", |i| i.state.as_str());
        let exit_code = self.info.as_ref().and_then(|i| i.state.exit_code());
        let mut text = match exit_code {
            Some(code) if !self.cut => format!("process {id} exited with {code}"),
            _ => format!("process {id} is {status}"),
        };
        text.push_str(&format!(
            "; next offsets: stdout {}, stderr {}",
            self.next.stdout, self.next.stderr
        ));
        if self.cut {
            text.push_str("; more output is waiting: read again from those offsets");
        }
        for (name, stream) in [("stdout", &stdout), ("stderr", &stderr)] {
            if !stream.is_empty() {
                text.push_str(&format!("\n--- {name} ---\n{stream}"));
            }
        }
        reply::success(
            text,
            json!({
                "process_id": id.as_str(),
                "status": status,
                "exit_code": exit_code,
                "stdout": stdout,
                "stderr": stderr,
                "next_stdout_offset": self.next.stdout,
                "next_stderr_offset": self.next.stderr,
                "more": self.cut,
            }),
        )
    }
}

pub(super) async fn write_stdin(
    server: &SandboxerMcp,
    args: WriteStdinParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let id = process_id(&args.process_id)?;
    let write = StdinWrite {
        offset: None,
        data: args.data.into_bytes(),
        close: args.close.unwrap_or(false),
    };
    let sent = write.data.len();
    let (stdin, _) = server
        .services
        .process_io
        .write_stdin(&chat, &id, &write)
        .await?;
    Ok(reply::success(
        format!(
            "wrote {sent} bytes to {id}'s stdin ({} in all; stdin {})",
            stdin.offset,
            if stdin.open { "open" } else { "closed" }
        ),
        json!({"process_id": id.as_str(), "stdin_offset": stdin.offset, "stdin_open": stdin.open}),
    ))
}

pub(super) async fn kill(
    server: &SandboxerMcp,
    args: KillProcessParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let id = process_id(&args.process_id)?;
    if let Some(name) = args.signal {
        let signal = Signal::parse(&name).map_err(input)?;
        server
            .services
            .signal_process
            .execute(&chat, &id, signal)
            .await?;
        return Ok(reply::success(
            format!("sent {} to process {id}", signal.name()),
            json!({"process_id": id.as_str(), "signal": signal.name()}),
        ));
    }
    let (info, _) = server.services.kill_process.execute(&chat, &id).await?;
    Ok(reply::success(
        format!("process {id} and everything it started are gone"),
        json!({"process": view(&info)}),
    ))
}
