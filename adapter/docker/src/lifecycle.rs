//! Stop (remove the sandbox's containers; its workspace volume stays), list
//! our sandboxes, inspect one.

use std::collections::HashMap;

use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{ListContainersOptionsBuilder, StopContainerOptionsBuilder};
use sandboxer_core::domain::{ContainerId, ContainerState};
use sandboxer_core::port::{RuntimeError, RuntimeSandbox, SandboxRef, StopOutcome};

use crate::container::{LABEL_ROLE, container_name, parse_labels, prep_name};
use crate::errors::{Fault, Subject};
use crate::events::watched;
use crate::runtime::DockerSandboxRuntime;

impl DockerSandboxRuntime {
    /// Removes the container with force (a kill, then the removal: one
    /// call) and the workspace helper if one was left. The workspace
    /// volume outlives it (`delete_workspace`).
    pub(crate) async fn stop_sandbox(
        &self,
        sandbox: &SandboxRef,
    ) -> Result<StopOutcome, RuntimeError> {
        let target = Self::target(sandbox);
        if !self.config.stop_grace.is_zero() {
            let secs = i32::try_from(self.config.stop_grace.as_secs().max(1)).unwrap_or(i32::MAX);
            let options = StopContainerOptionsBuilder::new().t(secs).build();
            let limit = self.config.call_timeout + self.config.stop_grace;
            match self
                .engine
                .call_within(
                    "stop container",
                    limit,
                    self.engine.docker.stop_container(&target, Some(options)),
                )
                .await
            {
                Ok(()) => {}
                Err(fault) if fault.is_not_found() => {}
                Err(fault) => return Err(fault.on(Subject::Container)),
            }
        }
        let removed = self.force_remove(&target).await;
        // After the removal: an inspect in flight since before it is voided.
        // (By name only, an entry by id is left to the destroy event.)
        if let Some(id) = &sandbox.container_id {
            self.liveness.invalidate(id.as_str());
        }
        let outcome = match removed {
            Ok(()) => StopOutcome::Stopped,
            Err(fault) if fault.is_not_found() => StopOutcome::AlreadyGone,
            // Another stop is removing it right now.
            Err(Fault::Conflict(msg)) if msg.contains("already in progress") => {
                StopOutcome::Stopped
            }
            Err(fault) => return Err(fault.on(Subject::Container)),
        };
        self.forget_owner(&target);
        self.channels.forget(&target);
        match self.force_remove(&prep_name(sandbox.session_id)).await {
            Ok(()) => {}
            Err(fault) if fault.is_not_found() => {}
            Err(fault) => return Err(fault.on(Subject::Container)),
        }
        Ok(outcome)
    }

    /// `SandboxRuntime::list_active_sessions`: every sandbox of ours (label
    /// `sandboxer.managed=true`, and this instance's when one is
    /// configured), one per session: its container in any state (`running`
    /// only when Docker says running), and, for a session whose container
    /// is gone but whose workspace helper is left (a crash between two
    /// removals), an entry under the container's name that is not running,
    /// so reconciliation's stop removes the helper. Volumes are workspaces,
    /// not sandboxes: `list_workspaces` lists them. Containers whose labels
    /// do not parse are logged and skipped.
    pub(crate) async fn list_sandboxes(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        let wanted = self.ours();
        let filters = HashMap::from([("label", wanted)]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .engine
            .call(
                "list containers",
                self.engine.docker.list_containers(Some(options)),
            )
            .await
            .map_err(|f| f.on(Subject::Engine))?;
        let mut sandboxes = Vec::with_capacity(containers.len());
        let mut leftovers = Vec::new();
        for summary in containers {
            let id = summary.id.unwrap_or_default();
            let labels = summary.labels.unwrap_or_default();
            let running = summary.state == Some(ContainerSummaryStateEnum::RUNNING);
            let parsed = parse_labels(&id, &labels, running);
            match parsed {
                Ok(sandbox) if labels.contains_key(LABEL_ROLE) => leftovers.push(sandbox),
                Ok(sandbox) => sandboxes.push(sandbox),
                Err(reason) => {
                    tracing::warn!(container = %id, %reason, "skipping a container labelled as ours whose labels do not parse");
                }
            }
        }
        for mut leftover in leftovers {
            if sandboxes
                .iter()
                .any(|s| s.session_id == leftover.session_id)
            {
                continue;
            }
            leftover.container_id = ContainerId::new(container_name(leftover.session_id));
            leftover.running = false;
            sandboxes.push(leftover);
        }
        Ok(sandboxes)
    }

    pub(crate) async fn inspect_sandbox(
        &self,
        sandbox: &SandboxRef,
    ) -> Result<ContainerState, RuntimeError> {
        let target = Self::target(sandbox);
        // Begun before the call, so that an event during it voids the answer.
        let observation = sandbox
            .container_id
            .as_ref()
            .and_then(|id| self.liveness.begin(id.as_str()));
        let found = self.engine.inspect_container(&target).await;
        match found {
            Ok(info) => {
                let running = info.state.and_then(|s| s.running).unwrap_or(false);
                // Cached only if the event stream reports this container's
                // death: the id asked for, labelled as the stream filters.
                let watched = info.id.as_deref() == Some(target.as_str())
                    && info
                        .config
                        .and_then(|c| c.labels)
                        .is_some_and(|l| watched(&l, self.config.instance.as_deref()));
                if let Some(seen) = observation {
                    self.liveness.finish(seen, running && watched);
                }
                Ok(if running {
                    ContainerState::Running
                } else {
                    ContainerState::Exited
                })
            }
            Err(fault) => {
                if let Some(seen) = observation {
                    self.liveness.finish(seen, false);
                }
                if fault.is_not_found() {
                    Ok(ContainerState::Missing)
                } else {
                    Err(fault.on(Subject::Container))
                }
            }
        }
    }
}
