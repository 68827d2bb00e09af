//! The middle layer: the same work through `DockerSandboxRuntime` itself
//! (the service's Docker adapter, without HTTP, store or use cases), so the
//! gap between the service and raw bollard splits into what the adapter
//! adds and what the rest of the service adds. Its sandboxes carry the
//! instance label `<run>-adapter`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;
use bytes::Bytes;
use sandboxer_core::domain::{ContainerState, ExecRequest, SessionId, WorkspaceId, WorkspacePath};
use sandboxer_core::port::{SandboxRef, SandboxRuntime};
use sandboxer_core::trace::NoopTracer;
use sandboxer_docker::testing::{create_request, test_spec};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

pub struct Adapter {
    runtime: DockerSandboxRuntime,
    image: String,
    /// Each sandbox's workspace, which its stop removes too (as the
    /// service's DELETE does).
    workspaces: Mutex<HashMap<SessionId, WorkspaceId>>,
}

impl Adapter {
    pub async fn connect(image: &str, instance: &str) -> anyhow::Result<Self> {
        let config = DockerConfig {
            instance: Some(instance.to_owned()),
            ..sandboxer_docker::testing::test_config()
        };
        let runtime = DockerSandboxRuntime::connect(config, Arc::new(NoopTracer)).await?;
        Ok(Self {
            runtime,
            image: image.to_owned(),
            workspaces: Mutex::default(),
        })
    }

    pub async fn create(&self) -> anyhow::Result<(Duration, SandboxRef)> {
        let request = create_request(test_spec(&self.image, "runc"));
        let started = Instant::now();
        let id = self.runtime.create(&request).await?;
        let took = started.elapsed();
        self.workspaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request.session_id, request.workspace.id());
        Ok((
            took,
            SandboxRef {
                session_id: request.session_id,
                chat_id: request.chat_id,
                container_id: Some(id),
            },
        ))
    }

    pub async fn inspect(&self, sandbox: &SandboxRef) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let state = self.runtime.inspect(sandbox).await?;
        let took = started.elapsed();
        ensure!(
            state == ContainerState::Running,
            "adapter sandbox is {state:?}"
        );
        Ok(took)
    }

    pub async fn exec(
        &self,
        sandbox: &SandboxRef,
        argv: &[&str],
        expected: &str,
    ) -> anyhow::Result<Duration> {
        let request = ExecRequest::new(argv.iter().map(|s| (*s).to_owned()).collect())?;
        let started = Instant::now();
        let out = self.runtime.exec(sandbox, &request).await?;
        let took = started.elapsed();
        ensure!(
            out.exit_code == 0 && out.stdout == expected.as_bytes(),
            "adapter exec {argv:?}: exit {}, stdout {:?}",
            out.exit_code,
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(took)
    }

    pub async fn put(
        &self,
        sandbox: &SandboxRef,
        file: &str,
        contents: &Bytes,
    ) -> anyhow::Result<Duration> {
        let path = WorkspacePath::parse(file)?;
        let started = Instant::now();
        self.runtime.put_file(sandbox, &path, contents).await?;
        Ok(started.elapsed())
    }

    pub async fn get(
        &self,
        sandbox: &SandboxRef,
        file: &str,
        expected: &Bytes,
    ) -> anyhow::Result<Duration> {
        let path = WorkspacePath::parse(file)?;
        let started = Instant::now();
        let back = self.runtime.get_file(sandbox, &path).await?;
        let took = started.elapsed();
        ensure!(back == expected.as_ref(), "adapter get: the bytes changed");
        Ok(took)
    }

    /// The container and its workspace, as the service's DELETE.
    pub async fn stop(&self, sandbox: &SandboxRef) -> anyhow::Result<Duration> {
        let workspace = self
            .workspaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&sandbox.session_id);
        let started = Instant::now();
        self.runtime.stop(sandbox).await?;
        if let Some(workspace) = workspace {
            self.runtime.delete_workspace(&workspace).await?;
        }
        Ok(started.elapsed())
    }
}
