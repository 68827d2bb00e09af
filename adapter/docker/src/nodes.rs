//! `DockerNodes`: the `SandboxRuntime` port over several Docker Engines
//! (nodes). Each node is a `DockerSandboxRuntime` of its own, its
//! sandboxes and volumes labelled with the node's name.
//!
//! - A sandbox's container id is `<node>/<engine's id>`: the session row
//!   keeps it, so every later call for the chat goes to its node. An id
//!   without a node (made before the service had several) is the first
//!   node's.
//! - A new chat goes to the node with the most free capacity (live
//!   sandboxes and their memory limits against the node's capacity),
//!   never to a node that is down or draining; a resumed chat goes back to
//!   the node that holds its workspace volume.
//! - A node that does not answer is marked down by a health check every
//!   `HEALTH_INTERVAL`: its chats fail `Unavailable` at once, the others
//!   are untouched. Listings fail while any node is down, so
//!   reconciliation never takes a node that is away for one whose
//!   sandboxes are gone; it runs again once the node is back.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use sandboxer_core::domain::{
    ContainerId, ContainerState, ExecOutcome, ExecRequest, FileEntry, OutputCursor, OutputRead,
    ProcessId, ProcessInfo, ProcessRequest, PtySize, ReadOptions, SandboxSpec, Signal, Started,
    StdinState, StdinWrite, WorkspaceId, WorkspacePath, WorkspaceUse,
};
use sandboxer_core::port::{
    CreateRequest, ProcessLimits, RuntimeError, RuntimeSandbox, RuntimeWorkspace, SandboxRef,
    SandboxRuntime, StopOutcome, Tracer,
};
use tokio::sync::RwLock;

use crate::config::DockerConfig;
use crate::runtime::DockerSandboxRuntime;

/// Between two health checks of every node.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// What a node may hold. Memory `None`: the engine host's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub sandboxes: u64,
    pub memory_bytes: Option<u64>,
}

/// One engine of the fleet.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `[a-z0-9._-]`, 1 to 32 characters; labels and container ids carry it.
    pub name: String,
    /// The engine's connection and the adapter's settings (`host`, TLS).
    pub docker: DockerConfig,
    pub capacity: Capacity,
    /// No new chats are placed on a draining node; its chats stay.
    pub draining: bool,
}

/// A node as readiness and metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub up: bool,
    pub draining: bool,
    pub sandboxes: u64,
    pub memory_bytes: u64,
    pub capacity_sandboxes: u64,
    pub capacity_memory_bytes: u64,
}

/// Readies a node's engine once it answers (the agent's volume, the
/// default image): run at its first connection and whenever it comes back.
pub type OnUp = Arc<
    dyn Fn(
            Arc<DockerSandboxRuntime>,
        ) -> futures::future::BoxFuture<'static, Result<(), RuntimeError>>
        + Send
        + Sync,
>;

struct Node {
    config: NodeConfig,
    runtime: RwLock<Option<Arc<DockerSandboxRuntime>>>,
    up: AtomicBool,
    draining: AtomicBool,
    /// Memory limit of each live sandbox of this node, by engine id.
    load: Mutex<HashMap<String, u64>>,
    /// The engine's memory when the capacity does not say.
    memory_total: Mutex<u64>,
}

impl Node {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// The node's runtime while it is up.
    async fn runtime(&self) -> Result<Arc<DockerSandboxRuntime>, RuntimeError> {
        let runtime = self.runtime.read().await.clone();
        match runtime {
            Some(runtime) if self.up.load(Ordering::SeqCst) => Ok(runtime),
            _ => Err(RuntimeError::Unavailable(format!(
                "node {} does not answer (its Docker Engine is away); its sandboxes wait \
                 for it, other chats are not affected",
                self.name()
            ))),
        }
    }

