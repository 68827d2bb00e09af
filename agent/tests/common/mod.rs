//! Starts the built agent as a child with `--root <tempdir>` and talks to it
//! over its pipes, through the protocol's client or frame by frame.
#![allow(dead_code)] // Each test file uses its own part of this.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use sandboxer_agent_proto::{
    AgentClient, Decoded, ExecResult, ExecSpec, FrameCodec, MARKER_VAR, MAX_FRAME_BYTES,
    ProcessInfo, ProcessSpec, ProcessState, ReadSpec, Reply, Request,
};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::codec::FramedRead;

/// Generous: a loaded 2-core machine must not fail a test by slowness.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The agent, killed (and its root removed) when dropped.
pub struct Agent {
    pub client: AgentClient,
    pub root: TempDir,
    _child: Child,
}

fn spawn(root: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sandboxer-agent"))
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the agent starts")
}

pub fn start() -> Agent {
    let root = tempfile::tempdir().expect("a tempdir");
    let mut child = spawn(root.path());
    let stdout = child.stdout.take().expect("piped stdout");
    let stdin = child.stdin.take().expect("piped stdin");
    Agent {
        client: AgentClient::new(stdout, stdin, MAX_FRAME_BYTES),
        root,
        _child: child,
    }
}

impl Agent {
    pub fn root(&self) -> PathBuf {
        self.root.path().canonicalize().expect("the root exists")
    }

    pub async fn call(&self, request: Request) -> Reply {
        self.client
            .call(&request, CALL_TIMEOUT)
            .await
            .expect("the agent answers")
    }

    pub async fn exec(&self, spec: ExecSpec) -> ExecResult {
        match self.call(Request::Exec(spec)).await {
            Reply::Exec(result) => result,
            other => panic!("not an exec result: {other:?}"),
        }
    }

    /// Runs `argv` with the defaults of `spec`.
    pub async fn run(&self, argv: &[&str]) -> ExecResult {
        self.exec(spec(argv)).await
    }
}

impl Agent {
    /// Starts a live process; panics unless the agent answers one.
    pub async fn start_process(&self, spec: ProcessSpec) -> ProcessInfo {
        match self.call(Request::Start(spec)).await {
            Reply::Process(info) => info,
            other => panic!("not a process: {other:?}"),
        }
    }

    pub async fn read_output(
        &self,
        id: &str,
        (stdout_offset, stderr_offset): (u64, u64),
        wait_ms: u64,
        follower: Option<u64>,
    ) -> Reply {
        self.call(Request::ReadOutput(ReadSpec {
            id: id.to_owned(),
            stdout_offset,
            stderr_offset,
            max_bytes: 1 << 20,
            wait_ms,
            follower,
        }))
        .await
    }

    /// Long polls at the ends of the streams until the process has ended.
    pub async fn wait_ended(&self, id: &str) -> ProcessInfo {
        let mut offsets = (0, 0);
        loop {
            let info = match self.read_output(id, offsets, 5_000, None).await {
                Reply::Output(chunk) => chunk.info,
                Reply::CursorExpired(info) => info,
                other => panic!("not output: {other:?}"),
            };
            if matches!(info.state, ProcessState::Exited { .. }) {
                return info;
            }
            offsets = (info.stdout.end, info.stderr.end);
        }
    }

    /// Follows the process from offset 0 to its end: (stdout, stderr, the
    /// last info). Panics on a gap.
    pub async fn follow(&self, id: &str, token: u64) -> (Vec<u8>, Vec<u8>, ProcessInfo) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        loop {
            let offsets = (stdout.len() as u64, stderr.len() as u64);
            let chunk = match self.read_output(id, offsets, 10_000, Some(token)).await {
                Reply::Output(chunk) => chunk,
                other => panic!("a gap at {offsets:?}: {other:?}"),
            };
            stdout.extend_from_slice(&chunk.stdout);
            stderr.extend_from_slice(&chunk.stderr);
            let info = chunk.info;
            let at_end =
                (info.stdout.end, info.stderr.end) == (stdout.len() as u64, stderr.len() as u64);
            if at_end && matches!(info.state, ProcessState::Exited { .. }) {
                return (stdout, stderr, info);
            }
        }
    }

    pub async fn kill_process(&self, id: &str) -> ProcessInfo {
        match self.call(Request::Kill { id: id.to_owned() }).await {
            Reply::Process(info) => info,
            other => panic!("not a process: {other:?}"),
        }
    }
}

/// A live process with no stdin, no timeout, 1 MiB per stream and room
/// for 64 running.
pub fn process(id: &str, argv: &[&str]) -> ProcessSpec {
    ProcessSpec {
        id: id.to_owned(),
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        workdir: String::new(),
        stdin: None,
        keep_stdin_open: false,
        pty: None,
        timeout_ms: 0,
        kill_grace_ms: 200,
        buffer_bytes: 1 << 20,
        max_running: 64,
    }
}

/// The marker in a process's environment (readable: it is dumpable).
pub fn marker_of(pid: u32) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("its environment");
    let prefix = format!("{MARKER_VAR}=");
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(text)
        .expect("a marker")
}

/// A command with no stdin, a 60 s timeout and 1 MiB per stream.
pub fn spec(argv: &[&str]) -> ExecSpec {
    ExecSpec {
        argv: argv.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        workdir: String::new(),
        stdin: None,
        timeout_ms: 60_000,
        output_limit: 1 << 20,
        kill_grace_ms: 200,
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Pids of live processes whose environment carries `MARKER_VAR=marker`.
pub fn marked(marker: &str) -> Vec<i32> {
    let needle = format!("{MARKER_VAR}={marker}").into_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|e| e == needle) {
            found.push(pid);
        }
    }
    found
}

/// Waits up to 5 s for no process to carry `marker`; the pids left if any.
pub async fn none_marked(marker: &str) -> Vec<i32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = marked(marker);
        if left.is_empty() || tokio::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills what a test left running on purpose.
pub fn kill_marked(marker: &str) {
    for pid in marked(marker) {
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The agent spoken to frame by frame, for what the client never sends.
pub struct RawAgent {
    pub stdin: Option<ChildStdin>,
    pub frames: FramedRead<ChildStdout, FrameCodec>,
    pub child: Child,
    _root: TempDir,
}

pub fn start_raw() -> RawAgent {
    let root = tempfile::tempdir().expect("a tempdir");
    let mut child = spawn(root.path());
    let stdout = child.stdout.take().expect("piped stdout");
    RawAgent {
        stdin: child.stdin.take(),
        frames: FramedRead::new(stdout, FrameCodec::new(MAX_FRAME_BYTES)),
        child,
        _root: root,
    }
}

impl RawAgent {
    pub async fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).await.expect("the agent reads");
        stdin.flush().await.expect("the agent reads");
    }

    /// The next reply frame, decoded.
    pub async fn reply(&mut self) -> (u64, Reply) {
        let next = tokio::time::timeout(CALL_TIMEOUT, self.frames.next()).await;
        match next.expect("a reply in time") {
            Some(Ok(Decoded::Frame { id, body })) => {
                (id, postcard::from_bytes(&body).expect("a reply"))
            }
            Some(Ok(other)) => panic!("the agent wrote a non-frame: {other:?}"),
            Some(Err(e)) => panic!("reading replies failed: {e}"),
            None => panic!("the agent's stdout ended"),
        }
    }
}
