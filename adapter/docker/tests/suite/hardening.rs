//! The sandbox container as Docker shows it and as it looks from inside:
//! hardened as DESIGN section 7 says. Docker-only: the in-memory runtime has
//! no container to inspect, no users, capabilities or read-only root.

use bollard::query_parameters::InspectContainerOptions;
use sandboxer_docker::testing::{raw_docker, sh};

use super::start;

/// The container as Docker shows it: hardened as DESIGN section 7 says.
pub async fn hardening(rt: &'static str) {
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
    // The agent is PID 1 (and reaps), not docker-init; nothing is logged.
    assert_eq!(host.init, Some(false));
    assert_eq!(
        config.entrypoint,
        Some(vec!["/opt/sandboxer/sandboxer-agent".to_string()])
    );
    assert_eq!(host.log_config.and_then(|l| l.typ).as_deref(), Some("none"));
    assert_eq!(config.open_stdin, Some(true));
    assert_eq!(config.tty, Some(false));
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
    // Mounts: the workspace volume and the agent's read-only volume, plus
    // the /tmp tmpfs; never a host path, never the socket.
    let mut mounts = info.mounts.unwrap_or_default();
    mounts.sort_by(|a, b| a.destination.cmp(&b.destination));
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    assert_eq!(mounts[0].destination.as_deref(), Some("/opt/sandboxer"));
    assert_eq!(mounts[0].rw, Some(false), "the agent volume is read-only");
    let agent = sandboxer_docker::testing::test_agent();
    assert_eq!(
        mounts[0].name.as_deref(),
        Some(format!("sandboxer-agent-{}", &agent.digest()[..16]).as_str())
    );
    assert_eq!(labels["sandboxer.agent"], agent.digest());
    assert_eq!(mounts[1].destination.as_deref(), Some("/workspace"));
    assert_eq!(
        mounts[1].name.as_deref(),
        Some(format!("sandboxer-{}", s.workspace).as_str()),
        "the volume is the workspace's, not the session's"
    );
    for mount in &mounts {
        assert_eq!(mount.typ.as_deref(), Some("volume"), "{mount:?}");
    }
    let tmpfs = host.tmpfs.unwrap_or_default();
    assert_eq!(tmpfs.keys().collect::<Vec<_>>(), ["/tmp"]);
    assert!(tmpfs["/tmp"].contains("size=67108864"), "{tmpfs:?}");
    assert_eq!(labels["sandboxer.workspace-id"], s.workspace.to_string());
    let volume = docker
        .inspect_volume(&format!("sandboxer-{}", s.workspace))
        .await
        .unwrap();
    assert_eq!(
        volume.labels["sandboxer.workspace-id"],
        s.workspace.to_string()
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
async fn raw_exec(container: &str, user: &str, script: &str) -> String {
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
