//! `DockerSandboxRuntime`: the `SandboxRuntime` port on the Docker Engine.
//! This file holds the public face (constructor, image check) and the span
//! around each port call; the work is in `create`, `lifecycle`, `volumes`,
//! `exec` and `files`.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lru::LruCache;
use sandboxer_core::domain::{
    ContainerId, ContainerState, ExecOutcome, ExecRequest, FileEntry, OutputCursor, OutputRead,
    ProcessId, ProcessInfo, ProcessRequest, PtySize, ReadOptions, SandboxSpec, Signal, Started,
    StdinState, StdinWrite, WorkspaceId, WorkspacePath, WorkspaceUse,
};
use sandboxer_core::port::{
    AttributeValue, CreateRequest, ProcessLimits, RuntimeError, RuntimeSandbox, RuntimeWorkspace,
    SandboxRef, SandboxRuntime, Span, StopOutcome, Tracer,
};
use sandboxer_core::trace::attr::{key, result};
use sandboxer_core::trace::{Step, record_ok, record_sandbox};

use crate::agent::Channels;
use crate::attr::{self, op, span};
use crate::config::{DockerConfig, resolve_host};
use crate::container::{Owner, container_name};
use crate::create::Created;
use crate::engine::Engine;
use crate::errors::Subject;
use crate::events::{self, EventTask, Subscription};
use crate::liveness::{LivenessCache, LivenessStats};
use crate::volumes::Deleted;

/// Owners of the containers this process has seen, so file calls skip an
/// inspect. Bounded: the least recently used goes (a miss costs one inspect).
const OWNER_CACHE_MAX: NonZeroUsize = NonZeroUsize::new(4096).unwrap();
/// Workspace checks kept (`workspace_ok`); a miss costs one archive read.
const WORKSPACE_CACHE_MAX: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// Sandboxes as Docker containers, through bollard.
pub struct DockerSandboxRuntime {
    pub(crate) engine: Engine,
    pub(crate) config: DockerConfig,
    tracer: Arc<dyn Tracer>,
    owners: Mutex<LruCache<String, Owner>>,
    /// Per (image id, owner): whether a fresh workspace from that image
    /// already belongs to the owner. Image ids name immutable content, so
    /// the answer never changes; it saves an archive read (~45 ms) per create.
    pub(crate) workspace_ok: Mutex<LruCache<(String, Owner), bool>>,
    /// Sandboxes known to be running (`liveness`), kept by `_events`.
    pub(crate) liveness: Arc<LivenessCache>,
    /// The agent's attach streams and which containers have the agent.
    pub(crate) channels: Channels,
    /// The agent build's volume, once made and checked.
    pub(crate) agent_volume: tokio::sync::OnceCell<String>,
    /// The event stream's task; ends when the runtime is dropped.
    _events: Option<EventTask>,
}

impl std::fmt::Debug for DockerSandboxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerSandboxRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DockerSandboxRuntime {
    /// Connects to the engine named by `config` (else `DOCKER_HOST`, else the
    /// local socket) and negotiates the API version, within `call_timeout`.
    /// With `liveness_cache`, the event stream is opened in the background
    /// (this does not wait for it).
    ///
    /// # Errors
    /// `Unavailable` when the engine cannot be reached, `Timeout` when it does
    /// not answer in time, `Rejected` for an address of an unknown scheme.
    pub async fn connect(
        config: DockerConfig,
        tracer: Arc<dyn Tracer>,
    ) -> Result<Self, RuntimeError> {
        let host = resolve_host(&config);
        let engine = Engine::connect(&host, config.tls.as_ref(), config.call_timeout).await?;
        // The event stream speaks plain HTTP: no liveness cache over TLS.
        let cached = config.liveness_cache && config.tls.is_none();
        let liveness = Arc::new(LivenessCache::new(cached));
        let events = cached.then(|| {
            let version = engine.docker.client_version();
            let subscription = Subscription {
                endpoint: engine.endpoint.clone(),
                api_version: format!("{}.{}", version.major_version, version.minor_version),
                instance: config.instance.clone(),
                call_timeout: config.call_timeout,
            };
            events::spawn(subscription, Arc::clone(&liveness))
        });
        Ok(Self {
            engine,
            config,
            tracer,
            // Sparse: memory grows with use, not with the bound.
            owners: Mutex::new(LruCache::sparse(OWNER_CACHE_MAX)),
            workspace_ok: Mutex::new(LruCache::sparse(WORKSPACE_CACHE_MAX)),
            liveness,
            channels: Channels::default(),
            agent_volume: tokio::sync::OnceCell::new(),
            _events: events,
        })
    }

