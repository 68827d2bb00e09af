//! The sandbox agent as PID 1 on a real engine: what it withstands from
//! inside (signals, `kill -9 -1`, a memory bomb, peeking at it), what a
//! stop from outside does, 500 execs at once, a GiB of output, and that a
//! sandbox keeps answering through all of it.

use std::time::Duration;

use bollard::query_parameters::KillContainerOptionsBuilder;
use futures::future::join_all;
use sandboxer_core::port::{RuntimeError, SandboxRuntime};
use sandboxer_docker::testing::{raw_docker, sh};

use super::start;

/// PID 1 is the agent; nothing inside can stop it, read its memory or its
/// descriptors, and a memory bomb takes the bomb, not the agent.
pub async fn agent_holds_as_pid1(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    assert_eq!(
        s.stdout("tr '\\0' ' ' < /proc/1/cmdline").await,
        "/opt/sandboxer/sandboxer-agent --root /workspace "
    );
    // User code is the OOM killer's first pick.
    assert_eq!(s.stdout("cat /proc/self/oom_score_adj").await, "1000\n");
    let exec = s.tracer.named("DockerSandboxRuntime.exec");
    assert_eq!(exec.last().unwrap().str("sandbox.exec.via"), Some("agent"));
    // Not dumpable: its memory is out of the user's reach, and under runc
    // (whose kernel honours it for /proc) its descriptors and environment
    // too. gVisor's /proc shows those to the same uid; the agent's
    // environment is the container's, and its pipes carry only this
    // sandbox's own requests.
    let mem = s.run(sh("cat /proc/1/mem > /dev/null")).await;
    assert_ne!(mem.exit_code, 0, "{mem:?}");
    if rt == "runc" {
        let peek = s.run(sh("ls /proc/1/fd; cat /proc/1/environ")).await;
        assert_ne!(peek.exit_code, 0, "{peek:?}");
        assert!(peek.stdout.is_empty(), "{peek:?}");
    }
    for attack in [
        "kill -TERM 1",
        "kill -INT 1",
        "kill -HUP 1",
        "kill -9 -1",
        "kill -9 1",
    ] {
        if rt == "runsc" && attack == "kill -9 1" {
            // gVisor does not shield a namespace's init from SIGKILL sent
            // inside it (Linux does): the sandbox ends, and is gone for
            // the runtime, which the use case replaces at the next use.
            let _ = s.runtime.exec(&s.sandbox, &sh(attack)).await;
            let after = s.runtime.exec(&s.sandbox, &sh("echo x")).await;
            assert_eq!(after, Err(RuntimeError::ContainerGone));
            return;
        }
        // `kill -9 -1` takes the exec's own shell with it: any outcome but
        // a dead sandbox is fine.
        let ran = s.runtime.exec(&s.sandbox, &sh(attack)).await;
        println!("[{rt}] {attack}: {ran:?}");
        assert_eq!(s.stdout("echo alive").await, "alive\n", "after {attack}");
    }
    if rt == "runc" {
        // 512 MiB limit; the bomb's oom_score_adj is 1000, the agent's 0.
        let bomb = s
            .run(sh("dd if=/dev/zero of=/dev/null bs=700M count=1"))
            .await;
        assert_ne!(bomb.exit_code, 0, "{bomb:?}");
        assert_eq!(s.stdout("echo survived").await, "survived\n");
    }
}

/// A stopped agent (SIGSTOP from the host) is a clear timeout; continued,
/// it answers again on the same sandbox.
pub async fn stopped_agent_is_a_timeout(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    assert_eq!(s.stdout("echo first").await, "first\n");
    let docker = raw_docker().await;
    let signal = |sig: &str| KillContainerOptionsBuilder::new().signal(sig).build();
    docker
        .kill_container(&s.id(), Some(signal("SIGSTOP")))
        .await
        .unwrap();
    let stalled = s
        .runtime
        .exec(
            &s.sandbox,
            &sh("echo never")
                .with_timeout(Duration::from_secs(1))
                .unwrap(),
        )
        .await;
    docker
        .kill_container(&s.id(), Some(signal("SIGCONT")))
        .await
        .unwrap();
    match stalled {
        Err(RuntimeError::Timeout(why)) => assert!(why.contains("agent"), "{why}"),
        other => panic!("a stopped agent gave {other:?}"),
    }
    assert_eq!(s.stdout("echo again").await, "again\n");
}

/// The agent killed from outside ends the container: the sandbox is gone
/// (the use case replaces it at the next use), not hanging.
pub async fn killed_agent_is_container_gone(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    assert_eq!(s.stdout("echo up").await, "up\n");
    raw_docker()
        .await
        .kill_container(
            &s.id(),
            Some(KillContainerOptionsBuilder::new().signal("SIGKILL").build()),
        )
        .await
        .unwrap();
    let after = s.runtime.exec(&s.sandbox, &sh("echo x")).await;
    assert_eq!(after, Err(RuntimeError::ContainerGone));
}

/// 500 execs at once on one attach stream: each is a result (some may meet
/// the pids limit and say so), none an error of the channel, and the
/// sandbox answers after.
pub async fn many_execs_at_once(rt: &'static str) {
    let s = &start(rt, |_| {}).await;
    let runs = (0..500).map(|i| {
        let request = sh(&format!("echo {i}"));
        async move { (i, s.runtime.exec(&s.sandbox, &request).await) }
    });
    let mut ok = 0;
    for (i, ran) in join_all(runs).await {
        let out = ran.unwrap_or_else(|e| panic!("exec {i}: {e:?}"));
        if out.exit_code == 0 {
            assert_eq!(out.stdout, format!("{i}\n").into_bytes());
            ok += 1;
        } else {
            // The pids limit (256) met: a contained, explained failure.
            assert!(!out.stderr.is_empty(), "exec {i} failed silently: {out:?}");
        }
    }
    println!(
        "[{rt}] 500 concurrent execs: {ok} ran, {} met the pids limit",
        500 - ok
    );
    assert!(ok >= 100, "only {ok} of 500 ran");
    assert_eq!(s.stdout("echo after").await, "after\n");
}

