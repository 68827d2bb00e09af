//! Making a sandbox: ready its workspace volume, create, fix a fresh
//! workspace's owner, start; adopt the container when another process made
//! it first; undo on failure (a fresh workspace's volume too, never a kept
//! one's).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bollard::models::ContainerStateStatusEnum as Status;
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use sandboxer_core::domain::{SessionId, WorkspaceUse};
use sandboxer_core::port::{CreateRequest, RuntimeError};

use crate::container::{Owner, container_name, prep_name, sandbox_body};
use crate::errors::{Fault, Subject};
use crate::runtime::DockerSandboxRuntime;

/// The pauses of a create that tries again when the name is taken but no
/// container answers to it yet (the engine reserves the name before the
/// container is registered) or any more (its maker failed and cleaned up):
/// 10 tries in all, 20 ms doubling to at most 500 ms between them.
const ADOPT_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(20))
    .with_max_delay(Duration::from_millis(500))
    .with_max_times(9);

pub(crate) enum Created {
    New(String),
    Adopted(String),
}

/// Why one try of a create neither made nor adopted the sandbox.
enum Attempt {
    /// The name is taken but no container answers to it: try again.
    Vanished,
    Failed(RuntimeError),
}

impl From<RuntimeError> for Attempt {
    fn from(err: RuntimeError) -> Self {
        Self::Failed(err)
    }
}

impl DockerSandboxRuntime {
    pub(crate) async fn create_sandbox(
        &self,
        request: &CreateRequest,
    ) -> Result<Created, RuntimeError> {
        let owner = Owner::parse(&request.spec.user)?;
        self.prepare_workspace(request).await?;
        let name = &container_name(request.session_id);
        let attempt = move || self.create_once(name, request, owner);
        let created = match attempt
            .retry(ADOPT_RETRY)
            .when(|e| matches!(e, Attempt::Vanished))
            .await
        {
            Ok(created) => Ok(created),
            Err(Attempt::Failed(err)) => Err(err),
            Err(Attempt::Vanished) => Err(RuntimeError::Conflict(format!(
                "container {name} kept appearing and vanishing"
            ))),
        };
        // After the containers of the failed create went, so it is free
        // (one of a racing create of the session keeps it: in use).
        if created.is_err()
            && let WorkspaceUse::Fresh(workspace) = request.workspace
        {
            self.remove_volume_quietly(workspace).await;
        }
        created
    }

    /// One try: create the container named `name`, or adopt it when another
    /// process made it first.
    async fn create_once(
        &self,
        name: &str,
        request: &CreateRequest,
        owner: Owner,
    ) -> Result<Created, Attempt> {
        let agent = self.config.agent.as_ref();
        if let Some(agent) = agent {
            self.agent_volume(agent, &request.spec.image).await?;
        }
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let mut body = sandbox_body(request, owner, self.config.instance.as_deref(), agent);
        if let Some(labels) = body.labels.as_mut() {
            self.label_node(labels);
        }
        let made = self
            .engine
            .call(
                "create container",
                self.engine.docker.create_container(Some(options), body),
            )
            .await;
        match made {
            Ok(response) => {
                let id = response.id;
                match self.ready_new(&id, request, owner).await {
                    Ok(()) => {
                        self.remember_owner(&id, owner);
                        self.channels.remember(&id, agent.is_some());
                        Ok(Created::New(id))
                    }
                    Err(err) => {
                        self.remove_containers(request.session_id, &id).await;
                        Err(err.into())
                    }
                }
            }
            Err(Fault::Conflict(_)) => match self.adopt(name, request, owner).await? {
                Some(id) => {
                    self.remember_owner(&id, owner);
                    Ok(Created::Adopted(id))
                }
                None => Err(Attempt::Vanished),
            },
            Err(fault @ Fault::Timeout { .. }) => {
                // The engine may still make it: undo by name, best effort.
                self.remove_containers(request.session_id, name).await;
                Err(fault.on(Subject::Image(&request.spec.image)).into())
            }
            // Nothing was made.
            Err(fault) => Err(fault.on(Subject::Image(&request.spec.image)).into()),
        }
    }

