//! Running a command in a sandbox: argv, stdin, env, workdir; output capped
//! per stream (and drained past the cap so the command never blocks on a
//! full pipe); a timeout that kills the command's whole process tree.

use std::pin::Pin;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures::{Stream, StreamExt};
use sandboxer_core::domain::{ExecOutcome, ExecRequest};
use sandboxer_core::port::{RuntimeError, SandboxRef};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::agent::Via;
use crate::attr;
use crate::errors::{Fault, Subject};
use crate::runtime::DockerSandboxRuntime;

/// Every exec carries `SANDBOXER_EXEC_ID=<unique id>` in its environment;
/// its descendants inherit it, which is how a timeout finds them all. The
/// agent uses the same variable.
pub(crate) const MARKER_VAR: &str = sandboxer_agent_proto::MARKER_VAR;

/// Shortest time left to collect the output of a killed command.
const MIN_DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);

/// The polls for the exit code of an exec whose output ended (the engine may
/// still see it running a moment): 12 in all, 5 ms doubling to at most
/// 200 ms between them.
const EXIT_POLL: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(5))
    .with_max_delay(Duration::from_millis(200))
    .with_max_times(11);

/// Why one poll for an exit code did not give it.
enum Poll {
    /// The exec still runs: poll again.
    Running,
    Failed(RuntimeError),
}

pub(crate) type Output =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