/// A GiB on stdout is read through and dropped past the cap: the exec ends
/// with the first MiB, `truncated`, and the service holds no more.
pub async fn a_gib_of_output(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let out = s
        .run(
            sh("head -c 1073741824 /dev/zero; echo done >&2")
                .with_timeout(Duration::from_secs(120))
                .unwrap(),
        )
        .await;
    assert_eq!(out.exit_code, 0, "{:?}", out.stderr);
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 1024 * 1024);
    assert_eq!(out.stderr, b"done\n");
    println!("[{rt}] 1 GiB of output drained in {:?}", out.duration);
}

/// A sandbox made without the agent (before it existed) runs commands and
/// moves files through `docker exec` and the archive API, also for a
/// service that puts the agent into new sandboxes.
pub async fn without_the_agent_docker_exec_serves(rt: &'static str) {
    let s = super::start_without_agent(rt, |_| {}).await;
    let via = |s: &super::Sandbox, span: &str| {
        s.tracer
            .named(span)
            .last()
            .and_then(|x| x.str("sandbox.exec.via").map(str::to_owned))
    };
    assert_eq!(s.stdout("echo old").await, "old\n");
    assert_eq!(
        via(&s, "DockerSandboxRuntime.exec").as_deref(),
        Some("docker")
    );
    let with_agent = super::DockerFixture::on(s.image.clone(), rt).await;
    let out = with_agent
        .runtime
        .exec(&s.sandbox, &sh("echo still"))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"still\n");
    let path = sandboxer_core::domain::WorkspacePath::parse("old/f.txt").unwrap();
    with_agent
        .runtime
        .put_file(&s.sandbox, &path, b"kept")
        .await
        .unwrap();
    assert_eq!(
        with_agent
            .runtime
            .get_file(&s.sandbox, &path)
            .await
            .unwrap(),
        b"kept"
    );
    let dir = sandboxer_core::domain::WorkspacePath::parse("old").unwrap();
    let listed = with_agent
        .runtime
        .list_files(&s.sandbox, Some(&dir))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].name.as_str(), listed[0].size), ("f.txt", 4));
    for span in [
        "DockerSandboxRuntime.exec",
        "DockerSandboxRuntime.put_file",
        "DockerSandboxRuntime.list_files",
    ] {
        let seen = with_agent
            .tracer
            .named(span)
            .last()
            .and_then(|x| x.str("sandbox.exec.via").map(str::to_owned));
        assert_eq!(seen.as_deref(), Some("docker"), "{span}");
    }
}

/// A service gone mid-exec (its attach stream cut, as by a SIGKILL) and a
/// new one: the new one attaches again and its execs run.
pub async fn a_new_service_attaches_again(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let first = std::sync::Arc::new(super::DockerFixture::on(s.image.clone(), rt).await);
    let sandbox = s.sandbox.clone();
    let gone = {
        let first = std::sync::Arc::clone(&first);
        tokio::spawn(async move {
            let long = sh("echo begun; sleep 30")
                .with_timeout(Duration::from_secs(60))
                .unwrap();
            first.runtime.exec(&sandbox, &long).await
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    gone.abort();
    let _ = gone.await;
    drop(first);
    for round in 0..3 {
        let next = super::DockerFixture::on(s.image.clone(), rt).await;
        let out = next
            .runtime
            .exec(&s.sandbox, &sh(&format!("echo round {round}")))
            .await
            .unwrap();
        assert_eq!(out.stdout, format!("round {round}\n").into_bytes());
    }
}

/// Paths through the agent stay in the workspace: a symlink out of it is
/// refused for reads and writes, and nothing outside is touched.
pub async fn symlinks_out_of_the_workspace_are_refused(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    s.stdout("ln -s /etc /workspace/out && ln -s /tmp /workspace/tmp")
        .await;
    let path = |p: &str| sandboxer_core::domain::WorkspacePath::parse(p).unwrap();
    let read = s.runtime.get_file(&s.sandbox, &path("out/passwd")).await;
    assert!(matches!(read, Err(RuntimeError::Rejected(_))), "{read:?}");
    let write = s
        .runtime
        .put_file(&s.sandbox, &path("tmp/planted"), b"x")
        .await;
    assert!(matches!(write, Err(RuntimeError::Rejected(_))), "{write:?}");
    assert_eq!(s.stdout("ls /tmp").await, "");
}

/// One agent volume per agent build, and no helper left after filling it.
pub async fn one_agent_volume_per_build(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    assert_eq!(s.stdout("echo made").await, "made\n");
    let docker = raw_docker().await;
    let filters =
        std::collections::HashMap::from([("label", vec!["sandboxer.role=agent".to_string()])]);
    let volumes = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default();
    let digest = sandboxer_docker::testing::test_agent().digest().to_owned();
    let ours: Vec<_> = volumes
        .iter()
        .filter(|v| v.labels.get("sandboxer.agent") == Some(&digest))
        .collect();
    assert_eq!(ours.len(), 1, "{volumes:?}");
    assert_eq!(ours[0].name, format!("sandboxer-agent-{}", &digest[..16]));
    let helpers =
        std::collections::HashMap::from([("label", vec!["sandboxer.role=agent-fill".to_string()])]);
    let left = docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&helpers)
                .build(),
        ))
        .await
        .unwrap();
    // Another test may be filling right now; a helper never outlives a fill.
    assert!(left.len() <= 1, "{left:?}");
}
