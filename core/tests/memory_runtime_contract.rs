//! The runtime contract, run against the in-memory runtime the use-case
//! tests rely on: the fake must keep the promises Docker keeps. Its execs
//! run the fake userland (`use_userland`), which the contract's commands use.

use async_trait::async_trait;
use chrono::Utc;
use sandboxer_core::domain::{ChatId, SandboxSpec, SessionId, WorkspaceId, WorkspaceUse};
use sandboxer_core::port::{CreateRequest, SandboxRef, SandboxRuntime};
use sandboxer_core::testing::FakeRuntime;
use sandboxer_core::testing::runtime_contract::{self, RuntimeFixture};

const IMAGE: &str = "fake-userland:latest";
const MISSING: &str = "fake-missing:latest";

struct MemoryFixture {
    runtime: FakeRuntime,
}

fn fresh() -> MemoryFixture {
    let runtime = FakeRuntime::default();
    runtime.use_userland();
    runtime.remove_image(MISSING);
    MemoryFixture { runtime }
}

#[async_trait]
impl RuntimeFixture for MemoryFixture {
    fn runtime(&self) -> &dyn SandboxRuntime {
        &self.runtime
    }

    fn create_request(&self) -> CreateRequest {
        let session_id = SessionId::new();
        CreateRequest {
            session_id,
            chat_id: ChatId::parse(&format!("contract.runtime.{session_id}")).unwrap(),
            workspace: WorkspaceUse::Fresh(WorkspaceId::new()),
            generation: 1,
            created_at: Utc::now(),
            spec: SandboxSpec::with_defaults(IMAGE),
        }
    }

    fn missing_image(&self) -> String {
        MISSING.to_owned()
    }

    async fn remove_behind_its_back(&self, sandbox: &SandboxRef) {
        self.runtime.remove_container(sandbox.session_id);
    }
}

#[tokio::test]
async fn memory_runtime_keeps_the_whole_contract_on_one_runtime() {
    let fixture = fresh();
    runtime_contract::run_all(&fixture).await.unwrap();
    // Properties that pass leave nothing: no container, no workspace.
    assert!(fixture.runtime.containers().is_empty());
    assert!(fixture.runtime.workspaces().is_empty());
}

macro_rules! property {
    ($($name:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            runtime_contract::$name(&fresh()).await.unwrap();
        }
    )+};
}

sandboxer_core::runtime_contract_properties!(property);
