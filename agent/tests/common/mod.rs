//! Starts the built agent as a child with `--root <tempdir>` and talks to it
//! over its pipes, through the protocol's client or frame by frame.
#![allow(dead_code)] // Each test file uses its own part of this.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use sandboxer_agent_proto::{
    AgentClient, Decoded, ExecResult, ExecSpec, FrameCodec, MARKER_VAR, MAX_FRAME_BYTES, Reply,
    Request,
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