    /// Fixes a fresh workspace's owner (the image's copy-up is done at
    /// create; a kept one's was fixed when it was fresh) and starts the
    /// container.
    async fn ready_new(
        &self,
        id: &str,
        request: &CreateRequest,
        owner: Owner,
    ) -> Result<(), RuntimeError> {
        if matches!(request.workspace, WorkspaceUse::Fresh(_)) {
            self.ensure_workspace_owner(id, request, owner).await?;
        }
        // Our own start is an observation of a container the event stream
        // watches (it carries the labels the stream filters on).
        let observation = self.liveness.begin(id);
        let started = self
            .engine
            .call(
                "start container",
                self.engine.docker.start_container(id, None),
            )
            .await
            .map_err(|f| f.on(Subject::Container));
        if let Some(seen) = observation {
            self.liveness.finish(seen, started.is_ok());
        }
        started
    }

    /// Takes over the session's container that another process made: never
    /// destroys it, starts it if it is not running. `None` when it vanished.
    async fn adopt(
        &self,
        name: &str,
        request: &CreateRequest,
        owner: Owner,
    ) -> Result<Option<String>, RuntimeError> {
        let docker = &self.engine.docker;
        let found = self.engine.inspect_container(name).await;
        let info = match found {
            Ok(info) => info,
            Err(fault) if fault.is_not_found() => return Ok(None),
            Err(fault) => return Err(fault.on(Subject::Container)),
        };
        let id = info
            .id
            .ok_or_else(|| RuntimeError::Other(format!("container {name} has no id")))?;
        let status = info.state.and_then(|s| s.status);
        match status {
            Some(Status::RUNNING) => {}
            Some(Status::CREATED | Status::EXITED) => {
                if status == Some(Status::CREATED)
                    && matches!(request.workspace, WorkspaceUse::Fresh(_))
                {
                    // Its maker may have died before fixing the workspace.
                    self.ensure_workspace_owner(&id, request, owner).await?;
                }
                match self
                    .engine
                    .call("start container", docker.start_container(&id, None))
                    .await
                {
                    Ok(()) => {}
                    Err(fault) if fault.is_not_found() => return Ok(None),
                    Err(fault) => return Err(fault.on(Subject::Container)),
                }
            }
            other => {
                return Err(RuntimeError::Conflict(format!(
                    "container {name} exists in state {other:?}"
                )));
            }
        }
        tracing::info!(container = %id, session = %request.session_id, "adopted a sandbox made by another process");
        Ok(Some(id))
    }

    /// Removes the containers made for `session`: `target` (id or name) and
    /// the workspace helper. Best effort, logged. An engine that does not
    /// answer ends it early: every further call would wait out its timeout
    /// too, and the labels let reconciliation finish.
    pub(crate) async fn remove_containers(&self, session: SessionId, target: &str) {
        for container in [target.to_owned(), prep_name(session)] {
            match self.force_remove(&container).await {
                Ok(()) => {}
                Err(fault) if fault.is_not_found() => {}
                Err(fault @ (Fault::Timeout { .. } | Fault::Unavailable(_))) => {
                    tracing::warn!(%container, ?fault, "the engine does not answer; reconciliation removes the rest of a failed create");
                    return;
                }
                Err(fault) => {
                    tracing::warn!(%container, ?fault, "could not remove a container of a failed create");
                }
            }
        }
    }

    /// Removes a container and its anonymous volumes, killing it if needed.
    pub(crate) async fn force_remove(&self, container: &str) -> Result<(), Fault> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.engine
            .call(
                "remove container",
                self.engine
                    .docker
                    .remove_container(container, Some(options)),
            )
            .await
    }
}