    /// Makes the agent build's volume ready now (else the first create
    /// does), with `image` as the helper's image. Nothing without an agent.
    ///
    /// # Errors
    /// As a create: `ImageNotFound`, `Unavailable`, `Timeout`, `Other`.
    pub async fn prepare_agent(&self, image: &str) -> Result<(), RuntimeError> {
        match &self.config.agent {
            Some(agent) => self.agent_volume(agent, image).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// The liveness cache's state and counters (`DockerConfig::liveness_cache`).
    pub fn liveness_stats(&self) -> LivenessStats {
        self.liveness.stats()
    }

    /// Whether this engine holds the workspace's volume (one inspect call).
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`.
    pub async fn has_workspace(&self, workspace: WorkspaceId) -> Result<bool, RuntimeError> {
        let name = crate::container::volume_name(workspace);
        match self
            .engine
            .call("inspect volume", self.engine.docker.inspect_volume(&name))
            .await
        {
            // Another node's volume on a shared engine is that node's.
            Ok(volume) => Ok(
                match (
                    &self.config.node,
                    volume.labels.get(crate::container::LABEL_NODE),
                ) {
                    (Some(ours), Some(its)) => ours == its,
                    _ => true,
                },
            ),
            Err(fault) if fault.is_not_found() => Ok(false),
            Err(fault) => Err(fault.on(Subject::Engine)),
        }
    }

    /// The engine host's memory in bytes, as `docker info` tells it.
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`.
    pub async fn memory_total(&self) -> Result<u64, RuntimeError> {
        let info = self
            .engine
            .call("info", self.engine.docker.info())
            .await
            .map_err(|fault| fault.on(Subject::Engine))?;
        Ok(info
            .mem_total
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0))
    }

    /// Whether the engine holds `image` locally. One inspect call, never a
    /// pull.
    ///
    /// # Errors
    /// `Unavailable`, `Timeout`, `Other`.
    pub async fn image_exists(&self, image: &str) -> Result<bool, RuntimeError> {
        match self
            .engine
            .call("inspect image", self.engine.docker.inspect_image(image))
            .await
        {
            Ok(_) => Ok(true),
            Err(fault) if fault.is_not_found() => Ok(false),
            Err(fault) => Err(fault.on(Subject::Image(image))),
        }
    }

    /// The container a port call is about: its id, else its name.
    pub(crate) fn target(sandbox: &SandboxRef) -> String {
        sandbox.container_id.as_ref().map_or_else(
            || container_name(sandbox.session_id),
            |id| id.as_str().to_owned(),
        )
    }

    pub(crate) fn remember_owner(&self, target: &str, owner: Owner) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.put(target.to_owned(), owner);
    }

    pub(crate) fn cached_owner(&self, target: &str) -> Option<Owner> {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.get(target).copied()
    }

    pub(crate) fn forget_owner(&self, target: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.pop(target);
    }

    /// Labels the sandbox or volume with this engine's node, if it is one.
    pub(crate) fn label_node(&self, labels: &mut std::collections::HashMap<String, String>) {
        if let Some(node) = &self.config.node {
            labels.insert(crate::container::LABEL_NODE.to_owned(), node.clone());
        }
    }

