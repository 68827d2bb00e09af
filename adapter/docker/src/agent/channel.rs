//! One attach stream per sandbox, carrying the agent protocol: opened on
//! first use (so a create costs no more than without the agent), kept while
//! it works, opened again when it breaks, and after a service restart
//! opened to agents that kept running. Whether a container has the agent
//! is read from its label once and remembered.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::AttachContainerOptionsBuilder;
use futures::StreamExt;
use lru::LruCache;
use sandboxer_agent_proto::{AgentClient, MAX_FRAME_BYTES, PROTOCOL_VERSION, Reply, Request};
use sandboxer_core::port::RuntimeError;
use tokio_util::io::StreamReader;

use super::LABEL_AGENT;
use crate::errors::Subject;
use crate::runtime::DockerSandboxRuntime;

/// How long a fresh attach waits for the agent's hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(3);
/// Before writing on a new attach after one broke: the agent drops a
/// partial frame (the broken writer's last) after 250 ms of silence.
const RESYNC_PAUSE: Duration = Duration::from_millis(300);
/// Containers whose agent label was looked up; a miss costs one inspect.
const KNOWN_MAX: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

/// How a call reached the sandbox (`sandbox.exec.via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Agent,
    Docker,
}

impl Via {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Agent => crate::attr::via::AGENT,
            Self::Docker => crate::attr::via::DOCKER,
        }
    }
}

#[derive(Default)]
struct Slot {
    client: Option<AgentClient>,
    /// An attach was open before: the next one pauses for the agent to resync.
    opened_before: bool,
}

/// The open attach streams and what is known of each container's agent.
pub(crate) struct Channels {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    has_agent: Mutex<LruCache<String, bool>>,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            // Sparse: memory grows with use, not with the bound.
            has_agent: Mutex::new(LruCache::sparse(KNOWN_MAX)),
        }
    }
}

impl Channels {
    pub(crate) fn remember(&self, container: &str, has_agent: bool) {
        self.has_agent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(container.to_owned(), has_agent);
    }

    fn known(&self, container: &str) -> Option<bool> {
        self.has_agent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(container)
            .copied()
    }

    /// Forgets a removed sandbox: its stream closes with the last user.
    pub(crate) fn forget(&self, container: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container);
        self.has_agent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop(container);
    }

    fn slot(&self, container: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(slots.entry(container.to_owned()).or_default())
    }
}

impl DockerSandboxRuntime {
    /// The agent of `target` (a container id or name), connected; `None`
    /// when the container was made without the agent, or its agent speaks
    /// another protocol (the caller goes through `docker exec`).
    ///
    /// # Errors
    /// `ContainerGone`, `Unavailable` / `Timeout` of the engine, `Timeout`
    /// when the agent does not say hello (stopped, or overloaded).
    pub(crate) async fn agent_of(&self, target: &str) -> Result<Option<AgentClient>, RuntimeError> {
        let has_agent = match self.channels.known(target) {
            Some(known) => known,
            None => self.learn_agent(target).await?,
        };
        if !has_agent {
            return Ok(None);
        }
        let slot = self.channels.slot(target);
        let mut slot = slot.lock().await;
        if let Some(client) = slot.client.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Some(client.clone()));
        }
        if slot.opened_before {
            // The stream ended: most often the container did (an attach to
            // a stopped container would wait for its next start).
            if !self.inspect_target(target).await? {
                return Err(RuntimeError::ContainerGone);
            }
            tokio::time::sleep(RESYNC_PAUSE).await;
        }
        slot.opened_before = true;
        slot.client = None;
        let client = self.attach_agent(target).await?;
        if client.is_some() {
            slot.client.clone_from(&client);
        } else {
            self.channels.remember(target, false);
        }
        Ok(client)
    }

    /// Reads the container's agent label.
    async fn learn_agent(&self, target: &str) -> Result<bool, RuntimeError> {
        let info = self
            .engine
            .inspect_container(target)
            .await
            .map_err(|f| f.on(Subject::Container))?;
        let has = info
            .config
            .and_then(|c| c.labels)
            .is_some_and(|l| l.contains_key(LABEL_AGENT));
        self.channels.remember(target, has);
        Ok(has)
    }

    async fn attach_agent(&self, target: &str) -> Result<Option<AgentClient>, RuntimeError> {
        let client = match self
            .engine
            .call(
                "attach container",
                open_channel(&self.engine.docker, target),
            )
            .await
        {
            Ok(client) => client,
            Err(fault) => {
                let err = fault.on(Subject::Container);
                // A stopped container may refuse the attach with a conflict.
                return Err(match self.inspect_target(target).await {
                    Ok(false) => RuntimeError::ContainerGone,
                    _ => err,
                });
            }
        };
        match client.call(&Request::Hello, HELLO_TIMEOUT).await {
            Ok(Reply::Hello(info)) if info.protocol == PROTOCOL_VERSION => Ok(Some(client)),
            Ok(Reply::Hello(info)) => {
                tracing::warn!(%target, protocol = info.protocol, version = %info.version, "the sandbox agent speaks another protocol: using docker exec");
                Ok(None)
            }
            Ok(other) => {
                tracing::warn!(%target, ?other, "the sandbox agent answered hello with something else: using docker exec");
                Ok(None)
            }
            Err(sandboxer_agent_proto::ClientError::Timeout(after)) => {
                if !self.inspect_target(target).await? {
                    return Err(RuntimeError::ContainerGone);
                }
                Err(RuntimeError::Timeout(format!(
                    "the sandbox agent did not answer within {after:?} (stopped or overloaded)"
                )))
            }
            Err(err) => {
                // Closed at once: the container stopped, or attach is refused.
                match self.inspect_target(target).await? {
                    false => Err(RuntimeError::ContainerGone),
                    true => Err(RuntimeError::Other(format!(
                        "the sandbox agent's stream failed: {err}"
                    ))),
                }
            }
        }
    }

    /// Whether `target` runs (a missing container does not).
    pub(crate) async fn inspect_target(&self, target: &str) -> Result<bool, RuntimeError> {
        match self.engine.inspect_container(target).await {
            Ok(info) => Ok(info.state.and_then(|s| s.running).unwrap_or(false)),
            Err(fault) if fault.is_not_found() => Ok(false),
            Err(fault) => Err(fault.on(Subject::Container)),
        }
    }
}

/// The agent protocol over an attach of `container` (stdin, stdout and
/// stderr, streaming, no logs): stdout carries the frames, stderr is the
/// agent's own log and is logged here. No hello yet.
pub(crate) async fn open_channel(
    docker: &Docker,
    container: &str,
) -> Result<AgentClient, bollard::errors::Error> {
    let options = AttachContainerOptionsBuilder::new()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(false)
        .build();
    let attached = docker.attach_container(container, Some(options)).await?;
    let container = container.to_owned();
    let replies = attached.output.filter_map(move |item| {
        let container = container.clone();
        async move {
            match item {
                Ok(LogOutput::StdOut { message }) => Some(Ok(message)),
                Ok(LogOutput::StdErr { message }) => {
                    tracing::warn!(%container, agent = %String::from_utf8_lossy(&message).trim_end(), "the sandbox agent says");
                    None
                }
                Ok(_) => None,
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        }
    });
    let reader = StreamReader::new(Box::pin(replies));
    Ok(AgentClient::new(reader, attached.input, MAX_FRAME_BYTES))
}
