//! Test support for tests against a real Docker Engine (feature `testing`),
//! for this crate's tests and other crates' black-box tests: a local busybox
//! image built once per input set, unique names, specs, a guard that
//! removes everything a test made, even when the test panics, and extra
//! engines on this machine for multi-node tests.

mod extra_engine;
mod guard;
mod image;
mod proxy;

use bollard::models::ContainerCreateBody;
use bollard::{API_DEFAULT_VERSION, Docker};
use chrono::Utc;
use std::sync::Arc;

use sandboxer_core::domain::{
    ChatId, ExecRequest, SandboxSpec, SessionId, WorkspaceId, WorkspaceUse,
};
use sandboxer_core::port::{CreateRequest, RuntimeError, Tracer};
use uuid::Uuid;

pub use extra_engine::ExtraEngine;
pub use guard::Cleanup;
pub use image::{ensure_test_image, ensure_test_image_with_workspace};
pub use proxy::DockerProxy;

use crate::{DockerConfig, DockerSandboxRuntime};

/// The sandbox user of the test images.
pub const TEST_USER: &str = "1000:1000";

/// A chat id no other test uses: `sandboxer-test-<uuid>`.
pub fn unique_chat_id() -> ChatId {
    ChatId::parse(&format!("sandboxer-test-{}", Uuid::now_v7().simple())).expect("a valid chat id")
}

/// The default spec (DESIGN section 7) on `image` and `runtime`.
pub fn test_spec(image: &str, runtime: &str) -> SandboxSpec {
    SandboxSpec {
        runtime: runtime.to_owned(),
        user: TEST_USER.to_owned(),
        ..SandboxSpec::with_defaults(image)
    }
}

/// A create request for a fresh session of a fresh chat on a fresh
/// workspace (its own id, not the session's). Register it with
/// `Cleanup::request`.
pub fn create_request(spec: SandboxSpec) -> CreateRequest {
    CreateRequest {
        session_id: SessionId::new(),
        chat_id: unique_chat_id(),
        workspace: WorkspaceUse::Fresh(WorkspaceId::new()),
        generation: 1,
        created_at: Utc::now(),
        spec,
    }
}

/// The agent of this build, as the service carries it.
pub fn test_agent() -> crate::AgentBinary {
    crate::AgentBinary::new(
        sandboxer_agent_embed::binary(),
        sandboxer_agent_embed::digest(),
    )
}

/// The agent protocol over an attach of `container`, opened as the adapter
/// opens it (no hello sent): for baselines that talk to an agent directly.
///
/// # Errors
/// The engine's, when the attach is refused.
pub async fn agent_channel(
    docker: &Docker,
    container: &str,
) -> Result<sandboxer_agent_proto::AgentClient, bollard::errors::Error> {
    crate::agent::open_channel(docker, container).await
}

/// The default config with this build's agent, as the service runs it.
pub fn test_config() -> DockerConfig {
    DockerConfig {
        agent: Some(test_agent()),
        ..DockerConfig::default()
    }
}

/// The adapter on the local engine with the default config and the agent, tracing to
/// `tracer` (a test keeps its clone to read the spans).
///
/// # Panics
/// When the engine does not answer.
pub async fn test_runtime<T: Tracer + Clone + 'static>(tracer: &T) -> DockerSandboxRuntime {
    DockerSandboxRuntime::connect(test_config(), Arc::new(tracer.clone()))
        .await
        .expect("the Docker Engine answers")
}

/// `sh -c script`: the test images have busybox's shell.
///
/// # Panics
/// When `script` holds a NUL byte.
pub fn sh(script: &str) -> ExecRequest {
    ExecRequest::new(vec!["sh".into(), "-c".into(), script.into()]).expect("a valid script")
}

/// A raw bollard client on the local engine (`DOCKER_HOST` or the default
/// socket), version-negotiated, to look at containers from outside.
pub async fn raw_docker() -> Docker {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let docker = if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(&host, 120, API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_unix(&host, 120, API_DEFAULT_VERSION)
    }
    .expect("a Docker client");
    docker
        .negotiate_version()
        .await
        .expect("the Docker Engine answers")
}

/// Whether the engine has the gVisor runtime `runsc` registered.
pub async fn runsc_registered() -> bool {
    let info = raw_docker().await.info().await.expect("docker info");
    info.runtimes.is_some_and(|r| r.contains_key("runsc"))
}

/// The container names made for `session` (the sandbox, the workspace
/// helper) and the name the release before workspaces gave its volume, as
/// the adapter names them. A workspace's volume is `volume_name`.
pub fn footprint_names(session: SessionId) -> [String; 3] {
    [
        format!("sandboxer-{session}"),
        format!("sandboxer-{session}-prep"),
        volume_name(WorkspaceId::of_legacy_session(session)),
    ]
}

/// The volume of `workspace`, as the adapter names it.
pub fn volume_name(workspace: WorkspaceId) -> String {
    crate::container::volume_name(workspace)
}

/// The body the adapter's create sends for `request` (labels, hardened
/// `HostConfig`, workspace volume), built by the same code, so a baseline
/// can make the very same container with raw bollard calls. Name it with
/// `footprint_names(request.session_id)[0]`; its volume (made by the mount)
/// is `volume_name(request.workspace.id())`.
///
/// # Errors
/// `Rejected` when the spec's user is not a numeric, non-root `uid:gid`.
pub fn sandbox_create_body(
    request: &CreateRequest,
    instance: Option<&str>,
    agent: Option<&crate::AgentBinary>,
) -> Result<ContainerCreateBody, RuntimeError> {
    let owner = crate::container::Owner::parse(&request.spec.user)?;
    Ok(crate::container::sandbox_body(
        request, owner, instance, agent,
    ))
}
