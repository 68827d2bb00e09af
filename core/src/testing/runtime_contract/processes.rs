//! The contract's live processes: start (idempotent by id), output by
//! offsets until the end, stdin written, retried and closed, signals, kill,
//! the running limit, and the cursors a buffer no longer holds.

use std::time::Duration;

use crate::domain::{
    OutputCursor, ProcessId, ProcessInfo, ProcessRequest, ProcessState, ReadOptions, Signal,
    StdinWrite,
};
use crate::port::{ProcessLimits, RuntimeError, SandboxRef};

use super::{Outcome, RuntimeFixture, cmd, remove, start, unexpected};

const LIMITS: ProcessLimits = ProcessLimits {
    max_running: 64,
    buffer_bytes: 1024 * 1024,
};
/// How long a property waits for a process to end.
const ENDS_WITHIN: Duration = Duration::from_secs(30);

fn process(id: &str, argv: &[&str]) -> ProcessRequest {
    ProcessRequest::new(ProcessId::parse(id).expect("a valid id"), cmd(argv))
}

/// Reads everything from offset 0 until the process ended: both streams
/// and the final info.
async fn read_to_end(
    f: &dyn RuntimeFixture,
    s: &SandboxRef,
    id: &ProcessId,
) -> Result<(Vec<u8>, Vec<u8>, ProcessInfo), String> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut at = OutputCursor::default();
    let deadline = tokio::time::Instant::now() + ENDS_WITHIN;
    loop {
        let options = ReadOptions {
            max_bytes: 64 * 1024,
            wait: Duration::from_secs(2),
            follower: None,
        };
        let read = f
            .runtime()
            .read_output(s, id, at, options)
            .await
            .map_err(unexpected("read_output"))?;
        out.extend_from_slice(&read.stdout);
        err.extend_from_slice(&read.stderr);
        let last = read.is_last(at);
        at = read.next_cursor(at);
        if last {
            return Ok((out, err, read.info));
        }
        check!(
            tokio::time::Instant::now() < deadline,
            "process {id} did not end within {ENDS_WITHIN:?}: {:?}",
            read.info
        );
    }
}

/// A started process's output and exit code; the same start again answers
/// the same process, another command under its id is a conflict.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn processes_start_read_and_end(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let rt = f.runtime();
    let echo = process("echo-1", &["echo", "hello"]);
    let first = rt
        .start_process(&s, &echo, LIMITS)
        .await
        .map_err(unexpected("start_process"))?;
    check!(first.created, "a first start made nothing: {first:?}");
    let (out, err, info) = read_to_end(f, &s, &echo.id).await?;
    check_eq!(
        (out.as_slice(), err.as_slice()),
        (&b"hello\n"[..], &b""[..]),
        "echo's output"
    );
    check_eq!(info.state.exit_code(), Some(0), "echo's exit ({info:?})");
    check_eq!(
        (info.stdout.start, info.stdout.end),
        (0, 6),
        "stdout's offsets"
    );
    let again = rt
        .start_process(&s, &echo, LIMITS)
        .await
        .map_err(unexpected("start_process again"))?;
    check!(
        !again.created && again.info.pid == first.info.pid,
        "the same start again made another process: {again:?}"
    );
    let other = process("echo-1", &["echo", "other"]);
    match rt.start_process(&s, &other, LIMITS).await {
        Err(RuntimeError::Conflict(_)) => {}
        got => return Err(format!("another command under a taken id: {got:?}")),
    }
    let missing = process("missing", &["no-such-program"]);
    rt.start_process(&s, &missing, LIMITS)
        .await
        .map_err(unexpected("start_process of a missing program"))?;
    let (_, err, info) = read_to_end(f, &s, &missing.id).await?;
    check_eq!(
        info.state.exit_code(),
        Some(127),
        "a missing program's exit"
    );
    check!(
        String::from_utf8_lossy(&err).contains("no-such-program"),
        "stderr does not name the missing program: {err:?}"
    );
    let listed = rt
        .list_processes(&s)
        .await
        .map_err(unexpected("list_processes"))?;
    let ids: Vec<_> = listed.iter().map(|p| p.id.as_str()).collect();
    check_eq!(ids, vec!["echo-1", "missing"], "the listed processes");
    remove(f, &r, &s).await
}

/// Stdin kept open: writes come back through `cat`, a retried write is not
/// doubled, a gap is refused, close ends it, and a closed stdin refuses more.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn processes_stdin_round_trip(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let rt = f.runtime();
    let cat = process("cat", &["cat"]).keep_stdin_open(true);
    rt.start_process(&s, &cat, LIMITS)
        .await
        .map_err(unexpected("start_process"))?;
    let write = |offset: Option<u64>, data: &[u8], close: bool| StdinWrite {
        offset,
        data: data.to_vec(),
        close,
    };
    let id = &cat.id;
    let first = rt
        .write_stdin(&s, id, &write(Some(0), b"abc", false))
        .await
        .map_err(unexpected("write_stdin"))?;
    check_eq!((first.offset, first.open), (3, true), "after abc");
    let retried = rt
        .write_stdin(&s, id, &write(Some(0), b"abc", false))
        .await
        .map_err(unexpected("write_stdin retried"))?;
    check_eq!(retried.offset, 3, "a retried write's offset");
    match rt.write_stdin(&s, id, &write(Some(10), b"x", false)).await {
        Err(RuntimeError::InvalidOffset(_)) => {}
        got => return Err(format!("a write past the offset written: {got:?}")),
    }
    let closed = rt
        .write_stdin(&s, id, &write(Some(1), b"bcdef", true))
        .await
        .map_err(unexpected("write_stdin with close"))?;
    check_eq!((closed.offset, closed.open), (6, false), "after close");
    let (out, _, info) = read_to_end(f, &s, id).await?;
    check_eq!(out.as_slice(), &b"abcdef"[..], "what cat echoed");
    check_eq!(info.state.exit_code(), Some(0), "cat's exit");
    match rt.write_stdin(&s, id, &write(None, b"more", false)).await {
        Err(RuntimeError::Conflict(_)) => {}
        got => return Err(format!("a write to a closed stdin: {got:?}")),
    }
    remove(f, &r, &s).await
}

