//! The adapter's behaviour on a real engine, written once and run per
//! container runtime (`runc.rs`, `gvisor.rs`). Every test names what it
//! makes uniquely and removes it through `Cleanup`, even when it fails.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use sandboxer_core::domain::{
    ContainerState, ExecOutcome, ExecRequest, SandboxSpec, WorkspacePath,
};
use sandboxer_core::port::{RuntimeError, SandboxRef, SandboxRuntime, StopOutcome};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, ensure_test_image_with_workspace, raw_docker,
    test_spec,
};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

pub struct Sandbox {
    pub runtime: DockerSandboxRuntime,
    pub tracer: RecordingTracer,
    pub sandbox: SandboxRef,
    // Last: dropped after the runtime, removes everything.
    pub cleanup: Cleanup,
}

pub async fn runtime(tracer: &RecordingTracer) -> DockerSandboxRuntime {
    DockerSandboxRuntime::connect(DockerConfig::default(), Arc::new(tracer.clone()))
        .await
        .expect("the Docker Engine answers")
}

/// A running sandbox of the test image (no `/workspace` in it) on `rt`.
pub async fn start(rt: &str, tweak: impl FnOnce(&mut SandboxSpec)) -> Sandbox {
    start_on(&ensure_test_image(), rt, tweak).await
}

pub async fn start_on(image: &str, rt: &str, tweak: impl FnOnce(&mut SandboxSpec)) -> Sandbox {
    let cleanup = Cleanup::new();
    let mut spec = test_spec(image, rt);
    tweak(&mut spec);
    let request = create_request(spec);
    cleanup.session(request.session_id);
    let tracer = RecordingTracer::new();
    let runtime = runtime(&tracer).await;
    let began = Instant::now();
    let id = runtime.create(&request).await.expect("create");
    println!("[{rt}] create+start took {:?}", began.elapsed());
    Sandbox {
        runtime,
        tracer,
        sandbox: SandboxRef {
            session_id: request.session_id,
            chat_id: request.chat_id,
            container_id: Some(id),
        },
        cleanup,
    }
}

pub fn cmd(argv: &[&str]) -> ExecRequest {
    ExecRequest::new(argv.iter().map(|a| (*a).to_owned()).collect()).unwrap()
}

pub fn sh(script: &str) -> ExecRequest {
    cmd(&["sh", "-c", script])
}

impl Sandbox {
    pub async fn run(&self, request: ExecRequest) -> ExecOutcome {
        self.runtime
            .exec(&self.sandbox, &request)
            .await
            .expect("exec")
    }

