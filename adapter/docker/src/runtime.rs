//! `DockerSandboxRuntime`: the `SandboxRuntime` port on the Docker Engine.
//! This file holds the public face (constructor, image check) and the span
//! around each port call; the work is in `create`, `lifecycle`, `exec` and
//! `files`.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lru::LruCache;
use sandboxer_core::domain::{
    ContainerId, ContainerState, ExecOutcome, ExecRequest, WorkspacePath,
};
use sandboxer_core::port::{
    CreateRequest, RuntimeError, RuntimeSandbox, SandboxRef, SandboxRuntime, StopOutcome, Tracer,
};
use sandboxer_core::trace::attr::{key, result};

use crate::attr::{self, op, span};
use crate::config::{DockerConfig, resolve_host};
use crate::container::{Owner, container_name};
use crate::create::Created;
use crate::engine::Engine;
use crate::errors::Subject;
use crate::events::{self, EventTask, Subscription};
use crate::liveness::{LivenessCache, LivenessStats};
use crate::span::CallSpan;

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
        let engine = Engine::connect(&host, config.call_timeout).await?;
        let liveness = Arc::new(LivenessCache::new(config.liveness_cache));
        let events = config.liveness_cache.then(|| {
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
            _events: events,
        })
    }

    /// The liveness cache's state and counters (`DockerConfig::liveness_cache`).
    pub fn liveness_stats(&self) -> LivenessStats {
        self.liveness.stats()
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

    fn span(&self, name: &'static str, operation: &'static str) -> CallSpan {
        CallSpan::start(self.tracer.as_ref(), name, operation)
    }
}

#[async_trait]
impl SandboxRuntime for DockerSandboxRuntime {
    async fn create(&self, request: &CreateRequest) -> Result<ContainerId, RuntimeError> {
        let mut span = self.span(span::CREATE, op::CREATE);
        span.set(key::SESSION_ID, request.session_id.to_string());
        span.set(key::CHAT_ID, request.chat_id.as_str().to_owned());
        span.set(key::GENERATION, request.generation);
        span.set(attr::key::IMAGE_NAME, request.spec.image.clone());
        span.set(attr::key::RUNTIME, request.spec.runtime.clone());
        let created = self.create_sandbox(request).await;
        if let Ok(Created::New(id) | Created::Adopted(id)) = &created {
            span.set(key::CONTAINER_ID, id.clone());
        }
        span.end(&created, |c| match c {
            Created::New(_) => result::CREATED,
            Created::Adopted(_) => attr::RESULT_ADOPTED,
        });
        created.map(|c| match c {
            Created::New(id) | Created::Adopted(id) => ContainerId::new(id),
        })
    }

    async fn stop(&self, sandbox: &SandboxRef) -> Result<StopOutcome, RuntimeError> {
        let mut span = self.span(span::STOP, op::STOP);
        span.sandbox(sandbox);
        let outcome = self.stop_sandbox(sandbox).await;
        span.end(&outcome, |o| match o {
            StopOutcome::Stopped => result::STOPPED,
            StopOutcome::AlreadyGone => result::ALREADY_GONE,
        });
        outcome
    }

    async fn list_active_sessions(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        let mut span = self.span(span::LIST, op::LIST);
        let listed = self.list_sandboxes().await;
        if let Ok(sandboxes) = &listed {
            span.set(key::ACTIVE_SESSIONS, sandboxes.len());
        }
        span.end(&listed, |_| result::OK);
        listed
    }

    async fn inspect(&self, sandbox: &SandboxRef) -> Result<ContainerState, RuntimeError> {
        let mut span = self.span(span::INSPECT, op::INSPECT);
        span.sandbox(sandbox);
        let id = sandbox.container_id.as_ref().map(ContainerId::as_str);
        let cached = self.liveness.running(id);
        span.set(attr::key::INSPECT_CACHED, cached);
        let state = if cached {
            Ok(ContainerState::Running)
        } else {
            self.inspect_sandbox(sandbox).await
        };
        span.end(&state, |_| result::OK);
        state
    }

    async fn exec(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, RuntimeError> {
        let mut span = self.span(span::EXEC, op::EXEC);
        span.sandbox(sandbox);
        let ran = self.exec_in(sandbox, request).await;
        if let Ok((outcome, kill)) = &ran {
            span.set(key::EXIT_CODE, outcome.exit_code);
            span.set(key::EXEC_TIMED_OUT, outcome.timed_out);
            span.set(key::EXEC_TRUNCATED, outcome.truncated);
            if let Some(how) = kill {
                span.set(attr::key::EXEC_KILL, *how);
            }
        }
        span.end(&ran, |_| result::OK);
        ran.map(|(outcome, _)| outcome)
    }

    async fn put_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError> {
        let mut span = self.span(span::PUT_FILE, op::PUT_FILE);
        span.sandbox(sandbox);
        span.set(key::FILE_PATH, path.as_str().to_owned());
        span.set(key::FILE_SIZE, contents.len());
        let put = self.put(sandbox, path, contents).await;
        span.end(&put, |_| result::OK);
        put
    }

    async fn get_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError> {
        let mut span = self.span(span::GET_FILE, op::GET_FILE);
        span.sandbox(sandbox);
        span.set(key::FILE_PATH, path.as_str().to_owned());
        let got = self.get(sandbox, path).await;
        if let Ok(bytes) = &got {
            span.set(key::FILE_SIZE, bytes.len());
        }
        span.end(&got, |_| result::OK);
        got
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.engine
            .call("ping", self.engine.docker.ping())
            .await
            .map(|_| ())
            .map_err(|f| f.on(Subject::Engine))
    }
}