    /// The label filter of what is ours to list: managed, of this instance,
    /// and of this node when the engine is one of several.
    pub(crate) fn ours(&self) -> Vec<String> {
        use crate::container::{LABEL_INSTANCE, LABEL_MANAGED, LABEL_NODE};
        let mut wanted = vec![format!("{LABEL_MANAGED}=true")];
        if let Some(instance) = &self.config.instance {
            wanted.push(format!("{LABEL_INSTANCE}={instance}"));
        }
        if let Some(node) = &self.config.node {
            wanted.push(format!("{LABEL_NODE}={node}"));
        }
        wanted
    }

    fn call(&self, name: &'static str, operation: &'static str) -> Step {
        let step = crate::span::call(self.tracer.as_ref(), name, operation);
        match &self.config.node {
            Some(node) => step.attr(attr::key::NODE, node.clone()),
            None => step,
        }
    }
}

fn set(span: &mut dyn Span, key: &'static str, value: impl Into<AttributeValue>) {
    span.set_attribute(key, value.into());
}

#[async_trait]
impl SandboxRuntime for DockerSandboxRuntime {
    async fn create(&self, request: &CreateRequest) -> Result<ContainerId, RuntimeError> {
        let created = self
            .call(span::CREATE, op::CREATE)
            .attr(key::SESSION_ID, request.session_id.to_string())
            .chat(&request.chat_id)
            .attr(key::GENERATION, request.generation)
            .attr(key::WORKSPACE_ID, request.workspace.id().to_string())
            .attr(
                attr::key::WORKSPACE_USE,
                match request.workspace {
                    WorkspaceUse::Fresh(_) => attr::workspace::FRESH,
                    WorkspaceUse::Kept(_) => attr::workspace::KEPT,
                },
            )
            .attr(attr::key::IMAGE_NAME, request.spec.image.clone())
            .attr(attr::key::RUNTIME, request.spec.runtime.clone())
            .run(
                |_| self.create_sandbox(request),
                |created, span| {
                    let (Created::New(id) | Created::Adopted(id)) = created;
                    set(span, key::CONTAINER_ID, id.clone());
                    let outcome = match created {
                        Created::New(_) => result::CREATED,
                        Created::Adopted(_) => attr::RESULT_ADOPTED,
                    };
                    set(span, key::RESULT, outcome);
                },
            )
            .await;
        created.map(|c| match c {
            Created::New(id) | Created::Adopted(id) => ContainerId::new(id),
        })
    }

    async fn stop(&self, sandbox: &SandboxRef) -> Result<StopOutcome, RuntimeError> {
        self.call(span::STOP, op::STOP)
            .with(|span| record_sandbox(span, sandbox))
            .run(
                |_| self.stop_sandbox(sandbox),
                |outcome, span| {
                    let outcome = match outcome {
                        StopOutcome::Stopped => result::STOPPED,
                        StopOutcome::AlreadyGone => result::ALREADY_GONE,
                    };
                    set(span, key::RESULT, outcome);
                },
            )
            .await
    }

    async fn delete_workspace(&self, workspace: &WorkspaceId) -> Result<(), RuntimeError> {
        self.call(span::DELETE_WORKSPACE, op::DELETE_WORKSPACE)
            .attr(key::WORKSPACE_ID, workspace.to_string())
            .run(
                |_| self.delete_workspace_volume(*workspace),
                |deleted, span| {
                    let outcome = match deleted {
                        Deleted::Removed => result::OK,
                        Deleted::AlreadyGone => result::ALREADY_GONE,
                    };
                    set(span, key::RESULT, outcome);
                },
            )
            .await
            .map(drop)
    }

