//! The port's exec and file calls over a sandbox's agent, and the agent's
//! answers as the port's outcomes and errors.

use std::time::Duration;

use sandboxer_agent_proto::{
    AgentClient, AgentError, ClientError, Entry, EntryKind, ErrorKind, ExecSpec, Reply, Request,
};
use sandboxer_core::domain::{ExecOutcome, ExecRequest, FileEntry, FileKind, WorkspacePath};
use sandboxer_core::port::RuntimeError;
use serde_bytes::ByteBuf;

use crate::runtime::DockerSandboxRuntime;

/// Between TERM and KILL of a timed-out command's process group.
pub(crate) const TERM_GRACE: Duration = Duration::from_millis(500);
/// Added to a call's own time for the round trip and a loaded agent.
const CALL_MARGIN: Duration = Duration::from_secs(5);

impl DockerSandboxRuntime {
    pub(crate) async fn exec_via_agent(
        &self,
        agent: &AgentClient,
        target: &str,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, RuntimeError> {
        let spec = ExecSpec {
            argv: request.argv.clone(),
            env: env_pairs(&request.env),
            workdir: request.workdir.clone(),
            stdin: request.stdin.clone().map(ByteBuf::from),
            timeout_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            output_limit: request.output_limit as u64,
            kill_grace_ms: u64::try_from(TERM_GRACE.as_millis()).unwrap_or(u64::MAX),
        };
        let wait = request.timeout + TERM_GRACE + self.config.exec_kill_grace + CALL_MARGIN;
        match self.ask(agent, target, &Request::Exec(spec), wait).await? {
            Reply::Exec(done) => Ok(ExecOutcome {
                exit_code: done.exit_code,
                stdout: done.stdout.into_vec(),
                stderr: done.stderr.into_vec(),
                timed_out: done.timed_out,
                truncated: done.truncated,
                duration: Duration::from_micros(done.duration_us),
            }),
            Reply::Error(e) => Err(refusal(e, None)),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn put_via_agent(
        &self,
        agent: &AgentClient,
        target: &str,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError> {
        let request = Request::WriteFile {
            path: path.as_str().to_owned(),
            data: ByteBuf::from(contents.to_vec()),
        };
        match self.ask(agent, target, &request, self.file_wait()).await? {
            Reply::Done => Ok(()),
            Reply::Error(e) => Err(refusal(e, Some(path))),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn get_via_agent(
        &self,
        agent: &AgentClient,
        target: &str,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError> {
        let request = Request::ReadFile {
            path: path.as_str().to_owned(),
            limit: self.config.max_download_bytes,
        };
        match self.ask(agent, target, &request, self.file_wait()).await? {
            Reply::File(bytes) => Ok(bytes.into_vec()),
            Reply::Error(e) => Err(refusal(e, Some(path))),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) async fn list_via_agent(
        &self,
        agent: &AgentClient,
        target: &str,
        path: Option<&WorkspacePath>,
    ) -> Result<Vec<FileEntry>, RuntimeError> {
        let request = Request::List {
            path: path.map_or_else(|| ".".to_owned(), |p| p.as_str().to_owned()),
        };
        match self.ask(agent, target, &request, self.file_wait()).await? {
            Reply::List(entries) => Ok(entries.into_iter().map(file_entry).collect()),
            Reply::Error(e) if e.kind == ErrorKind::NotADirectory => Err(
                RuntimeError::NotADirectory(path.map_or_else(String::new, ToString::to_string)),
            ),
            Reply::Error(e) if e.kind == ErrorKind::NotFound => Err(RuntimeError::FileNotFound(
                path.map_or_else(String::new, ToString::to_string),
            )),
            Reply::Error(e) => Err(refusal(e, path)),
            other => Err(unexpected(&other)),
        }
    }

    fn file_wait(&self) -> Duration {
        self.config.call_timeout
    }

    /// One request; a stream that closed under it is a container that died
    /// (`ContainerGone`) or a broken attach (`Other`; the next call opens
    /// another).
    pub(crate) async fn ask(
        &self,
        agent: &AgentClient,
        target: &str,
        request: &Request,
        wait: Duration,
    ) -> Result<Reply, RuntimeError> {
        match agent.call(request, wait).await {
            Ok(reply) => Ok(reply),
            Err(ClientError::Timeout(after)) => Err(RuntimeError::Timeout(format!(
                "the sandbox agent did not answer within {after:?} (stopped or overloaded)"
            ))),
            Err(ClientError::TooLarge(why)) => Err(RuntimeError::Rejected(why)),
            Err(ClientError::Protocol(why)) => Err(RuntimeError::Other(format!(
                "the sandbox agent answered garbage: {why}"
            ))),
            Err(ClientError::Closed(why)) => {
                if self.inspect_target(target).await? {
                    Err(RuntimeError::Other(format!(
                        "the stream to the sandbox agent broke: {why}"
                    )))
                } else {
                    Err(RuntimeError::ContainerGone)
                }
            }
        }
    }
}

/// A request's environment as the agent protocol carries it.
pub(crate) fn env_pairs(env: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// An agent's refusal as the port's error.
fn refusal(e: AgentError, path: Option<&WorkspacePath>) -> RuntimeError {
    let named = || path.map_or_else(|| e.message.clone(), ToString::to_string);
    match e.kind {
        ErrorKind::NotFound if path.is_some() => RuntimeError::FileNotFound(named()),
        // A file where a directory should be, on the way to a file.
        ErrorKind::NotAFile | ErrorKind::NotADirectory if path.is_some() => {
            RuntimeError::NotAFile(named())
        }
        ErrorKind::BadRequest
        | ErrorKind::Conflict
        | ErrorKind::TooMany
        | ErrorKind::OutsideWorkspace
        | ErrorKind::TooLarge
        | ErrorKind::NotFound
        | ErrorKind::NotAFile
        | ErrorKind::NotADirectory => RuntimeError::Rejected(e.message),
        ErrorKind::NoSpace => crate::errors::no_space(&e.message),
        ErrorKind::Unsupported | ErrorKind::Io => {
            RuntimeError::Other(format!("the sandbox agent failed: {}", e.message))
        }
    }
}

pub(crate) fn unexpected(reply: &Reply) -> RuntimeError {
    let kind = match reply {
        Reply::Hello(_) => "hello",
        Reply::Exec(_) => "exec",
        Reply::Done => "done",
        Reply::File(_) => "file",
        Reply::Stat(_) => "stat",
        Reply::List(_) => "list",
        Reply::Error(_) => "error",
        Reply::Process(_) => "process",
        Reply::Processes(_) => "processes",
        Reply::Output(_) => "output",
        Reply::CursorExpired(_) => "cursor expired",
        Reply::Stdin(_) => "stdin",
    };
    RuntimeError::Other(format!(
        "the sandbox agent answered out of turn: a {kind} reply"
    ))
}

fn file_entry(entry: Entry) -> FileEntry {
    FileEntry {
        name: entry.name,
        kind: match entry.kind {
            EntryKind::File => FileKind::File,
            EntryKind::Dir => FileKind::Dir,
            EntryKind::Symlink => FileKind::Symlink,
            EntryKind::Other => FileKind::Other,
        },
        size: entry.size,
        modified_ms: entry.mtime_ms,
    }
}