impl DockerSandboxRuntime {
    /// Runs `request` through the sandbox's agent, else `docker exec`; also
    /// says how a timed-out command was killed and which way it went.
    pub(crate) async fn exec_routed(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<(ExecOutcome, Option<&'static str>, Via), RuntimeError> {
        let target = Self::target(sandbox);
        if let Some(agent) = self.agent_of(&target).await? {
            let outcome = self.exec_via_agent(&agent, &target, request).await?;
            let kill = outcome.timed_out.then_some(attr::kill::AGENT);
            return Ok((outcome, kill, Via::Agent));
        }
        let (outcome, kill) = self.exec_in(sandbox, request).await?;
        Ok((outcome, kill, Via::Docker))
    }

    /// Runs `request` through `docker exec`; also says how a timed-out
    /// command was killed.
    pub(crate) async fn exec_in(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<(ExecOutcome, Option<&'static str>), RuntimeError> {
        let target = Self::target(sandbox);
        let marker = Uuid::now_v7().simple().to_string();
        let mut env: Vec<String> = request
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push(format!("{MARKER_VAR}={marker}"));
        let config = ExecConfig {
            attach_stdin: Some(request.stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            env: Some(env),
            cmd: Some(request.argv.clone()),
            working_dir: Some(request.workdir.clone()),
            ..Default::default()
        };
        let docker = &self.engine.docker;
        let exec = self
            .engine
            .call("create exec", docker.create_exec(&target, config))
            .await
            .map_err(|f| f.on(Subject::Container))?;
        let started_at = Instant::now();
        let (mut output, input) = self.start_attached(&exec.id).await?;

        let mut capture = Capture::new(request.output_limit);
        let io = async {
            let (_, read) = futures::join!(
                feed_stdin(input, request.stdin.as_deref()),
                capture.drain(&mut output)
            );
            read
        };
        let (timed_out, kill) = match tokio::time::timeout(request.timeout, io).await {
            Ok(read) => {
                read.map_err(|e| Fault::from(e).on(Subject::Container))?;
                (false, None)
            }
            Err(_) => {
                let deadline = Instant::now() + self.config.exec_kill_grace;
                let how = self.kill_exec(&target, &exec.id, &marker, deadline).await;
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(MIN_DRAIN_AFTER_KILL);
                // Whatever the killed tree printed last; a stream that does not
                // end is dropped.
                let _ = tokio::time::timeout(left, capture.drain(&mut output)).await;
                (true, Some(how))
            }
        };
        drop(output);
        let exit_code = self.exit_code(&exec.id).await?;
        let (exit_code, stdout, stderr) =
            runtime_failure_as_shell(exit_code, capture.stdout, capture.stderr);
        let outcome = ExecOutcome {
            exit_code,
            stdout,
            stderr,
            timed_out,
            truncated: capture.truncated,
            duration: started_at.elapsed(),
        };
        Ok((outcome, kill))
    }

    pub(crate) async fn start_attached(
        &self,
        exec_id: &str,
    ) -> Result<(Output, Pin<Box<dyn AsyncWrite + Send>>), RuntimeError> {
        let options = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: None,
        };
        let started = self
            .engine
            .call(
                "start exec",
                self.engine.docker.start_exec(exec_id, Some(options)),
            )
            .await
            .map_err(|f| f.on(Subject::Container))?;
        match started {
            StartExecResults::Attached { output, input } => Ok((output, input)),
            StartExecResults::Detached => Err(RuntimeError::Other("exec started detached".into())),
        }
    }

    /// The exec's exit code once the engine has seen it end; -1 if it still
    /// runs (a tree that survived every kill).
    async fn exit_code(&self, exec_id: &str) -> Result<i64, RuntimeError> {
        let poll = move || async move {
            let info = self
                .engine
                .call("inspect exec", self.engine.docker.inspect_exec(exec_id))
                .await
                .map_err(|f| Poll::Failed(f.on(Subject::Container)))?;
            match info.running {
                Some(true) => Err(Poll::Running),
                _ => Ok(info.exit_code.unwrap_or(-1)),
            }
        };
        match poll
            .retry(EXIT_POLL)
            .when(|p| matches!(p, Poll::Running))
            .await
        {
            Ok(code) => Ok(code),
            Err(Poll::Running) => Ok(-1),
            Err(Poll::Failed(err)) => Err(err),
        }
    }
}

/// When the OCI runtime cannot start the program, Docker answers 126 and
/// puts the runtime's message on stdout. Callers expect what a shell says:
/// 127 for a program that is not there, the message on stderr.
fn runtime_failure_as_shell(
    code: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
) -> (i64, Vec<u8>, Vec<u8>) {
    if code != 126 || !stdout.starts_with(b"OCI runtime exec failed") {
        return (code, stdout, stderr);
    }
    let text = String::from_utf8_lossy(&stdout).to_lowercase();
    let missing = text.contains("not found") || text.contains("no such file");
    let mut moved = stderr;
    moved.extend_from_slice(&stdout);
    (if missing { 127 } else { code }, Vec::new(), moved)
}

async fn feed_stdin(mut input: Pin<Box<dyn AsyncWrite + Send>>, stdin: Option<&[u8]>) {
    if let Some(bytes) = stdin {
        // A command that exits without reading its input breaks the pipe:
        // that is its business, not an error of the exec.
        if input.write_all(bytes).await.is_ok() {
            let _ = input.shutdown().await;
        }
    }
}

/// Both streams, each kept up to the limit; the rest is read and dropped.
pub(crate) struct Capture {
    limit: usize,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) truncated: bool,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
        }
    }

    pub(crate) async fn drain(
        &mut self,
        output: &mut Output,
    ) -> Result<(), bollard::errors::Error> {
        while let Some(item) = output.next().await {
            self.push(item?);
        }
        Ok(())
    }

    fn push(&mut self, chunk: LogOutput) {
        let (buffer, bytes) = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (&mut self.stdout, message)
            }
            LogOutput::StdErr { message } => (&mut self.stderr, message),
            LogOutput::StdIn { .. } => return,
        };
        let room = self.limit.saturating_sub(buffer.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn keeps_each_stream_up_to_the_limit() {
        let mut c = Capture::new(4);
        c.push(LogOutput::StdOut {
            message: Bytes::from_static(b"abc"),
        });
        c.push(LogOutput::StdErr {
            message: Bytes::from_static(b"xy"),
        });
        assert!(!c.truncated);
        c.push(LogOutput::StdOut {
            message: Bytes::from_static(b"def"),
        });
        c.push(LogOutput::StdOut {
            message: Bytes::from_static(b"ghi"),
        });
        assert_eq!(c.stdout, b"abcd");
        assert_eq!(c.stderr, b"xy");
        assert!(c.truncated);
    }
}
