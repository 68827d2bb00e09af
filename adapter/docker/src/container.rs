//! What a sandbox container is made of: its name, labels (DESIGN section 7)
//! and the hardened configuration derived from a `SandboxSpec`, and the
//! names and labels of the workspace volume it mounts.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, MountVolumeOptions,
    ResourcesUlimits,
};
use chrono::{DateTime, Utc};
use sandboxer_core::domain::{
    ChatId, ContainerId, SessionId, WORKSPACE_ROOT, WorkspaceId, WorkspaceUse, rfc3339,
};
use sandboxer_core::port::{CreateRequest, RuntimeError, RuntimeSandbox};

use crate::agent::{AGENT_DIR, AGENT_PROGRAM, AgentBinary, LABEL_AGENT};

pub(crate) const LABEL_MANAGED: &str = "sandboxer.managed";
pub(crate) const LABEL_CHAT: &str = "sandboxer.chat-id";
/// A warm pool member's sandbox and volume: no chat label (its chat is
/// known to the store only, once one claims it).
pub(crate) const LABEL_POOL: &str = "sandboxer.pool";
pub(crate) const LABEL_SESSION: &str = "sandboxer.session-id";
/// On containers and on workspace volumes. A container of the release
/// before workspaces has none: its workspace is its session's.
pub(crate) const LABEL_WORKSPACE: &str = "sandboxer.workspace-id";
pub(crate) const LABEL_GENERATION: &str = "sandboxer.generation";
pub(crate) const LABEL_CREATED_AT: &str = "sandboxer.created-at";
/// Set on the short-lived helper that fixes the workspace's owner; such
/// containers are not sandboxes and are never listed as sessions.
pub(crate) const LABEL_ROLE: &str = "sandboxer.role";
/// Which service instance owns the sandbox (`DockerConfig::instance`).
pub(crate) const LABEL_INSTANCE: &str = "sandboxer.instance";
/// The node (engine) a sandbox or volume is on, when there are several.
pub(crate) const LABEL_NODE: &str = "sandboxer.node";
pub(crate) const ROLE_WORKSPACE_PREP: &str = "workspace-prep";

/// `runsc` (gVisor, ptrace platform) backs every task in the sandbox with
/// several host threads, all counted by the pids cgroup, and the sandbox
/// dies when that cgroup is full. So under gVisor the spec's pids limit is
/// enforced inside (RLIMIT_NPROC, per sandbox there since gVisor has its
/// own kernel) and the cgroup gets this many host threads per allowed task.
const RUNSC_HOST_THREADS_PER_TASK: u64 = 16;
const RUNSC_HOST_THREADS_BASE: u64 = 256;

pub(crate) fn container_name(session: SessionId) -> String {
    format!("sandboxer-{session}")
}

/// The same form the release before workspaces named a session's volume
/// by, so its volumes are the workspaces `WorkspaceId::of_legacy_session`.
pub(crate) fn volume_name(workspace: WorkspaceId) -> String {
    format!("sandboxer-{workspace}")
}

/// The workspace a volume's name says, if it is one of ours.
pub(crate) fn workspace_of_volume(name: &str) -> Option<WorkspaceId> {
    let id = WorkspaceId::parse(name.strip_prefix("sandboxer-")?).ok()?;
    (volume_name(id) == name).then_some(id)
}

pub(crate) fn prep_name(session: SessionId) -> String {
    format!("sandboxer-{session}-prep")
}

/// The sandbox user as numbers, as the tmpfs and tar headers need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    /// `uid:gid`, both numeric. Names are refused: the workspace and files
    /// are chowned by number, and resolving names would need the image's
    /// `/etc/passwd`.
    pub(crate) fn parse(user: &str) -> Result<Self, RuntimeError> {
        let refuse = || {
            RuntimeError::Rejected(format!(
                "the sandbox user must be a numeric, non-root uid:gid, got {user:?}"
            ))
        };
        let (uid, gid) = user.split_once(':').ok_or_else(refuse)?;
        let uid: u64 = uid.parse().map_err(|_| refuse())?;
        let gid: u64 = gid.parse().map_err(|_| refuse())?;
        if uid == 0 {
            return Err(refuse());
        }
        Ok(Self { uid, gid })
    }
}

