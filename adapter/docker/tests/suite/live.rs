//! Live processes on a real engine beyond the contract: a shell on a
//! terminal (typed input, its tty, a resize, its exit), a kill that takes a
//! tree whose members left the group, and a sandbox made without the agent,
//! which has none and says how to get them.

use std::time::Duration;

use sandboxer_core::domain::{
    ExecRequest, OutputCursor, ProcessId, ProcessRequest, PtySize, ReadOptions, StdinWrite,
};
use sandboxer_core::port::{ProcessLimits, RuntimeError, SandboxRef, SandboxRuntime};
use sandboxer_docker::testing::sh;

use super::{start, start_without_agent};

const LIMITS: ProcessLimits = ProcessLimits {
    max_running: 64,
    buffer_bytes: 1 << 20,
};

fn process(id: &str, argv: &[&str]) -> ProcessRequest {
    let exec = ExecRequest::new(argv.iter().map(|a| (*a).to_owned()).collect()).unwrap();
    ProcessRequest::new(ProcessId::parse(id).unwrap(), exec)
}

/// Reads on until the screen holds `want` (or the process ends); the screen.
async fn read_until(
    runtime: &dyn SandboxRuntime,
    sandbox: &SandboxRef,
    id: &ProcessId,
    at: &mut OutputCursor,
    screen: &mut String,
    want: &str,
) {
    let options = ReadOptions {
        max_bytes: 1 << 16,
        wait: Duration::from_secs(2),
        follower: None,
    };
    for _ in 0..30 {
        if screen.contains(want) {
            return;
        }
        let read = runtime
            .read_output(sandbox, id, *at, options)
            .await
            .unwrap();
        screen.push_str(&String::from_utf8_lossy(&read.stdout));
        let last = read.is_last(*at);
        *at = read.next_cursor(*at);
        if last {
            break;
        }
    }
    assert!(
        screen.contains(want),
        "no {want:?} on the screen: {screen:?}"
    );
}

/// `sh -i` on a terminal: typed commands run, `tty` is a pts, `stty size`
/// follows a resize, and `exit 5` ends it with 5.
pub async fn a_shell_on_a_terminal(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let (runtime, sandbox): (&dyn SandboxRuntime, _) = (&s.runtime, &s.sandbox);
    let request = process("term", &["sh", "-i"]).with_pty(PtySize::new(80, 24).unwrap());
    let started = runtime
        .start_process(sandbox, &request, LIMITS)
        .await
        .unwrap();
    assert!(started.info.pty);
    let id = &request.id;
    let keys = |text: &str| StdinWrite {
        offset: None,
        data: text.as_bytes().to_vec(),
        close: false,
    };
    let (mut at, mut screen) = (OutputCursor::default(), String::new());
    runtime
        .write_stdin(sandbox, id, &keys("echo sum-$((40+2)); tty; stty size\n"))
        .await
        .unwrap();
    read_until(runtime, sandbox, id, &mut at, &mut screen, "24 80").await;
    assert!(screen.contains("sum-42"), "{screen:?}");
    assert!(screen.contains("/dev/pts/"), "{screen:?}");
    runtime
        .resize_pty(sandbox, id, PtySize::new(120, 40).unwrap())
        .await
        .unwrap();
    runtime
        .write_stdin(sandbox, id, &keys("stty size; exit 5\n"))
        .await
        .unwrap();
    read_until(runtime, sandbox, id, &mut at, &mut screen, "40 120").await;
    let mut ended = None;
    for _ in 0..50 {
        let info = runtime.process_status(sandbox, id).await.unwrap();
        if !info.is_running() {
            ended = info.state.exit_code();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ended, Some(5));
}

/// A kill ends the whole tree, descendants that left the group included.
pub async fn a_kill_takes_the_whole_tree(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let (runtime, sandbox): (&dyn SandboxRuntime, _) = (&s.runtime, &s.sandbox);
    let script = "sleep 1001 & (setsid sleep 1002 &); sleep 1003";
    let request = process("tree", &["sh", "-c", script]);
    runtime
        .start_process(sandbox, &request, LIMITS)
        .await
        .unwrap();
    let count = "ps -o args | grep -c '^sleep 100[123]' || true";
    for _ in 0..100 {
        if s.stdout(count).await == "3\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.stdout(count).await, "3\n");
    let killed = runtime.kill_process(sandbox, &request.id).await.unwrap();
    assert_eq!(killed.state.exit_code(), Some(137));
    assert_eq!(s.stdout(count).await, "0\n");
    assert_eq!(s.run(sh("echo alive")).await.stdout, b"alive\n");
}

/// A sandbox made without the agent (an older release's) runs execs but
/// has no live processes: a conflict that says so.
pub async fn without_the_agent_there_are_no_processes(rt: &'static str) {
    let s = start_without_agent(rt, |_| {}).await;
    let request = process("p", &["sleep", "1"]);
    match s.runtime.start_process(&s.sandbox, &request, LIMITS).await {
        Err(RuntimeError::Conflict(why)) => assert!(why.contains("agent"), "{why}"),
        other => panic!("a start without the agent: {other:?}"),
    }
    assert_eq!(s.run(sh("echo still")).await.stdout, b"still\n");
}
