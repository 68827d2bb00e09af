//! The contract's exec: exit codes and streams, what reaches the command
//! (stdin, env, workdir), the output cap per stream, the timeout.

use std::time::{Duration, Instant};

use crate::domain::{ContainerState, WorkspacePath};

use super::{Outcome, RuntimeFixture, cmd, remove, run, start, stdout, unexpected};

/// Short, so the property is quick; a runtime must still not return early.
const TIMEOUT: Duration = Duration::from_secs(1);

/// How much later than its timeout a timed-out exec may come back (the
/// kill and the last output); the Docker tests hold runc and gVisor to less.
const KILLED_WITHIN: Duration = Duration::from_secs(10);

/// Exit codes 0, 3 and 127 (no such program, said on stderr); stdout and
/// stderr apart.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn exec_exit_codes_and_streams(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let ok = run(f, &s, &cmd(&["true"])).await?;
    check_eq!(
        (ok.exit_code, ok.timed_out, ok.truncated),
        (0, false, false),
        "true ({ok:?})"
    );
    let three = run(f, &s, &cmd(&["sh", "-c", "exit 3"])).await?;
    check_eq!(three.exit_code, 3, "exit 3 ({three:?})");
    let missing = run(f, &s, &cmd(&["no-such-program"])).await?;
    check_eq!(
        missing.exit_code,
        127,
        "a program that does not exist ({missing:?})"
    );
    check!(
        String::from_utf8_lossy(&missing.stderr).contains("no-such-program"),
        "stderr does not name the missing program: {missing:?}"
    );
    let echo = run(f, &s, &cmd(&["echo", "out"])).await?;
    check_eq!(
        (echo.stdout.as_slice(), echo.stderr.as_slice()),
        (&b"out\n"[..], &b""[..]),
        "echo's streams"
    );
    let failed = run(f, &s, &cmd(&["cat", "no-such-file"])).await?;
    check!(
        failed.exit_code != 0 && failed.stdout.is_empty() && !failed.stderr.is_empty(),
        "cat of a missing file: an error on stderr only, got {failed:?}"
    );
    remove(f, &r, &s).await
}

/// Stdin, env and the workdir (`/workspace` by default) reach the command.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn exec_stdin_env_and_workdir(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let echoed = run(f, &s, &cmd(&["cat"]).with_stdin(b"from stdin".to_vec())).await?;
    check_eq!(
        (echoed.exit_code, echoed.stdout.as_slice()),
        (0, &b"from stdin"[..]),
        "cat of stdin"
    );
    let env = [("GREETING".to_string(), "hi there".to_string())].into();
    let greeting = cmd(&["env"]).with_env(env).map_err(|e| format!("{e}"))?;
    let with_env = run(f, &s, &greeting).await?;
    check!(
        String::from_utf8_lossy(&with_env.stdout)
            .lines()
            .any(|line| line == "GREETING=hi there"),
        "GREETING not in the command's env: {with_env:?}"
    );
    check_eq!(
        stdout(f, &s, &["pwd"]).await?,
        b"/workspace\n",
        "the default workdir"
    );
    let in_tmp = cmd(&["pwd"])
        .with_workdir("/tmp".into())
        .map_err(|e| format!("{e}"))?;
    check_eq!(run(f, &s, &in_tmp).await?.stdout, b"/tmp\n", "workdir /tmp");
    remove(f, &r, &s).await
}

/// Each stream is cut at `output_limit` and `truncated` says so; the
/// command still runs to its end; output under the cap is whole.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn exec_output_is_capped_per_stream(f: &dyn RuntimeFixture) -> Outcome {
    let (r, s) = start(f).await?;
    let big: Vec<u8> = (0..300_000).map(|i| b"abcdefgh\n"[i % 9]).collect();
    let path = WorkspacePath::parse("big.txt").expect("a valid path");
    f.runtime()
        .put_file(&s, &path, &big)
        .await
        .map_err(unexpected("put_file"))?;
    let capped = run(f, &s, &cmd(&["cat", "big.txt"]).with_output_limit(1000)).await?;
    check_eq!(
        (capped.exit_code, capped.stdout.len(), capped.truncated),
        (0, 1000, true),
        "300 000 bytes of stdout under a 1000-byte cap"
    );
    check_eq!(
        capped.stdout.as_slice(),
        &big[..1000],
        "the kept stdout is its start"
    );
    let err = run(f, &s, &cmd(&["cat", "no-such-file"]).with_output_limit(10)).await?;
    check_eq!(
        (err.stdout.len(), err.stderr.len(), err.truncated),
        (0, 10, true),
        "stderr under a 10-byte cap ({err:?})"
    );
    let small = run(f, &s, &cmd(&["echo", "ok"]).with_output_limit(1000)).await?;
    check_eq!(
        (small.stdout.as_slice(), small.truncated),
        (&b"ok\n"[..], false),
        "output under the cap"
    );
    remove(f, &r, &s).await
}

/// A command that outruns its timeout comes back `timed_out`, not before
/// the timeout and not long after; the sandbox is still usable.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn exec_timeout_returns_timed_out_and_keeps_the_sandbox(
    f: &dyn RuntimeFixture,
) -> Outcome {
    let (r, s) = start(f).await?;
    let sleep = cmd(&["sleep", "1000"])
        .with_timeout(TIMEOUT)
        .map_err(|e| format!("{e}"))?;
    let began = Instant::now();
    let out = run(f, &s, &sleep).await?;
    let took = began.elapsed();
    check!(out.timed_out, "sleep 1000 under a 1 s timeout: {out:?}");
    check!(
        took >= TIMEOUT && took < TIMEOUT + KILLED_WITHIN,
        "a 1 s timeout came back after {took:?}"
    );
    check_eq!(
        f.runtime().inspect(&s).await,
        Ok(ContainerState::Running),
        "the sandbox after a timeout"
    );
    check_eq!(
        stdout(f, &s, &["echo", "still here"]).await?,
        b"still here\n",
        "an exec after a timeout"
    );
    remove(f, &r, &s).await
}
