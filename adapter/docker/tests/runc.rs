//! The adapter on the default runtime, runc: the core's runtime contract
//! (`contract::*`), the Docker-only suite, and what only runc shows.

mod suite;

use std::time::{Duration, Instant};

use sandboxer_core::port::SandboxRuntime;
use sandboxer_docker::testing::{raw_docker, sh};

suite::runtime_contract!("runc");

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle() {
    suite::lifecycle("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hardening() {
    suite::hardening("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workspace_owner() {
    suite::workspace_owner("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_timeout() {
    suite::exec_timeout("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_io() {
    suite::exec_io("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb() {
    suite::fork_bomb("runc").await;
}

/// Pids exhausted so that no exec can start in the sandbox (the test lowers
/// the pids limit below what the command holds, as a fork bomb at its
/// limit would): the timeout still kills the tree, by host pid on a local
/// runc engine, and the sandbox answers again. Runc only: under gVisor the
/// sandbox's processes have no host pids to kill.
#[tokio::test(flavor = "multi_thread")]
async fn pids_exhausted() {
    let rt = "runc";
    let s = suite::start(rt, |spec| spec.limits.pids = 64).await;
    let timeout = Duration::from_secs(3);
    let hold = sh(
        "i=0; while [ $i -lt 30 ]; do sleep 1000 & i=$((i+1)); done; echo held; exec sleep 1001",
    )
    .with_timeout(timeout)
    .unwrap();
    let id = s.id();
    let squeeze = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let docker = raw_docker().await;
        let update = bollard::models::ContainerUpdateBody {
            pids_limit: Some(8),
            ..Default::default()
        };
        docker
            .update_container(&id, update)
            .await
            .expect("lower the pids limit");
        // An exec still starts (joining a cgroup is not a fork), but it
        // cannot fork.
        let probe = s
            .runtime
            .exec(
                &s.sandbox,
                &sh("true & wait")
                    .with_timeout(Duration::from_secs(2))
                    .unwrap(),
            )
            .await;
        println!("[{rt}] a forking exec with pids exhausted: {probe:?}");
        assert!(
            !matches!(probe, Ok(ref o) if o.exit_code == 0 && !o.timed_out),
            "pids were not exhausted"
        );
    };
    let began = Instant::now();
    let (out, ()) = tokio::join!(s.run(hold), squeeze);
    let took = began.elapsed();
    let how = s.last_kill();
    println!("[{rt}] exec with pids exhausted returned after {took:?}, killed by {how:?}");
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.stdout, b"held\n");
    assert_eq!(how.as_deref(), Some("host_pid"));
    assert!(took < timeout + Duration::from_secs(10), "{took:?}");
    let ps = s.stdout("ps -o pid,args").await;
    assert!(!ps.contains("sleep 100"), "left behind:\n{ps}");
}