/// The labels of the session's containers (the sandbox and its helper).
pub(crate) fn labels(request: &CreateRequest, instance: Option<&str>) -> HashMap<String, String> {
    let mut labels = volume_labels(request, instance);
    labels.insert(LABEL_SESSION.to_owned(), request.session_id.to_string());
    labels.insert(LABEL_GENERATION.to_owned(), request.generation.to_string());
    labels
}

/// The labels of a workspace volume: no session, since it outlives the
/// session that made it; `created-at` is that session's (the service's
/// clock, as reconciliation reads it).
pub(crate) fn volume_labels(
    request: &CreateRequest,
    instance: Option<&str>,
) -> HashMap<String, String> {
    let chat = if request.chat_id.is_warm_pool() {
        (LABEL_POOL.to_owned(), "true".to_owned())
    } else {
        (LABEL_CHAT.to_owned(), request.chat_id.as_str().to_owned())
    };
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        chat,
        (
            LABEL_WORKSPACE.to_owned(),
            request.workspace.id().to_string(),
        ),
        // The form shown at every edge; read back by `parse_labels`.
        (LABEL_CREATED_AT.to_owned(), rfc3339(request.created_at)),
    ]);
    if let Some(instance) = instance {
        labels.insert(LABEL_INSTANCE.to_owned(), instance.to_owned());
    }
    labels
}

/// The sandbox's container: hardened defaults, shaped by the spec.
pub(crate) fn sandbox_body(
    request: &CreateRequest,
    owner: Owner,
    instance: Option<&str>,
    agent: Option<&AgentBinary>,
) -> ContainerCreateBody {
    let spec = &request.spec;
    let mut labels = labels(request, instance);
    let limits = &spec.limits;
    let gvisor = spec.runtime == "runsc";
    let (pids_limit, ulimits) = if gvisor {
        let host = limits
            .pids
            .saturating_mul(RUNSC_HOST_THREADS_PER_TASK)
            .saturating_add(RUNSC_HOST_THREADS_BASE);
        let nproc = i64::try_from(limits.pids).unwrap_or(i64::MAX);
        let nproc = ResourcesUlimits {
            name: Some("nproc".into()),
            soft: Some(nproc),
            hard: Some(nproc),
        };
        (host, Some(vec![nproc]))
    } else {
        (limits.pids, None)
    };
    let memory = i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX);
    let tmp_options = format!(
        "rw,nosuid,nodev,size={},uid={},gid={},mode=1777",
        limits.tmp_bytes, owner.uid, owner.gid
    );
    let mut mounts = vec![workspace_mount(request, instance, WORKSPACE_ROOT)];
    if let Some(agent) = agent {
        mounts.push(agent_mount(agent));
        labels.insert(LABEL_AGENT.to_owned(), agent.digest().to_owned());
    }
    let host_config = HostConfig {
        runtime: Some(spec.runtime.clone()),
        // The agent is PID 1 and reaps; without it, docker-init does.
        init: Some(agent.is_none()),
        // Nothing a sandbox prints lands on the host's disk, and the
        // agent's protocol bytes never reach a log file.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        network_mode: Some(spec.network.clone()),
        memory: Some(memory),
        // Equal to memory: no swap on top of the limit.
        memory_swap: Some(memory),
        nano_cpus: Some(i64::try_from(limits.nano_cpus).unwrap_or(i64::MAX)),
        pids_limit: Some(i64::try_from(pids_limit).unwrap_or(i64::MAX)),
        ulimits,
        mounts: Some(mounts),
        tmpfs: Some(HashMap::from([("/tmp".to_owned(), tmp_options)])),
        privileged: Some(false),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        user: Some(spec.user.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        // The keepalive is the whole command: the image's entrypoint and
        // command are not used.
        entrypoint: Some(spec.keepalive.clone()),
        working_dir: Some(WORKSPACE_ROOT.to_owned()),
        network_disabled: Some(spec.network == "none"),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
    };
    match agent {
        None => body,
        // The agent is the whole command, reached over the attach stream:
        // stdin kept open across attaches, no terminal (binary frames).
        Some(_) => ContainerCreateBody {
            entrypoint: Some(vec![AGENT_PROGRAM.to_owned()]),
            cmd: Some(vec!["--root".to_owned(), WORKSPACE_ROOT.to_owned()]),
            open_stdin: Some(true),
            stdin_once: Some(false),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..body
        },
    }
}