    pub async fn stdout(&self, script: &str) -> String {
        let out = self.run(sh(script)).await;
        assert_eq!(out.exit_code, 0, "{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How the last timed-out exec was killed (`sandbox.exec.kill`).
    pub fn last_kill(&self) -> Option<String> {
        self.tracer
            .named("DockerSandboxRuntime.exec")
            .iter()
            .rev()
            .find_map(|span| span.str("sandbox.exec.kill").map(str::to_owned))
    }

    fn id(&self) -> String {
        self.sandbox
            .container_id
            .as_ref()
            .unwrap()
            .as_str()
            .to_owned()
    }
}

/// create, exec, files in and out, stop twice; a gone sandbox is `ContainerGone`.
pub async fn lifecycle(rt: &str) {
    let s = start(rt, |_| {}).await;
    assert_eq!(
        s.runtime.inspect(&s.sandbox).await.unwrap(),
        ContainerState::Running
    );
    let out = s.run(cmd(&["echo", "hello", "world"])).await;
    assert_eq!(
        (out.exit_code, out.stdout.as_slice()),
        (0, &b"hello world\n"[..])
    );

    let path = WorkspacePath::parse("src/pkg/data.txt").unwrap();
    s.runtime
        .put_file(&s.sandbox, &path, b"line one\n")
        .await
        .unwrap();
    let back = s.runtime.get_file(&s.sandbox, &path).await.unwrap();
    assert_eq!(back, b"line one\n");
    // Later execs read and change it, and own what was made for it.
    let listing = s
        .stdout("cat src/pkg/data.txt && echo two >> src/pkg/data.txt && stat -c '%u:%g %a %n' . src src/pkg src/pkg/data.txt")
        .await;
    assert!(listing.starts_with("line one\n"), "{listing}");
    for owned in [
        "1000:1000 755 .",
        "1000:1000 755 src",
        "1000:1000 755 src/pkg",
        "1000:1000 644 src/pkg/data.txt",
    ] {
        assert!(listing.contains(owned), "{owned:?} not in {listing}");
    }
    assert_eq!(
        s.runtime.get_file(&s.sandbox, &path).await.unwrap(),
        b"line one\ntwo\n"
    );
    // Overwrite; a file the sandbox made is readable from outside.
    s.runtime.put_file(&s.sandbox, &path, b"new").await.unwrap();
    assert_eq!(s.stdout("cat src/pkg/data.txt").await, "new");
    s.stdout("printf made-inside > inside.txt").await;
    let inside = WorkspacePath::parse("inside.txt").unwrap();
    assert_eq!(
        s.runtime.get_file(&s.sandbox, &inside).await.unwrap(),
        b"made-inside"
    );

    let missing = WorkspacePath::parse("nope.txt").unwrap();
    assert_eq!(
        s.runtime.get_file(&s.sandbox, &missing).await,
        Err(RuntimeError::FileNotFound("nope.txt".into()))
    );
    let dir = WorkspacePath::parse("src/pkg").unwrap();
    assert!(matches!(
        s.runtime.get_file(&s.sandbox, &dir).await,
        Err(RuntimeError::NotAFile(_))
    ));
    assert!(matches!(
        s.runtime.put_file(&s.sandbox, &dir, b"x").await,
        Err(RuntimeError::NotAFile(_))
    ));
    let through_file = WorkspacePath::parse("inside.txt/x").unwrap();
    assert!(matches!(
        s.runtime.put_file(&s.sandbox, &through_file, b"x").await,
        Err(RuntimeError::NotAFile(_))
    ));

    let began = Instant::now();
    assert_eq!(
        s.runtime.stop(&s.sandbox).await.unwrap(),
        StopOutcome::Stopped
    );
    println!("[{rt}] stop took {:?}", began.elapsed());
    assert_eq!(
        s.runtime.stop(&s.sandbox).await.unwrap(),
        StopOutcome::AlreadyGone
    );
    // By session id only, too.
    let by_name = SandboxRef {
        container_id: None,
        ..s.sandbox.clone()
    };
    assert_eq!(
        s.runtime.stop(&by_name).await.unwrap(),
        StopOutcome::AlreadyGone
    );
    assert_eq!(
        s.runtime.inspect(&s.sandbox).await.unwrap(),
        ContainerState::Missing
    );
    assert_eq!(
        s.runtime.exec(&s.sandbox, &cmd(&["true"])).await,
        Err(RuntimeError::ContainerGone)
    );
    assert_eq!(
        s.runtime.put_file(&s.sandbox, &path, b"x").await,
        Err(RuntimeError::ContainerGone)
    );
    assert_eq!(
        s.runtime.get_file(&s.sandbox, &path).await,
        Err(RuntimeError::ContainerGone)
    );
    assert_no_footprint(&s).await;
}

/// Nothing named after the session is left: no container, helper or volume.
pub async fn assert_no_footprint(s: &Sandbox) {
    let docker = raw_docker().await;
    let name = format!("sandboxer-{}", s.sandbox.session_id);
    for container in [name.clone(), format!("{name}-prep")] {
        assert!(
            docker
                .inspect_container(&container, None::<InspectContainerOptions>)
                .await
                .is_err(),
            "{container} left behind"
        );
    }
    assert!(
        docker.inspect_volume(&name).await.is_err(),
        "volume {name} left behind"
    );
}

/// The container as Docker shows it: hardened as DESIGN section 7 says.
pub async fn hardening(rt: &str) {
    let s = start(rt, |_| {}).await;
    let docker = raw_docker().await;
    let info = docker
        .inspect_container(&s.id(), None::<InspectContainerOptions>)
        .await
        .unwrap();
    let config = info.config.unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert!(host.cap_add.unwrap_or_default().is_empty());
    assert!(
        host.security_opt
            .unwrap_or_default()
            .iter()
            .any(|o| o.starts_with("no-new-privileges"))
    );
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.init, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.memory, Some(512 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(1_000_000_000));
    assert_eq!(host.runtime.as_deref(), Some(rt));
    let pids = host.pids_limit.unwrap();
    if rt == "runsc" {
        // gVisor: the task limit is enforced inside, host threads capped outside.
        let nproc = host.ulimits.unwrap_or_default();
        assert!(
            nproc
                .iter()
                .any(|u| u.name.as_deref() == Some("nproc") && u.hard == Some(256))
        );
        assert!(pids > 256);
    } else {
        assert_eq!(pids, 256);
    }
    assert!(host.binds.unwrap_or_default().is_empty(), "no host mounts");
    let labels = config.labels.unwrap();
    assert_eq!(labels["sandboxer.managed"], "true");
    assert_eq!(labels["sandboxer.chat-id"], s.sandbox.chat_id.as_str());
    assert_eq!(
        labels["sandboxer.session-id"],
        s.sandbox.session_id.to_string()
    );
    assert_eq!(labels["sandboxer.generation"], "1");
    assert!(chrono::DateTime::parse_from_rfc3339(&labels["sandboxer.created-at"]).is_ok());
    assert_eq!(
        info.name.as_deref(),
        Some(format!("/sandboxer-{}", s.sandbox.session_id).as_str())
    );
    // Mounts: the workspace volume only, plus the /tmp tmpfs; never the socket.
    let mounts = info.mounts.unwrap_or_default();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].destination.as_deref(), Some("/workspace"));
    assert_eq!(
        mounts[0].name.as_deref(),
        Some(format!("sandboxer-{}", s.sandbox.session_id).as_str())
    );
    let tmpfs = host.tmpfs.unwrap_or_default();
    assert_eq!(tmpfs.keys().collect::<Vec<_>>(), ["/tmp"]);
    assert!(tmpfs["/tmp"].contains("size=67108864"), "{tmpfs:?}");
    let volume = docker
        .inspect_volume(&format!("sandboxer-{}", s.sandbox.session_id))
        .await
        .unwrap();
    assert_eq!(
        volume.labels["sandboxer.session-id"],
        s.sandbox.session_id.to_string()
    );
    assert_eq!(volume.labels["sandboxer.managed"], "true");

