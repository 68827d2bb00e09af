//! The adapter on a real engine, run per container runtime (`runc.rs`,
//! `gvisor.rs`): the core's runtime contract through `DockerFixture`
//! (`runtime_contract!`), and on the same fixture what only Docker can
//! show: the hardening `docker inspect` sees, workspace ownership, a
//! timeout killing a real process tree, a fork bomb against a real pids
//! limit, the workspace volume that outlives its sandbox. The in-memory
//! runtime has none of those, so they are not in the contract. Every test
//! names what it makes uniquely and removes it (volumes too) through
//! `Cleanup`, even when it fails.

mod agent;
mod hardening;
mod live;
mod processes;
mod workspace;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use sandboxer_core::domain::{ExecOutcome, ExecRequest, SandboxSpec, WorkspaceId};
use sandboxer_core::port::{CreateRequest, SandboxRef, SandboxRuntime};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_core::testing::runtime_contract::RuntimeFixture;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, footprint_names, raw_docker, runsc_registered, sh,
    test_config, test_spec,
};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

pub use agent::{
    a_gib_of_output, a_new_service_attaches_again, agent_holds_as_pid1,
    killed_agent_is_container_gone, many_execs_at_once, one_agent_volume_per_build,
    stopped_agent_is_a_timeout, symlinks_out_of_the_workspace_are_refused,
    without_the_agent_docker_exec_serves,
};
pub use hardening::hardening;
pub use live::{
    a_kill_takes_the_whole_tree, a_shell_on_a_terminal, without_the_agent_there_are_no_processes,
};
pub use processes::{exec_io, exec_timeout, fork_bomb};
pub use workspace::{lifecycle, workspace_kept_across_sandboxes, workspace_owner};

/// One test per property of the core's runtime contract, in a `contract`
/// module, on the container runtime `$rt` (skipped as `runtime_ready` says).
macro_rules! runtime_contract {
    ($rt:literal) => {
        mod contract {
            use crate::suite::contract_tests;
            sandboxer_core::runtime_contract_properties!(contract_tests, $rt);
        }
    };
}

macro_rules! contract_tests {
    ($rt:literal; $($name:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            if let Some(fixture) = crate::suite::DockerFixture::ready($rt).await {
                sandboxer_core::testing::runtime_contract::$name(&fixture)
                    .await
                    .unwrap();
            }
        }
    )+};
}

pub(crate) use {contract_tests, runtime_contract};

/// Whether the engine runs `rt`. runc always; runsc when registered, and
/// without it the tests pass with a note outside CI and fail in CI
/// (`CI=true`), where runsc is required.
pub async fn runtime_ready(rt: &str) -> bool {
    if rt != "runsc" || runsc_registered().await {
        return true;
    }
    let why = "the Docker Engine has no `runsc` runtime registered (see .ci/docker-setup.sh)";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}: required in CI"
    );
    println!("skipping the gVisor suite: {why}");
    false
}

/// The adapter on one container runtime and test image, for the contract
/// and for the Docker-only tests; removes what it made when dropped.
pub struct DockerFixture {
    pub rt: &'static str,
    pub image: String,
    pub runtime: DockerSandboxRuntime,
    pub tracer: RecordingTracer,
    // Last: dropped after the runtime, removes everything.
    pub cleanup: Cleanup,
}

impl DockerFixture {
    /// On the test image (no `/workspace` in it), if the engine runs `rt`.
    pub async fn ready(rt: &'static str) -> Option<Self> {
        if !runtime_ready(rt).await {
            return None;
        }
        Some(Self::on(ensure_test_image(), rt).await)
    }

    pub async fn on(image: String, rt: &'static str) -> Self {
        Self::with_config(image, rt, test_config()).await
    }

    pub async fn with_config(image: String, rt: &'static str, config: DockerConfig) -> Self {
        let tracer = RecordingTracer::new();
        let runtime = DockerSandboxRuntime::connect(config, Arc::new(tracer.clone()))
            .await
            .expect("the Docker Engine answers");
        Self {
            rt,
            image,
            runtime,
            tracer,
            cleanup: Cleanup::new(),
        }
    }

    /// A request for a fresh session on a fresh workspace, registered for
    /// cleanup.
    pub fn request(&self, tweak: impl FnOnce(&mut SandboxSpec)) -> CreateRequest {
        let mut spec = test_spec(&self.image, self.rt);
        tweak(&mut spec);
        let request = create_request(spec);
        self.cleanup.request(&request);
        request
    }
}

#[async_trait]
impl RuntimeFixture for DockerFixture {
    fn runtime(&self) -> &dyn SandboxRuntime {
        &self.runtime
    }

    fn create_request(&self) -> CreateRequest {
        self.request(|_| {})
    }

    fn missing_image(&self) -> String {
        format!("sandboxer-test-missing:{}", uuid::Uuid::now_v7().simple())
    }

    /// `docker rm -f` of the container; its workspace volume stays, as it
    /// would after an operator's removal.
    async fn remove_behind_its_back(&self, sandbox: &SandboxRef) {
        let [container, ..] = footprint_names(sandbox.session_id);
        let force = RemoveContainerOptionsBuilder::new().force(true).build();
        raw_docker()
            .await
            .remove_container(&container, Some(force))
            .await
            .expect("remove the container behind the runtime's back");
    }
}

/// A running sandbox of a `DockerFixture`.
pub struct Sandbox {
    pub sandbox: SandboxRef,
    pub workspace: WorkspaceId,
    pub fixture: DockerFixture,
}

/// The Docker-only tests read `s.runtime`, `s.tracer`, `s.cleanup`.
impl Deref for Sandbox {
    type Target = DockerFixture;

    fn deref(&self) -> &DockerFixture {
        &self.fixture
    }
}

/// A running sandbox of the test image (no `/workspace` in it) on `rt`.
pub async fn start(rt: &'static str, tweak: impl FnOnce(&mut SandboxSpec)) -> Sandbox {
    start_on(ensure_test_image(), rt, tweak).await
}

pub async fn start_on(
    image: String,
    rt: &'static str,
    tweak: impl FnOnce(&mut SandboxSpec),
) -> Sandbox {
    start_with(DockerFixture::on(image, rt).await, tweak).await
}

/// A running sandbox made as a service without the agent makes it (as
/// those made before the agent): reached through `docker exec`.
pub async fn start_without_agent(
    rt: &'static str,
    tweak: impl FnOnce(&mut SandboxSpec),
) -> Sandbox {
    let config = DockerConfig {
        agent: None,
        ..test_config()
    };
    start_with(
        DockerFixture::with_config(ensure_test_image(), rt, config).await,
        tweak,
    )
    .await
}

pub async fn start_with(fixture: DockerFixture, tweak: impl FnOnce(&mut SandboxSpec)) -> Sandbox {
    let request = fixture.request(tweak);
    let began = Instant::now();
    let id = fixture.runtime.create(&request).await.expect("create");
    println!("[{}] create+start took {:?}", fixture.rt, began.elapsed());
    Sandbox {
        sandbox: SandboxRef {
            session_id: request.session_id,
            chat_id: request.chat_id,
            container_id: Some(id),
        },
        workspace: request.workspace.id(),
        fixture,
    }
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

    pub fn id(&self) -> String {
        self.sandbox
            .container_id
            .as_ref()
            .unwrap()
            .as_str()
            .to_owned()
    }
}