    fn capacity_memory(&self) -> u64 {
        self.config.capacity.memory_bytes.unwrap_or_else(|| {
            *self
                .memory_total
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
    }

    fn used(&self) -> (u64, u64) {
        let load = self
            .load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (load.len() as u64, load.values().sum())
    }

    /// The share of its capacity still free after one more sandbox of
    /// `memory` (the smaller of sandboxes and memory); `None` when that
    /// sandbox does not fit.
    fn free_after(&self, memory: u64) -> Option<f64> {
        let (sandboxes, used_memory) = self.used();
        let cap_sandboxes = self.config.capacity.sandboxes;
        let cap_memory = self.capacity_memory();
        if sandboxes + 1 > cap_sandboxes {
            return None;
        }
        let by_count = (cap_sandboxes - sandboxes - 1) as f64 / cap_sandboxes.max(1) as f64;
        if cap_memory == 0 {
            return Some(by_count);
        }
        let after = used_memory + memory;
        if after > cap_memory {
            return None;
        }
        let by_memory = (cap_memory - after) as f64 / cap_memory as f64;
        Some(by_count.min(by_memory))
    }

    fn record(&self, engine_id: &str, memory: u64) {
        self.load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(engine_id.to_owned(), memory);
    }

    fn forget(&self, engine_id: &str) {
        self.load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(engine_id);
    }

    /// The live sandboxes the engine listed, keeping known memory limits
    /// (a sandbox this process did not make counts at the mean of the rest).
    fn relist(&self, running: &[&str]) {
        let mut load = self
            .load
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mean = if load.is_empty() {
            0
        } else {
            load.values().sum::<u64>() / load.len() as u64
        };
        // Creates under way keep their reservation.
        let fresh: HashMap<String, u64> = running
            .iter()
            .map(|id| ((*id).to_owned(), load.get(*id).copied().unwrap_or(mean)))
            .chain(
                load.iter()
                    .filter(|(id, _)| id.starts_with("pending:"))
                    .map(|(id, memory)| (id.clone(), *memory)),
            )
            .collect();
        *load = fresh;
    }

    fn status(&self) -> NodeStatus {
        let (sandboxes, memory_bytes) = self.used();
        NodeStatus {
            name: self.name().to_owned(),
            up: self.up.load(Ordering::SeqCst),
            draining: self.draining.load(Ordering::SeqCst),
            sandboxes,
            memory_bytes,
            capacity_sandboxes: self.config.capacity.sandboxes,
            capacity_memory_bytes: self.capacity_memory(),
        }
    }
}

/// The runtime over several engines. Cheap to share behind an `Arc`.
pub struct DockerNodes {
    nodes: Vec<Arc<Node>>,
    placing: Mutex<()>,
    health: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for DockerNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.nodes.iter().map(|n| n.name().to_owned()).collect();
        f.debug_struct("DockerNodes")
            .field("nodes", &names)
            .finish()
    }
}

impl Drop for DockerNodes {
    fn drop(&mut self) {
        if let Some(task) = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

/// Whether `name` may name a node.
pub fn valid_node_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl DockerNodes {
    /// Connects to every node that answers now (the others are down until
    /// the health check reaches them) and starts the health check.
    ///
    /// # Errors
    /// `Rejected` for a bad or repeated node name or no node at all.
    pub async fn connect(
        nodes: Vec<NodeConfig>,
        tracer: Arc<dyn Tracer>,
        on_up: OnUp,
    ) -> Result<Arc<Self>, RuntimeError> {
        if nodes.is_empty() {
            return Err(RuntimeError::Rejected("no Docker node configured".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for node in &nodes {
            if !valid_node_name(&node.name) || !seen.insert(node.name.clone()) {
                return Err(RuntimeError::Rejected(format!(
                    "node name {:?} is invalid or repeated (1-32 of a-z 0-9 . _ -)",
                    node.name
                )));
            }
        }
        let fleet = Arc::new(Self {
            nodes: nodes
                .into_iter()
                .map(|mut config| {
                    config.docker.node = Some(config.name.clone());
                    Arc::new(Node {
                        draining: AtomicBool::new(config.draining),
                        config,
                        runtime: RwLock::new(None),
                        up: AtomicBool::new(false),
                        load: Mutex::new(HashMap::new()),
                        memory_total: Mutex::new(0),
                    })
                })
                .collect(),
            placing: Mutex::new(()),
            health: Mutex::new(None),
        });
        for node in &fleet.nodes {
            check(node, &tracer, &on_up).await;
        }
        let weak = Arc::downgrade(&fleet);
        let task = tokio::spawn(health_loop(weak, tracer, on_up));
        *fleet
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        Ok(fleet)
    }

    /// Every node as it is now.
    pub fn statuses(&self) -> Vec<NodeStatus> {
        self.nodes.iter().map(|n| n.status()).collect()
    }

    /// Starts or stops draining `node`; `false` when there is no such node.
    pub fn set_draining(&self, node: &str, draining: bool) -> bool {
        match self.nodes.iter().find(|n| n.name() == node) {
            Some(n) => {
                n.draining.store(draining, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    fn node(&self, name: &str) -> Result<&Arc<Node>, RuntimeError> {
        self.nodes
            .iter()
            .find(|n| n.name() == name)
            .ok_or_else(|| RuntimeError::Other(format!("container of unknown node {name:?}")))
    }

    /// The node of a container id (`node/engine id`), and the engine's id.
    fn locate<'a>(&'a self, id: &'a ContainerId) -> Result<(&'a Arc<Node>, &'a str), RuntimeError> {
        match id.as_str().split_once('/') {
            Some((node, raw)) => Ok((self.node(node)?, raw)),
            None => Ok((&self.nodes[0], id.as_str())),
        }
    }

    /// The sandbox's node and the reference that node knows it by.
    async fn route(
        &self,
        sandbox: &SandboxRef,
    ) -> Result<(Arc<DockerSandboxRuntime>, SandboxRef), RuntimeError> {
        let Some(id) = &sandbox.container_id else {
            // No container yet: only a stop may come here (`stop` asks every node).
            return Err(RuntimeError::ContainerGone);
        };
        let (node, raw) = self.locate(id)?;
        let local = SandboxRef {
            container_id: Some(ContainerId::new(raw)),
            ..sandbox.clone()
        };
        Ok((node.runtime().await?, local))
    }

    /// The node holding a workspace's volume; `None` when no node holds
    /// it. A node that is away may be the one: `Unavailable` then.
    async fn holder(&self, workspace: WorkspaceId) -> Result<Option<Arc<Node>>, RuntimeError> {
        let mut away = Vec::new();
        for node in &self.nodes {
            match node.runtime().await {
                Ok(runtime) => {
                    if runtime.has_workspace(workspace).await? {
                        return Ok(Some(Arc::clone(node)));
                    }
                }
                Err(_) => away.push(node.name().to_owned()),
            }
        }
        if away.is_empty() {
            Ok(None)
        } else {
            Err(RuntimeError::Unavailable(format!(
                "workspace {workspace} is on no node that answers; node(s) {} are away",
                away.join(", ")
            )))
        }
    }

    /// Where a create goes: the node holding a kept workspace, else the
    /// node with the most free capacity.
    async fn place(&self, request: &CreateRequest) -> Result<Arc<Node>, RuntimeError> {
        // A kept workspace on no node at all: the placed node's create says
        // it is gone.
        if let WorkspaceUse::Kept(workspace) = request.workspace
            && let Some(node) = self.holder(workspace).await?
        {
            node.record(&pending(request), request.spec.limits.memory_bytes);
            return Ok(node);
        }
        let memory = request.spec.limits.memory_bytes;
        // Chosen and reserved under one lock: creates at once must see each
        // other's share, not all pick the node that was emptiest.
        let _placing = self
            .placing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let node = self
            .nodes
            .iter()
            .filter(|n| n.up.load(Ordering::SeqCst) && !n.draining.load(Ordering::SeqCst))
            .filter_map(|n| n.free_after(memory).map(|free| (free, n)))
            // The most free; the first configured among equals.
            .fold(None::<(f64, &Arc<Node>)>, |best, (free, n)| match best {
                Some((b, _)) if b >= free => best,
                _ => Some((free, n)),
            })
            .map(|(_, n)| Arc::clone(n))
            .ok_or_else(|| {
                RuntimeError::NoSpace(
                    "no node that answers and is not draining has room for another sandbox".into(),
                )
            })?;
        node.record(&pending(request), memory);
        Ok(node)
    }

    /// Each node's answer to `call`, all of them or the first failure (a
    /// node that is away fails the whole listing).
    async fn on_every_node<T, F>(&self, call: F) -> Result<Vec<(Arc<Node>, T)>, RuntimeError>
    where
        F: Fn(
            Arc<DockerSandboxRuntime>,
        ) -> futures::future::BoxFuture<'static, Result<T, RuntimeError>>,
    {
        let mut answers = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let runtime = node.runtime().await?;
            answers.push((Arc::clone(node), call(runtime).await?));
        }
        Ok(answers)
    }
}

/// Connects a node not connected yet, then checks it answers; marks it up
/// or down, readying it on its way up.
async fn check(node: &Arc<Node>, tracer: &Arc<dyn Tracer>, on_up: &OnUp) {
    let existing = node.runtime.read().await.clone();
    let runtime = match existing {
        Some(runtime) => runtime,
        None => match DockerSandboxRuntime::connect(node.config.docker.clone(), Arc::clone(tracer))
            .await
        {
            Ok(runtime) => {
                let runtime = Arc::new(runtime);
                *node.runtime.write().await = Some(Arc::clone(&runtime));
                runtime
            }
            Err(err) => {
                mark(node, false, &err.to_string());
                return;
            }
        },
    };
    let answered = match runtime.ping().await {
        Ok(()) if !node.up.load(Ordering::SeqCst) => ready(node, &runtime, on_up).await,
        other => other,
    };
    match answered {
        Ok(()) => mark(node, true, ""),
        Err(err) => mark(node, false, &err.to_string()),
    }
}

/// A node coming up: its memory, its live sandboxes, and what it needs.
async fn ready(
    node: &Arc<Node>,
    runtime: &Arc<DockerSandboxRuntime>,
    on_up: &OnUp,
) -> Result<(), RuntimeError> {
    *node
        .memory_total
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = runtime.memory_total().await?;
    let listed = runtime.list_active_sessions().await?;
    let running: Vec<&str> = listed
        .iter()
        .filter(|s| s.running)
        .map(|s| s.container_id.as_str())
        .collect();
    node.relist(&running);
    on_up(Arc::clone(runtime)).await
}

fn mark(node: &Node, up: bool, why: &str) {
    let was = node.up.swap(up, Ordering::SeqCst);
    if was != up {
        if up {
            tracing::info!(node = node.name(), "node is up");
        } else {
            tracing::warn!(node = node.name(), error = why, "node is down");
        }
    }
}

async fn health_loop(fleet: Weak<DockerNodes>, tracer: Arc<dyn Tracer>, on_up: OnUp) {
    let mut ticks = tokio::time::interval(HEALTH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(fleet) = fleet.upgrade() else {
            return;
        };
        let checks = fleet.nodes.iter().map(|n| check(n, &tracer, &on_up));
        futures::future::join_all(checks).await;
    }
}

/// The load entry that holds a create's place until its container exists.
fn pending(request: &CreateRequest) -> String {
    format!("pending:{}", request.session_id)
}

fn qualify(node: &Node, id: &ContainerId) -> ContainerId {
    ContainerId::new(format!("{}/{}", node.name(), id.as_str()))
}

#[async_trait]
impl SandboxRuntime for DockerNodes {
    async fn create(&self, request: &CreateRequest) -> Result<ContainerId, RuntimeError> {
        let node = self.place(request).await?;
        let created = match node.runtime().await {
            Ok(runtime) => runtime.create(request).await,
            Err(err) => Err(err),
        };
        // The reservation becomes the sandbox, or goes.
        node.forget(&pending(request));
        let id = created?;
        node.record(id.as_str(), request.spec.limits.memory_bytes);
        Ok(qualify(&node, &id))
    }

    async fn stop(&self, sandbox: &SandboxRef) -> Result<StopOutcome, RuntimeError> {
        if let Some(id) = &sandbox.container_id {
            let (runtime, local) = self.route(sandbox).await?;
            let outcome = runtime.stop(&local).await?;
            let (node, raw) = self.locate(id)?;
            node.forget(raw);
            return Ok(outcome);
        }
        // A create cut before its container was recorded: whichever node
        // may hold it is asked (all must answer, or nothing is sure).
        let mut outcome = StopOutcome::AlreadyGone;
        for node in &self.nodes {
            let runtime = node.runtime().await?;
            if runtime.stop(sandbox).await? == StopOutcome::Stopped {
                outcome = StopOutcome::Stopped;
            }
        }
        Ok(outcome)
    }

    async fn delete_workspace(&self, workspace: &WorkspaceId) -> Result<(), RuntimeError> {
        match self.holder(*workspace).await? {
            Some(node) => node.runtime().await?.delete_workspace(workspace).await,
            None => Ok(()),
        }
    }

    async fn list_workspaces(&self, measure: bool) -> Result<Vec<RuntimeWorkspace>, RuntimeError> {
        let answers = self
            .on_every_node(|r| Box::pin(async move { r.list_workspaces(measure).await }))
            .await?;
        Ok(answers.into_iter().flat_map(|(_, w)| w).collect())
    }

    async fn list_active_sessions(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        let answers = self
            .on_every_node(|r| Box::pin(async move { r.list_active_sessions().await }))
            .await?;
        let mut all = Vec::new();
        for (node, sandboxes) in answers {
            let running: Vec<&str> = sandboxes
                .iter()
                .filter(|s| s.running)
                .map(|s| s.container_id.as_str())
                .collect();
            node.relist(&running);
            all.extend(sandboxes.into_iter().map(|mut s| {
                s.container_id = qualify(&node, &s.container_id);
                s
            }));
        }
        Ok(all)
    }

    async fn inspect(&self, sandbox: &SandboxRef) -> Result<ContainerState, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.inspect(&local).await
    }

    async fn exec(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.exec(&local, request).await
    }

    async fn put_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.put_file(&local, path, contents).await
    }

    async fn get_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.get_file(&local, path).await
    }

    async fn list_files(
        &self,
        sandbox: &SandboxRef,
        dir: Option<&WorkspacePath>,
    ) -> Result<Vec<FileEntry>, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.list_files(&local, dir).await
    }

    async fn start_process(
        &self,
        sandbox: &SandboxRef,
        request: &ProcessRequest,
        limits: ProcessLimits,
    ) -> Result<Started, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.start_process(&local, request, limits).await
    }

    async fn list_processes(&self, sandbox: &SandboxRef) -> Result<Vec<ProcessInfo>, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.list_processes(&local).await
    }

    async fn process_status(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.process_status(&local, id).await
    }

    async fn read_output(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        from: OutputCursor,
        options: ReadOptions,
    ) -> Result<OutputRead, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.read_output(&local, id, from, options).await
    }

