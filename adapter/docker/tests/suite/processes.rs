//! Execs as real processes: a timeout kills the whole tree, a fork bomb
//! meets the pids limit, and what a shell adds to the contract's exec
//! properties. Docker-only: the in-memory runtime has no processes, no
//! shell and no kernel limits, and must not pretend to.

use std::time::{Duration, Instant};

use sandboxer_docker::testing::sh;

use super::start;

/// A timeout kills the whole tree and leaves the sandbox usable.
pub async fn exec_timeout(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let timeout = Duration::from_secs(2);
    // A tree: a shell, a child sleep, and a grandchild that left the session.
    let request = sh("sleep 1000 & (setsid sleep 1001 &) ; echo started; sleep 1002")
        .with_timeout(timeout)
        .unwrap();
    let began = Instant::now();
    let out = s.run(request).await;
    let took = began.elapsed();
    println!("[{rt}] exec with a 2 s timeout returned after {took:?}");
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.stdout, b"started\n");
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(s.last_kill().as_deref(), Some("agent"));
    let ps = s.stdout("ps -o pid,args").await;
    assert!(!ps.contains("sleep 10"), "left behind:\n{ps}");
    assert_eq!(s.stdout("echo still here").await, "still here\n");
}

/// What a shell adds to the contract's exec properties (exit codes, stdin,
/// workdir and the cap with `cat` are there): both streams of a pipeline
/// capped apart, and env and `cd` as a script sees them.
pub async fn exec_io(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let big = s
        .run(sh("yes abcdefgh | head -c 300000; yes err | head -c 10 >&2").with_output_limit(1000))
        .await;
    assert_eq!(
        (big.exit_code, big.stdout.len(), big.truncated),
        (0, 1000, true)
    );
    assert_eq!(big.stderr, b"err\nerr\ner");
    assert_eq!(s.run(sh("exit 3")).await.exit_code, 3);
    let env = [("GREETING".to_string(), "hi there".to_string())].into();
    let with_env = s
        .run(
            sh("mkdir -p sub && cd /workspace/sub && echo \"$GREETING\" && pwd")
                .with_env(env)
                .unwrap(),
        )
        .await;
    assert_eq!(with_env.stdout, b"hi there\n/workspace/sub\n");
}

/// A fork bomb hits the pids limit, times out, is cleaned; the sandbox and
/// its workspace survive.
pub async fn fork_bomb(rt: &'static str) {
    let s = start(rt, |spec| spec.limits.pids = 64).await;
    s.stdout("echo kept > kept.txt").await;
    let timeout = Duration::from_secs(3);
    // Exponential, and every copy holds its pid (a child sleep, then `wait`),
    // so the pids limit stays full; the exec's own process is the last
    // `exec sleep`, so the exec runs until its timeout.
    let bomb = sh("b(){ b & b & sleep 1000 & wait; }; b & exec sleep 1000")
        .with_timeout(timeout)
        .unwrap()
        .with_output_limit(4096);
    let began = Instant::now();
    let out = s.run(bomb).await;
    let took = began.elapsed();
    let how = s.last_kill();
    println!(
        "[{rt}] fork bomb exec returned after {took:?}, exit {}, killed by {how:?}",
        out.exit_code
    );
    assert!(
        matches!(
            how.as_deref(),
            Some("agent" | "in_sandbox" | "host_pid" | "restart")
        ),
        "{how:?}"
    );
    assert!(out.timed_out, "{out:?}");
    assert!(took < timeout + Duration::from_secs(20), "{took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("can't fork") || stderr.contains("Resource temporarily unavailable"),
        "the pids limit never bit: {stderr}"
    );
    assert_eq!(s.stdout("echo alive").await, "alive\n");
    let count = s.stdout("ps -o pid | tail -n +2 | wc -l").await;
    let count: usize = count.trim().parse().unwrap();
    assert!(
        count <= 6,
        "{count} processes left:\n{}",
        s.stdout("ps -o pid,args").await
    );
    assert_eq!(s.stdout("cat kept.txt").await, "kept\n");
}