    async fn list_workspaces(&self, measure: bool) -> Result<Vec<RuntimeWorkspace>, RuntimeError> {
        self.call(span::LIST_WORKSPACES, op::LIST_WORKSPACES)
            .run(
                |_| self.list_workspace_volumes(measure),
                |(workspaces, measured), span| {
                    set(span, attr::key::WORKSPACES_COUNT, workspaces.len());
                    set(span, attr::key::WORKSPACES_MEASURED, *measured);
                    if *measured {
                        let bytes: u64 = workspaces.iter().filter_map(|w| w.bytes).sum();
                        set(span, attr::key::WORKSPACES_BYTES, bytes);
                    }
                    record_ok(workspaces, span);
                },
            )
            .await
            .map(|(workspaces, _)| workspaces)
    }

    async fn list_active_sessions(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        self.call(span::LIST, op::LIST)
            .run(
                |_| self.list_sandboxes(),
                |sandboxes, span| {
                    set(span, key::ACTIVE_SESSIONS, sandboxes.len());
                    record_ok(sandboxes, span);
                },
            )
            .await
    }

    async fn inspect(&self, sandbox: &SandboxRef) -> Result<ContainerState, RuntimeError> {
        let id = sandbox.container_id.as_ref().map(ContainerId::as_str);
        let cached = self.liveness.running(id);
        self.call(span::INSPECT, op::INSPECT)
            .with(|span| record_sandbox(span, sandbox))
            .attr(attr::key::INSPECT_CACHED, cached)
            .run(
                |_| async move {
                    if cached {
                        Ok(ContainerState::Running)
                    } else {
                        self.inspect_sandbox(sandbox).await
                    }
                },
                record_ok,
            )
            .await
    }

    async fn exec(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, RuntimeError> {
        let ran = self
            .call(span::EXEC, op::EXEC)
            .with(|span| record_sandbox(span, sandbox))
            .run(
                |_| self.exec_routed(sandbox, request),
                |(outcome, kill, via), span| {
                    set(span, attr::key::EXEC_VIA, via.as_str());
                    set(span, key::EXIT_CODE, outcome.exit_code);
                    set(span, key::EXEC_TIMED_OUT, outcome.timed_out);
                    set(span, key::EXEC_TRUNCATED, outcome.truncated);
                    if let Some(how) = kill {
                        set(span, attr::key::EXEC_KILL, *how);
                    }
                    record_ok(outcome, span);
                },
            )
            .await;
        ran.map(|(outcome, _, _)| outcome)
    }

    async fn put_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError> {
        self.call(span::PUT_FILE, op::PUT_FILE)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::FILE_PATH, path.as_str().to_owned())
            .attr(key::FILE_SIZE, contents.len())
            .run(
                |_| self.put_routed(sandbox, path, contents),
                |via, span| {
                    set(span, attr::key::EXEC_VIA, via.as_str());
                    record_ok(via, span);
                },
            )
            .await
            .map(|_| ())
    }