    // From inside: who we are, what we can write, what network there is.
    assert_eq!(s.stdout("id -u; id -g").await, "1000\n1000\n");
    let root = s.run(sh("echo x > /evil")).await;
    assert_ne!(root.exit_code, 0, "writing to / must fail");
    // Even uid 0 in the container (owner of `/`) meets the read-only root.
    let as_root = raw_exec(&s.id(), "0", "echo x > /evil").await;
    assert!(as_root.contains("Read-only file system"), "{as_root}");
    assert_eq!(
        s.stdout("ls /sys/class/net 2>/dev/null || ip -o link | cut -d: -f2")
            .await
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["lo"]
    );
    assert_eq!(
        s.stdout("echo t > /tmp/t && cat /tmp/t && stat -c '%u %a' /tmp")
            .await,
        "t\n1000 1777\n"
    );
    let caps = s.stdout("grep CapEff /proc/self/status").await;
    assert!(caps.contains("0000000000000000"), "{caps}");
    if rt == "runc" {
        // gVisor's /proc does not show it; the host config above does.
        assert_eq!(
            s.stdout("cat /proc/self/status | grep NoNewPrivs")
                .await
                .split_whitespace()
                .last(),
            Some("1")
        );
    }
}

/// Runs `script` as `user` with bollard directly; stdout and stderr together.
pub async fn raw_exec(container: &str, user: &str, script: &str) -> String {
    use bollard::exec::StartExecResults;
    use futures::StreamExt;
    let docker = raw_docker().await;
    let exec = docker
        .create_exec(
            container,
            bollard::models::ExecConfig {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                user: Some(user.to_owned()),
                cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&exec.id, None).await.unwrap()
    else {
        panic!("detached");
    };
    let mut text = String::new();
    while let Some(Ok(chunk)) = output.next().await {
        text.push_str(&chunk.to_string());
    }
    text
}

/// `/workspace` is the sandbox user's with an image that lacks it (helper
/// path) and with one that has it owned by 1000 (copy-up fast path).
pub async fn workspace_owner(rt: &str) {
    for image in [ensure_test_image(), ensure_test_image_with_workspace()] {
        let s = start_on(&image, rt, |_| {}).await;
        assert_eq!(
            s.stdout("stat -c '%u:%g' /workspace && touch /workspace/ok && echo ok")
                .await,
            "1000:1000\nok\n",
            "{image}"
        );
        // A second sandbox of the same image on the same runtime takes the
        // remembered answer for the image, and is right too.
        let again = create_request(test_spec(&image, rt));
        s.cleanup.session(again.session_id);
        let id = s.runtime.create(&again).await.unwrap();
        let second = SandboxRef {
            session_id: again.session_id,
            chat_id: again.chat_id.clone(),
            container_id: Some(id),
        };
        let out = s
            .runtime
            .exec(
                &second,
                &sh("stat -c '%u:%g' /workspace && touch /workspace/ok"),
            )
            .await
            .unwrap();
        assert_eq!(
            (out.exit_code, out.stdout.as_slice()),
            (0, &b"1000:1000\n"[..]),
            "{image}: {out:?}"
        );
        let docker = raw_docker().await;
        for session in [s.sandbox.session_id, again.session_id] {
            let prep = format!("sandboxer-{session}-prep");
            assert!(
                docker
                    .inspect_container(&prep, None::<InspectContainerOptions>)
                    .await
                    .is_err(),
                "helper left"
            );
        }
    }
}

/// A timeout kills the whole tree and leaves the sandbox usable.
pub async fn exec_timeout(rt: &str) {
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
    assert_eq!(s.last_kill().as_deref(), Some("in_sandbox"));
    let ps = s.stdout("ps -o pid,args").await;
    assert!(!ps.contains("sleep 10"), "left behind:\n{ps}");
    assert_eq!(s.stdout("echo still here").await, "still here\n");
}

/// Output caps, exit codes, stdin, env and workdir.
pub async fn exec_io(rt: &str) {
    let s = start(rt, |_| {}).await;
    let big = s
        .run(sh("yes abcdefgh | head -c 300000; yes err | head -c 10 >&2").with_output_limit(1000))
        .await;
    assert_eq!(
        (big.exit_code, big.stdout.len(), big.truncated),
        (0, 1000, true)
    );
    assert_eq!(big.stderr, b"err\nerr\ner");
    let small = s.run(cmd(&["echo", "ok"]).with_output_limit(1000)).await;
    assert!(!small.truncated);
    assert_eq!(s.run(cmd(&["true"])).await.exit_code, 0);
    assert_eq!(s.run(sh("exit 3")).await.exit_code, 3);
    let missing = s.run(cmd(&["no-such-program"])).await;
    assert_eq!(missing.exit_code, 127, "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no-such-program"),
        "{missing:?}"
    );
    let echoed = s
        .run(cmd(&["cat"]).with_stdin(b"from stdin".to_vec()))
        .await;
    assert_eq!(
        (echoed.exit_code, echoed.stdout.as_slice()),
        (0, &b"from stdin"[..])
    );
    let env = [("GREETING".to_string(), "hi there".to_string())].into();
    let with_env = s
        .run(
            sh("mkdir -p sub && cd /workspace/sub && echo \"$GREETING\" && pwd")
                .with_env(env)
                .unwrap(),
        )
        .await;
    assert_eq!(with_env.stdout, b"hi there\n/workspace/sub\n");
    let in_tmp = s
        .run(cmd(&["pwd"]).with_workdir("/tmp".into()).unwrap())
        .await;
    assert_eq!(in_tmp.stdout, b"/tmp\n");
}

/// A fork bomb hits the pids limit, times out, is cleaned; the sandbox and
/// its workspace survive.
pub async fn fork_bomb(rt: &str) {
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
        matches!(how.as_deref(), Some("in_sandbox" | "host_pid" | "restart")),
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

/// Pids exhausted so that no exec can start in the sandbox (the test lowers
/// the pids limit below what the command holds, as a fork bomb at its
/// limit would): the timeout still kills the tree, by host pid on a local
/// runc engine, and the sandbox answers again.
pub async fn pids_exhausted(rt: &str) {
    let s = start(rt, |spec| spec.limits.pids = 64).await;
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
