//! `sandboxer-agent`: the entrypoint (PID 1) of every sandbox container.
//!
//! It serves the service's requests over its stdin / stdout (the container's
//! attach stream, see `serve`), reaps every zombie (`reap`), runs commands
//! (`exec`, `kill`), keeps live processes (`process`) and runs file
//! operations under the workspace (`files`).
//! As PID 1 it catches and drops SIGTERM, SIGINT, SIGHUP, SIGQUIT and the
//! user signals, so nothing inside the sandbox stops it: Linux drops
//! handler-less signals to a namespace's init by itself, but gVisor does
//! not (a `kill -TERM 1` from inside ended the sandbox there). Caught, not
//! ignored: an exec resets caught signals to their defaults, so commands
//! get the usual dispositions. SIGKILL and SIGSTOP from inside are dropped
//! by the kernel (runc) or gVisor's.

mod exec;
mod files;
mod kill;
mod process;
mod reap;
mod serve;
mod session_env;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Threads for file operations, spawns and sweeps. Every thread counts
/// against the sandbox's pids limit, so the pool stays small.
const BLOCKING_THREADS: usize = 4;

const USAGE: &str = "usage: sandboxer-agent [--root DIR]";

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args = args
        .into_iter()
        .map(|arg| arg.to_string_lossy().into_owned());
    let root = match parse_args(args) {
        Ok(root) => root,
        Err(message) => {
            eprintln!("sandboxer-agent: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Not dumpable: the sandbox user (our own uid) can then neither ptrace
    // the agent nor open its /proc/<pid>/fd, where the attach stream lives.
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        eprintln!("sandboxer-agent: cannot make itself not dumpable: {e}");
    }
    // As PID 1 orphans come to us anyway; as a subreaper they do also when
    // the agent is not PID 1 (tests), so a command's escaped descendants
    // stay ours to reap and to kill.
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        eprintln!("sandboxer-agent: cannot become a child subreaper: {e}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(Duration::from_secs(5))
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sandboxer-agent: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid1 = rustix::process::getpid().is_init();
    let served = runtime.block_on(async move {
        if pid1 {
            swallow_stop_signals();
        }
        serve::run(root).await
    });
    match served {
        // Exit at once: a blocking thread stuck on a read must not hold us.
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("sandboxer-agent: {e}");
            std::process::exit(1);
        }
    }
}

/// Catches the signals that would end a process by default, and drops them.
fn swallow_stop_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
        SignalKind::quit(),
        SignalKind::user_defined1(),
        SignalKind::user_defined2(),
        SignalKind::alarm(),
    ] {
        match signal(kind) {
            Ok(mut caught) => {
                tokio::spawn(async move { while caught.recv().await.is_some() {} });
            }
            Err(e) => eprintln!("sandboxer-agent: cannot catch signal {kind:?}: {e}"),
        }
    }
}

/// The workspace root: `/workspace` unless `--root DIR` says otherwise.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<PathBuf, String> {
    let mut root = PathBuf::from(files::DEFAULT_ROOT);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next().ok_or("--root needs a directory")?.into(),
            "--version" => {
                println!("sandboxer-agent {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(root)
}