    async fn get_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError> {
        self.call(span::GET_FILE, op::GET_FILE)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::FILE_PATH, path.as_str().to_owned())
            .run(
                |_| self.get_routed(sandbox, path),
                |(bytes, via), span| {
                    set(span, attr::key::EXEC_VIA, via.as_str());
                    set(span, key::FILE_SIZE, bytes.len());
                    record_ok(bytes, span);
                },
            )
            .await
            .map(|(bytes, _)| bytes)
    }

    async fn list_files(
        &self,
        sandbox: &SandboxRef,
        dir: Option<&WorkspacePath>,
    ) -> Result<Vec<FileEntry>, RuntimeError> {
        self.call(span::LIST_FILES, op::LIST_FILES)
            .with(|span| record_sandbox(span, sandbox))
            .attr(
                key::FILE_PATH,
                dir.map_or_else(String::new, |d| d.as_str().to_owned()),
            )
            .run(
                |_| self.list_routed(sandbox, dir),
                |(entries, via), span| {
                    set(span, attr::key::EXEC_VIA, via.as_str());
                    set(span, key::FILES_COUNT, entries.len());
                    record_ok(entries, span);
                },
            )
            .await
            .map(|(entries, _)| entries)
    }

    async fn start_process(
        &self,
        sandbox: &SandboxRef,
        request: &ProcessRequest,
        limits: ProcessLimits,
    ) -> Result<Started, RuntimeError> {
        self.call(span::START_PROCESS, op::START_PROCESS)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::PROCESS_ID, request.id.to_string())
            .run(
                |_| self.start_via_agent(sandbox, request, limits),
                |started, span| {
                    let made = if started.created {
                        result::CREATED
                    } else {
                        result::REUSED
                    };
                    set(span, key::RESULT, made);
                },
            )
            .await
    }

    async fn list_processes(&self, sandbox: &SandboxRef) -> Result<Vec<ProcessInfo>, RuntimeError> {
        self.call(span::LIST_PROCESSES, op::LIST_PROCESSES)
            .with(|span| record_sandbox(span, sandbox))
            .run(|_| self.processes_via_agent(sandbox), record_ok)
            .await
    }

    async fn process_status(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        self.call(span::PROCESS_STATUS, op::PROCESS_STATUS)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::PROCESS_ID, id.to_string())
            .run(|_| self.status_via_agent(sandbox, id), record_ok)
            .await
    }

    /// No span: a follow stream reads often (its use case's span covers it).
    async fn read_output(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        from: OutputCursor,
        options: ReadOptions,
    ) -> Result<OutputRead, RuntimeError> {
        self.read_via_agent(sandbox, id, from, options).await
    }

    async fn write_stdin(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        write: &StdinWrite,
    ) -> Result<StdinState, RuntimeError> {
        self.call(span::WRITE_STDIN, op::WRITE_STDIN)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::PROCESS_ID, id.to_string())
            .run(|_| self.stdin_via_agent(sandbox, id, write), record_ok)
            .await
    }

    async fn signal_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        signal: Signal,
    ) -> Result<(), RuntimeError> {
        self.call(span::SIGNAL_PROCESS, op::SIGNAL_PROCESS)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::PROCESS_ID, id.to_string())
            .attr(key::PROCESS_SIGNAL, signal.name())
            .run(|_| self.signal_via_agent(sandbox, id, signal), record_ok)
            .await
    }

    async fn kill_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        self.call(span::KILL_PROCESS, op::KILL_PROCESS)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::PROCESS_ID, id.to_string())
            .run(|_| self.kill_via_agent(sandbox, id), record_ok)
            .await
    }

    async fn resize_pty(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        size: PtySize,
    ) -> Result<(), RuntimeError> {
        self.call(span::RESIZE_PTY, op::RESIZE_PTY)
            .with(|span| record_sandbox(span, sandbox))
            .attr(key::PROCESS_ID, id.to_string())
            .run(|_| self.resize_via_agent(sandbox, id, size), record_ok)
            .await
    }

    async fn prepare(
        &self,
        sandbox: &SandboxRef,
        env: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.call(span::PREPARE, op::PREPARE)
            .with(|span| record_sandbox(span, sandbox))
            .run(|_| self.prepare_via_agent(sandbox, env), record_ok)
            .await
    }

    /// The image's id (a rebuilt tag is another image) and the agent build.
    async fn fingerprint(&self, spec: &SandboxSpec) -> Result<String, RuntimeError> {
        self.call(span::FINGERPRINT, op::FINGERPRINT)
            .attr(attr::key::IMAGE_NAME, spec.image.clone())
            .run(
                |_| async {
                    let image = self
                        .engine
                        .call(
                            "inspect image",
                            self.engine.docker.inspect_image(&spec.image),
                        )
                        .await
                        .map_err(|f| f.on(Subject::Image(&spec.image)))?;
                    let agent = self.config.agent.as_ref().map_or("none", |a| a.digest());
                    Ok(format!("{}/{agent}", image.id.unwrap_or_default()))
                },
                record_ok,
            )
            .await
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.engine
            .call("ping", self.engine.docker.ping())
            .await
            .map(|_| ())
            .map_err(|f| f.on(Subject::Engine))
    }
}