/// TERM ends a process with 143, kill with 137 (`killed`), the running
/// limit refuses one more, and an unknown id is `ProcessNotFound`.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn processes_signal_kill_and_limit(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let rt = f.runtime();
    let two = ProcessLimits {
        max_running: 2,
        ..LIMITS
    };
    let a = process("a", &["sleep", "30"]);
    let b = process("b", &["sleep", "30"]);
    let c = process("c", &["sleep", "30"]);
    for p in [&a, &b] {
        rt.start_process(&s, p, two)
            .await
            .map_err(unexpected("start_process"))?;
    }
    match rt.start_process(&s, &c, two).await {
        Err(RuntimeError::TooManyProcesses(2)) => {}
        got => return Err(format!("a start past the limit: {got:?}")),
    }
    rt.signal_process(&s, &a.id, Signal::Term)
        .await
        .map_err(unexpected("signal_process"))?;
    let (_, _, ended) = read_to_end(f, &s, &a.id).await?;
    check_eq!(ended.state.exit_code(), Some(143), "TERM's exit");
    let killed = rt
        .kill_process(&s, &b.id)
        .await
        .map_err(unexpected("kill_process"))?;
    check!(
        matches!(
            killed.state,
            ProcessState::Exited {
                exit_code: 137,
                killed: true,
                ..
            }
        ),
        "a killed process: {killed:?}"
    );
    rt.start_process(&s, &c, two)
        .await
        .map_err(unexpected("a start once others ended"))?;
    rt.kill_process(&s, &c.id)
        .await
        .map_err(unexpected("kill_process"))?;
    let unknown = ProcessId::parse("nobody").expect("a valid id");
    match rt.process_status(&s, &unknown).await {
        Err(RuntimeError::ProcessNotFound(_)) => {}
        got => return Err(format!("status of an unknown process: {got:?}")),
    }
    match rt.signal_process(&s, &unknown, Signal::Term).await {
        Err(RuntimeError::ProcessNotFound(_)) => {}
        got => return Err(format!("a signal to an unknown process: {got:?}")),
    }
    match rt.kill_process(&s, &unknown).await {
        Err(RuntimeError::ProcessNotFound(_)) => {}
        got => return Err(format!("a kill of an unknown process: {got:?}")),
    }
    remove(f, &r, &s).await
}

/// An offset the buffer no longer holds is `CursorExpired` with the oldest
/// offsets; one past the end is refused.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn processes_cursor_expired_and_bad_offsets(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let rt = f.runtime();
    let small = ProcessLimits {
        buffer_bytes: 4096,
        ..LIMITS
    };
    let long = "x".repeat(10_000);
    let echo = process("long", &["echo", &long]);
    rt.start_process(&s, &echo, small)
        .await
        .map_err(unexpected("start_process"))?;
    let deadline = tokio::time::Instant::now() + ENDS_WITHIN;
    let info = loop {
        let info = rt
            .process_status(&s, &echo.id)
            .await
            .map_err(unexpected("process_status"))?;
        if !info.is_running() {
            break info;
        }
        check!(tokio::time::Instant::now() < deadline, "echo did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    check_eq!(info.stdout.end, 10_001, "stdout's end");
    check!(
        info.stdout.start > 0 && info.stdout.end - info.stdout.start <= 4096,
        "a 4096-byte buffer holds {:?}",
        info.stdout
    );
    let options = ReadOptions {
        max_bytes: 1024,
        wait: Duration::ZERO,
        follower: None,
    };
    match rt
        .read_output(&s, &echo.id, OutputCursor::default(), options)
        .await
    {
        Err(RuntimeError::CursorExpired { oldest }) => {
            check_eq!(oldest.stdout, info.stdout.start, "the oldest offset said")
        }
        got => return Err(format!("a read from 0 past the buffer: {got:?}")),
    }
    let past = OutputCursor {
        stdout: info.stdout.end + 1,
        stderr: 0,
    };
    match rt.read_output(&s, &echo.id, past, options).await {
        Err(RuntimeError::InvalidOffset(_)) => {}
        got => return Err(format!("a read past the end: {got:?}")),
    }
    let tail = OutputCursor {
        stdout: info.stdout.end - 2,
        stderr: 0,
    };
    let read = rt
        .read_output(&s, &echo.id, tail, options)
        .await
        .map_err(unexpected("read_output of the tail"))?;
    check_eq!(read.stdout.as_slice(), &b"x\n"[..], "the tail");
    check!(read.is_last(tail), "the tail read is not the last");
    remove(f, &r, &s).await
}