    async fn write_stdin(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        write: &StdinWrite,
    ) -> Result<StdinState, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.write_stdin(&local, id, write).await
    }

    async fn signal_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        signal: Signal,
    ) -> Result<(), RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.signal_process(&local, id, signal).await
    }

    async fn kill_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.kill_process(&local, id).await
    }

    async fn resize_pty(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        size: PtySize,
    ) -> Result<(), RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.resize_pty(&local, id, size).await
    }

    async fn prepare(
        &self,
        sandbox: &SandboxRef,
        env: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let (runtime, local) = self.route(sandbox).await?;
        runtime.prepare(&local, env).await
    }

    /// The first node that answers: images are loaded alike everywhere
    /// (their ids are their content), the agent is this build's.
    async fn fingerprint(&self, spec: &SandboxSpec) -> Result<String, RuntimeError> {
        let mut last = None;
        for node in &self.nodes {
            match node.runtime().await {
                Ok(runtime) => return runtime.fingerprint(spec).await,
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| RuntimeError::Unavailable("no node".into())))
    }

    /// Ready while any node answers: a node that is away fails only its
    /// own chats (readiness lists each node).
    async fn ping(&self) -> Result<(), RuntimeError> {
        if self.nodes.iter().any(|n| n.up.load(Ordering::SeqCst)) {
            Ok(())
        } else {
            Err(RuntimeError::Unavailable("no Docker node answers".into()))
        }
    }
}