/// The agent build's volume, read-only at `AGENT_DIR`.
fn agent_mount(agent: &AgentBinary) -> Mount {
    Mount {
        target: Some(AGENT_DIR.to_owned()),
        source: Some(agent.volume_name()),
        typ: Some(MountType::VOLUME),
        read_only: Some(true),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The request's workspace volume at `target`. A fresh one is empty (made
/// just before), so Docker copies the image's directory into it, owner
/// included; a kept one holds the chat's files and gets nothing from the
/// image (an emptied workspace stays empty, its owner stays). The labels
/// are the volume's should the mount make it (it vanished since the
/// create looked): listed, never an invisible leftover.
pub(crate) fn workspace_mount(
    request: &CreateRequest,
    instance: Option<&str>,
    target: &str,
) -> Mount {
    Mount {
        target: Some(target.to_owned()),
        source: Some(volume_name(request.workspace.id())),
        typ: Some(MountType::VOLUME),
        read_only: Some(false),
        volume_options: Some(MountVolumeOptions {
            labels: Some(volume_labels(request, instance)),
            no_copy: Some(matches!(request.workspace, WorkspaceUse::Kept(_))),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Reads a sandbox back from its labels; `Err` names the label that did not parse.
/// `sandboxer.created-at` may be any RFC 3339 form, not only the one written
/// (other offsets, no or more fraction digits: labels made by older builds
/// or by hand).
pub(crate) fn parse_labels(
    container_id: &str,
    labels: &HashMap<String, String>,
    running: bool,
) -> Result<RuntimeSandbox, String> {
    let get = |key: &str| {
        labels
            .get(key)
            .ok_or_else(|| format!("label {key} missing"))
    };
    let session_id = SessionId::parse(get(LABEL_SESSION)?).map_err(|e| e.to_string())?;
    let chat_id = if labels.get(LABEL_POOL).is_some_and(|v| v == "true") {
        ChatId::warm_pool()
    } else {
        ChatId::parse(get(LABEL_CHAT)?).map_err(|e| format!("{LABEL_CHAT}: {e}"))?
    };
    let workspace_id = match labels.get(LABEL_WORKSPACE) {
        Some(id) => WorkspaceId::parse(id).map_err(|e| format!("{LABEL_WORKSPACE}: {e}"))?,
        None => WorkspaceId::of_legacy_session(session_id),
    };
    let generation = get(LABEL_GENERATION)?
        .parse::<u64>()
        .map_err(|e| format!("{LABEL_GENERATION}: {e}"))?;
    let created_at = DateTime::parse_from_rfc3339(get(LABEL_CREATED_AT)?)
        .map_err(|e| format!("{LABEL_CREATED_AT}: {e}"))?
        .with_timezone(&Utc);
    Ok(RuntimeSandbox {
        container_id: ContainerId::new(container_id),
        session_id,
        chat_id,
        workspace_id,
        generation,
        created_at,
        running,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandboxer_core::domain::{ResourceLimits, SandboxSpec};

    fn request(runtime: &str) -> CreateRequest {
        CreateRequest {
            session_id: SessionId::new(),
            chat_id: ChatId::parse("web:42").unwrap(),
            workspace: WorkspaceUse::Fresh(WorkspaceId::new()),
            generation: 3,
            created_at: Utc::now(),
            spec: SandboxSpec {
                image: "img:1".into(),
                runtime: runtime.into(),
                user: "1000:1000".into(),
                env: [("A".to_string(), "1".to_string())].into(),
                limits: ResourceLimits::default(),
                network: "none".into(),
                keepalive: vec!["sleep".into(), "infinity".into()],
            },
        }
    }

    #[test]
    fn labels_round_trip() {
        let req = request("runc");
        let back = parse_labels("abc", &labels(&req, Some("i1")), true).unwrap();
        assert_eq!(back.session_id, req.session_id);
        assert_eq!(back.chat_id, req.chat_id);
        assert_eq!(back.workspace_id, req.workspace.id());
        assert_eq!(back.generation, 3);
        assert_eq!(
            back.created_at.timestamp_millis(),
            req.created_at.timestamp_millis()
        );
        let mut bad = labels(&req, None);
        bad.insert(LABEL_GENERATION.into(), "x".into());
        assert!(parse_labels("abc", &bad, true).is_err());
    }

    #[test]
    fn a_warm_sandbox_is_labelled_pool_without_a_chat_and_reads_back_so() {
        let req = CreateRequest {
            chat_id: ChatId::warm_pool(),
            ..request("runc")
        };
        let written = labels(&req, None);
        assert_eq!(written[LABEL_POOL], "true");
        assert!(!written.contains_key(LABEL_CHAT));
        let back = parse_labels("abc", &written, true).unwrap();
        assert!(back.chat_id.is_warm_pool());
    }

    #[test]
    fn a_container_of_the_release_before_workspaces_is_on_its_sessions_volume() {
        let req = request("runc");
        let mut legacy = labels(&req, None);
        legacy.remove(LABEL_WORKSPACE);
        let back = parse_labels("abc", &legacy, false).unwrap();
        assert_eq!(
            back.workspace_id,
            WorkspaceId::of_legacy_session(req.session_id)
        );
        assert_eq!(
            volume_name(back.workspace_id),
            format!("sandboxer-{}", req.session_id),
            "the name its volume has"
        );
    }

    #[test]
    fn volumes_are_named_and_labelled_by_workspace_not_session() {
        let req = request("runc");
        let id = req.workspace.id();
        let labels = volume_labels(&req, Some("i1"));
        assert_eq!(labels[LABEL_WORKSPACE], id.to_string());
        assert_eq!(labels[LABEL_INSTANCE], "i1");
        assert!(!labels.contains_key(LABEL_SESSION));
        assert_eq!(workspace_of_volume(&volume_name(id)), Some(id));
        for other in ["sandboxer-agent-0123", "sandboxer-x", "other-volume", ""] {
            assert_eq!(workspace_of_volume(other), None, "{other:?}");
        }
        // A fresh workspace is filled from the image; a kept one never.
        let fresh = workspace_mount(&req, None, WORKSPACE_ROOT);
        assert_eq!(fresh.source, Some(volume_name(id)));
        assert_eq!(fresh.volume_options.unwrap().no_copy, Some(false));
        let kept = CreateRequest {
            workspace: WorkspaceUse::Kept(id),
            ..req
        };
        let kept = workspace_mount(&kept, None, WORKSPACE_ROOT);
        assert_eq!(kept.volume_options.unwrap().no_copy, Some(true));
    }

    #[test]
    fn created_at_is_written_as_the_domain_shows_it_and_read_in_any_rfc3339_form() {
        let req = request("runc");
        let written = labels(&req, None);
        assert_eq!(written[LABEL_CREATED_AT], rfc3339(req.created_at));
        let at = |raw: &str| {
            let mut l = written.clone();
            l.insert(LABEL_CREATED_AT.into(), raw.into());
            parse_labels("abc", &l, true).map(|s| s.created_at)
        };
        let expected = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for raw in [
            "2024-05-01T10:00:00.000Z",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00+00:00",
            "2024-05-01T12:00:00.000000000+02:00",
        ] {
            assert_eq!(at(raw), Ok(expected), "{raw}");
        }
        assert!(at("2024-05-01 10:00").is_err());
    }

    #[test]
    fn owner_must_be_numeric_and_not_root() {
        assert_eq!(
            Owner::parse("1000:1001").unwrap(),
            Owner {
                uid: 1000,
                gid: 1001
            }
        );
        for bad in ["1000", "sandbox:sandbox", "0:0", "1000:x", ""] {
            assert!(Owner::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn gvisor_limits_tasks_inside_and_threads_outside() {
        let owner = Owner::parse("1000:1000").unwrap();
        let runc = sandbox_body(&request("runc"), owner, None, None)
            .host_config
            .unwrap();
        assert_eq!(runc.pids_limit, Some(256));
        assert_eq!(runc.ulimits, None);
        let runsc = sandbox_body(&request("runsc"), owner, None, None)
            .host_config
            .unwrap();
        assert_eq!(runsc.pids_limit, Some(256 * 16 + 256));
        assert_eq!(runsc.ulimits.unwrap()[0].soft, Some(256));
    }
}
