//! What runs inside the in-memory runtime: the few programs the runtime
//! contract uses (`echo`, `cat`, `tee`, `pwd`, `env`, `sleep`, `true`,
//! `false`, and an `sh` that knows only `exit N`), on the sandbox's fake
//! workspace, and the runtime's own duties around any exec (the output cap
//! per stream, the timeout). There are no processes here: a program's run
//! time is its outcome's `duration`, and one that would outrun its timeout
//! holds the exec for the timeout and comes back `timed_out`, as a real
//! runtime's would after killing it.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{ExecOutcome, ExecRequest, WorkspacePath, path::WORKSPACE_ROOT};

use super::fake_workspace::{self, FakeFiles};

pub type ExecHandler = dyn Fn(&ExecRequest) -> ExecOutcome + Send + Sync;

/// Who answers an exec of the in-memory runtime.
#[derive(Clone)]
pub enum Programs {
    /// A test's handler (by default `echo_argv`).
    Scripted(Arc<ExecHandler>),
    /// The programs below, on the sandbox's files.
    Userland,
}

/// The default handler: exit 0, the argv joined as stdout.
pub fn echo_argv(request: &ExecRequest) -> ExecOutcome {
    ExecOutcome {
        exit_code: 0,
        stdout: request.argv.join(" ").into_bytes(),
        stderr: Vec::new(),
        timed_out: false,
        truncated: false,
        duration: Duration::from_millis(1),
    }
}

/// The exit code of a command killed at its timeout (128 + SIGKILL).
pub const KILLED: i64 = 137;

/// Runs `request` on `files` as the programs above would.
pub fn run(request: &ExecRequest, files: &mut FakeFiles) -> ExecOutcome {
    let args: Vec<&str> = request.argv[1..].iter().map(String::as_str).collect();
    let stdin = request.stdin.as_deref().unwrap_or_default();
    let mut out = Ran::default();
    match request.argv[0].as_str() {
        "true" => {}
        "false" => out.code = 1,
        "echo" => out.stdout = format!("{}\n", args.join(" ")).into_bytes(),
        "pwd" => out.stdout = format!("{}\n", request.workdir).into_bytes(),
        "env" if args.is_empty() => {
            for (name, value) in &request.env {
                out.stdout.extend(format!("{name}={value}\n").into_bytes());
            }
        }
        "env" => out.fail(2, "env: only `env` without arguments is emulated"),
        "sleep" => match args.first().and_then(|s| s.parse::<f64>().ok()) {
            Some(secs) if secs >= 0.0 => out.took = Duration::from_secs_f64(secs),
            _ => out.fail(1, "sleep: invalid number"),
        },
        "cat" if args.is_empty() => out.stdout = stdin.to_vec(),
        "cat" => {
            for name in args {
                match resolve(&request.workdir, name).map(|p| fake_workspace::read(files, &p)) {
                    Some(Ok(bytes)) => out.stdout.extend(bytes),
                    _ => out.fail(
                        1,
                        &format!("cat: can't open '{name}': No such file or directory"),
                    ),
                }
            }
        }
        "tee" => {
            out.stdout = stdin.to_vec();
            for name in args {
                let wrote = resolve(&request.workdir, name)
                    .map(|p| fake_workspace::write(files, &p, stdin));
                if !matches!(wrote, Some(Ok(()))) {
                    out.fail(1, &format!("tee: {name}: cannot create"));
                }
            }
        }
        "sh" => match args[..] {
            ["-c", script] => match script.strip_prefix("exit ").map(|c| c.trim().parse()) {
                Some(Ok(code)) => out.code = code,
                _ => out.fail(2, "sh: the in-memory runtime has no shell, only `exit N`"),
            },
            _ => out.fail(2, "sh: only `sh -c 'exit N'`"),
        },
        program => out.fail(127, &format!("{program}: not found")),
    }
    ExecOutcome {
        exit_code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
        timed_out: false,
        truncated: false,
        duration: out.took,
    }
}

/// What every runtime does around a command, whoever answered it: a
/// command that would outrun its timeout is killed there (how long the
/// caller waits is that timeout), and each stream is cut at the cap.
pub fn as_a_runtime_would(request: &ExecRequest, mut outcome: ExecOutcome) -> ExecOutcome {
    if outcome.duration > request.timeout {
        outcome.timed_out = true;
        outcome.exit_code = KILLED;
        outcome.duration = request.timeout;
    }
    for stream in [&mut outcome.stdout, &mut outcome.stderr] {
        if stream.len() > request.output_limit {
            stream.truncate(request.output_limit);
            outcome.truncated = true;
        }
    }
    outcome
}

#[derive(Default)]
struct Ran {
    code: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    took: Duration,
}

impl Ran {
    fn fail(&mut self, code: i64, why: &str) {
        self.code = code;
        self.stderr.extend(why.as_bytes());
        self.stderr.push(b'\n');
    }
}

/// A program's path argument, relative to `workdir`, as a workspace path;
/// `None` outside the workspace, which the fake has no files for.
fn resolve(workdir: &str, name: &str) -> Option<WorkspacePath> {
    let absolute = if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("{workdir}/{name}")
    };
    let below = absolute.strip_prefix(WORKSPACE_ROOT)?.strip_prefix('/')?;
    WorkspacePath::parse(below).ok()
}
