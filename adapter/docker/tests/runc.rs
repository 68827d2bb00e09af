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
async fn workspace_kept_across_sandboxes() {
    suite::workspace_kept_across_sandboxes("runc").await;
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
/// limit would): the timeout still kills the tree and the sandbox answers
/// again: through the agent, which needs no fork to kill.
#[tokio::test(flavor = "multi_thread")]
async fn pids_exhausted() {
    pids_exhausted_on(
        suite::start("runc", |spec| spec.limits.pids = 64).await,
        "agent",
    )
    .await;
}

/// The same without the agent (a sandbox made before it): killed by host
/// pid on a local runc engine. Runc only: under gVisor the sandbox's
/// processes have no host pids to kill.
#[tokio::test(flavor = "multi_thread")]
async fn pids_exhausted_without_the_agent() {
    let s = suite::start_without_agent("runc", |spec| spec.limits.pids = 64).await;
    pids_exhausted_on(s, "host_pid").await;
}

async fn pids_exhausted_on(s: suite::Sandbox, killed_by: &str) {
    let rt = "runc";
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
    assert_eq!(how.as_deref(), Some(killed_by));
    assert!(took < timeout + Duration::from_secs(10), "{took:?}");
    let ps = s.stdout("ps -o pid,args").await;
    assert!(!ps.contains("sleep 100"), "left behind:\n{ps}");
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_holds_as_pid1() {
    suite::agent_holds_as_pid1("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_agent_is_a_timeout() {
    suite::stopped_agent_is_a_timeout("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_agent_is_container_gone() {
    suite::killed_agent_is_container_gone("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_execs_at_once() {
    suite::many_execs_at_once("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gib_of_output() {
    suite::a_gib_of_output("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_agent_docker_exec_serves() {
    suite::without_the_agent_docker_exec_serves("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_service_attaches_again() {
    suite::a_new_service_attaches_again("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn symlinks_out_of_the_workspace_are_refused() {
    suite::symlinks_out_of_the_workspace_are_refused("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_agent_volume_per_build() {
    suite::one_agent_volume_per_build("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_on_a_terminal() {
    suite::a_shell_on_a_terminal("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_takes_the_whole_tree() {
    suite::a_kill_takes_the_whole_tree("runc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_agent_there_are_no_processes() {
    suite::without_the_agent_there_are_no_processes("runc").await;
}
