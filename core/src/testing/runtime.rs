//! An in-memory `SandboxRuntime`: containers are map entries, workspaces
//! (kept by id, outliving their containers) are maps of bytes, execs
//! answer from a handler (or, after `use_userland`, from the small userland
//! of `fake_userland`); the output cap and the timeout are applied to any
//! answer, as a runtime would. Failures and delays are
//! scriptable, and execs can be held open to test leases. Each call records
//! a CLIENT span `FakeSandboxRuntime.<op>` so tests see adapter spans nest.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::domain::{
    ContainerId, ContainerState, ExecOutcome, ExecRequest, FileEntry, OutputCursor, OutputRead,
    ProcessId, ProcessInfo, ProcessRequest, PtySize, ReadOptions, SandboxSpec, SessionId, Signal,
    Started, StdinState, StdinWrite, Timestamp, WorkspaceId, WorkspacePath,
};
use crate::port::runtime::{
    CreateRequest, ProcessLimits, RuntimeError, RuntimeSandbox, RuntimeWorkspace, SandboxRef,
    SandboxRuntime, StopOutcome,
};
use crate::port::tracer::{self, Span, SpanKind, Tracer};
use crate::trace::{NoopTracer, attr::key, mark_failed};

use super::fake_processes::{self as procs, Tables};
use super::fake_userland::{self, Programs, echo_argv};
use super::fake_workspace::{self, FakeFiles, FakeWorkspace, FakeWorkspaces};
use super::runtime_op::RuntimeOp;

/// A sandbox's container; its files are its workspace's
/// (`sandbox.workspace_id`, `FakeRuntime::workspace`).
#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: ContainerId,
    pub sandbox: RuntimeSandbox,
    pub image: String,
    pub running: bool,
    /// The spec's env, then what `prepare` set: every command gets it
    /// under its own.
    pub env: BTreeMap<String, String>,
}

/// Locks are taken in this order only: processes, containers, workspaces.
pub struct FakeRuntime {
    containers: Mutex<HashMap<SessionId, FakeContainer>>,
    workspaces: Mutex<FakeWorkspaces>,
    failures: Mutex<HashMap<RuntimeOp, Vec<RuntimeError>>>,
    stop_failures: Mutex<HashMap<SessionId, RuntimeError>>,
    vanish_on_exec: Mutex<Vec<SessionId>>,
    delays: Mutex<HashMap<RuntimeOp, Duration>>,
    missing_images: Mutex<Vec<String>>,
    calls: Mutex<HashMap<RuntimeOp, usize>>,
    exec_gate: Mutex<Option<Arc<Semaphore>>>,
    execs_running: AtomicUsize,
    programs: Mutex<Programs>,
    processes: Tables,
    tracer: Arc<dyn Tracer>,
    next_id: AtomicUsize,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new(Arc::new(NoopTracer))
    }
}

impl FakeRuntime {
    pub fn new(tracer: Arc<dyn Tracer>) -> Self {
        Self {
            containers: Mutex::default(),
            workspaces: Mutex::default(),
            failures: Mutex::default(),
            stop_failures: Mutex::default(),
            vanish_on_exec: Mutex::default(),
            delays: Mutex::default(),
            missing_images: Mutex::default(),
            calls: Mutex::default(),
            exec_gate: Mutex::default(),
            execs_running: AtomicUsize::new(0),
            programs: Mutex::new(Programs::Scripted(Arc::new(echo_argv))),
            processes: Tables::default(),
            tracer,
            next_id: AtomicUsize::new(0),
        }
    }

    /// The next call of `op` fails with `error` (queued, one per call).
    pub fn fail_next(&self, op: RuntimeOp, error: RuntimeError) {
        self.failures
            .lock()
            .unwrap()
            .entry(op)
            .or_default()
            .push(error);
    }

    /// Every stop of this session's sandbox fails with `error`.
    pub fn fail_stop_of(&self, session: SessionId, error: RuntimeError) {
        self.stop_failures.lock().unwrap().insert(session, error);
    }

    /// The session's container disappears when the next exec reaches it
    /// (after the decision said it was running).
    pub fn vanish_on_exec(&self, session: SessionId) {
        self.vanish_on_exec.lock().unwrap().push(session);
    }

    pub fn set_delay(&self, op: RuntimeOp, delay: Duration) {
        self.delays.lock().unwrap().insert(op, delay);
    }

    /// Creating from this image fails with `ImageNotFound`.
    pub fn remove_image(&self, image: &str) {
        self.missing_images.lock().unwrap().push(image.to_owned());
    }

    pub fn set_exec_handler(
        &self,
        handler: impl Fn(&ExecRequest) -> ExecOutcome + Send + Sync + 'static,
    ) {
        *self.programs.lock().unwrap() = Programs::Scripted(Arc::new(handler));
    }

    /// Execs run the programs of `fake_userland` on the sandbox's files
    /// instead of a handler (what the runtime contract runs).
    pub fn use_userland(&self) {
        *self.programs.lock().unwrap() = Programs::Userland;
    }

    /// Execs block until `release_execs`.
    pub fn hold_execs(&self) {
        *self.exec_gate.lock().unwrap() = Some(Arc::new(Semaphore::new(0)));
    }

    pub fn release_execs(&self) {
        if let Some(gate) = self.exec_gate.lock().unwrap().take() {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    /// Execs in flight right now.
    pub fn execs_running(&self) -> usize {
        self.execs_running.load(Ordering::SeqCst)
    }

    pub fn calls(&self, op: RuntimeOp) -> usize {
        self.calls.lock().unwrap().get(&op).copied().unwrap_or(0)
    }

    pub fn containers(&self) -> Vec<FakeContainer> {
        self.containers.lock().unwrap().values().cloned().collect()
    }

    pub fn container_of(&self, session: SessionId) -> Option<FakeContainer> {
        self.containers.lock().unwrap().get(&session).cloned()
    }

    /// Every workspace held, sandboxes' or not.
    pub fn workspaces(&self) -> Vec<FakeWorkspace> {
        self.workspaces.lock().unwrap().values().cloned().collect()
    }

    pub fn workspace(&self, id: WorkspaceId) -> Option<FakeWorkspace> {
        self.workspaces.lock().unwrap().get(&id).cloned()
    }

    /// A workspace no container mounts, as one left by a crash (an orphan
    /// unless a row knows it); an existing one is left as it is.
    pub fn add_workspace(&self, id: WorkspaceId, created_at: Timestamp) {
        self.workspaces
            .lock()
            .unwrap()
            .entry(id)
            .or_insert_with(|| FakeWorkspace::new(id, created_at));
    }

    /// The workspace's files are removed behind the service's back (an
    /// operator's `docker volume rm`). Docker refuses that under a
    /// container; the fake does not check (a sandbox on it then sees an
    /// empty workspace whose writes go nowhere).
    pub fn remove_workspace(&self, id: WorkspaceId) {
        self.workspaces.lock().unwrap().remove(&id);
    }

    /// The container exits behind the service's back.
    pub fn kill_container(&self, session: SessionId) {
        if let Some(c) = self.containers.lock().unwrap().get_mut(&session) {
            c.running = false;
            c.sandbox.running = false;
        }
        self.end_processes(session);
    }

    /// The container is removed behind the service's back.
    pub fn remove_container(&self, session: SessionId) {
        self.containers.lock().unwrap().remove(&session);
        self.end_processes(session);
    }

    /// A sandbox's processes end with its container.
    fn end_processes(&self, session: SessionId) {
        if let Some(mut table) = self.processes.lock().unwrap().remove(&session) {
            table.end_all();
        }
    }

    /// Runs `f` on the processes of a running sandbox.
    fn with_processes<T>(
        &self,
        sandbox: &SandboxRef,
        f: impl FnOnce(&mut procs::Table) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        self.running_container(sandbox, |_| Ok(()))?;
        let mut tables = self.processes.lock().unwrap();
        f(tables.entry(sandbox.session_id).or_default())
    }

    /// One process call that is not a start or a read: its span, scripted
    /// failures and delays, then `f` on the sandbox's processes.
    async fn process_call<T>(
        &self,
        sandbox: &SandboxRef,
        f: impl FnOnce(&mut procs::Table) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let mut span = self.span(RuntimeOp::ProcessCall, Some(sandbox));
        self.enter(RuntimeOp::ProcessCall, span.as_mut()).await?;
        let result = self.with_processes(sandbox, f);
        Self::finish(span.as_mut(), result)
    }

    /// What a program of `request` does when it runs now.
    fn run_program(&self, sandbox: &SandboxRef, request: &ExecRequest) -> ExecOutcome {
        let programs = self.programs.lock().unwrap().clone();
        match programs {
            Programs::Scripted(handler) => handler(request),
            // A sandbox removed while the exec was held leaves its programs
            // an empty workspace, as a process would keep running.
            Programs::Userland => {
                let containers = self.containers.lock().unwrap();
                let mut workspaces = self.workspaces.lock().unwrap();
                let mut gone = FakeFiles::new();
                let container = containers.get(&sandbox.session_id);
                let files = container
                    .and_then(|c| workspaces.get_mut(&c.sandbox.workspace_id))
                    .map_or(&mut gone, |w| &mut w.files);
                // The sandbox's env under the request's, as the agent does.
                let mut request = request.clone();
                for (k, v) in container.map(|c| c.env.clone()).unwrap_or_default() {
                    request.env.entry(k).or_insert(v);
                }
                fake_userland::run(&request, files)
            }
        }
    }

    /// A container labelled as ours that no session row knows (an orphan),
    /// with its workspace (made, empty, if it is not there: a container's
    /// mount makes its volume).
    pub fn add_container(&self, sandbox: RuntimeSandbox, image: &str) {
        let mut containers = self.containers.lock().unwrap();
        self.add_workspace(sandbox.workspace_id, sandbox.created_at);
        containers.insert(
            sandbox.session_id,
            FakeContainer {
                id: sandbox.container_id.clone(),
                running: sandbox.running,
                sandbox,
                image: image.to_owned(),
                env: BTreeMap::new(),
            },
        );
    }

    async fn enter(&self, op: RuntimeOp, span: &mut dyn Span) -> Result<(), RuntimeError> {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        let delay = self.delays.lock().unwrap().get(&op).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let injected = {
            let mut failures = self.failures.lock().unwrap();
            failures
                .get_mut(&op)
                .filter(|q| !q.is_empty())
                .map(|q| q.remove(0))
        };
        match injected {
            Some(err) => {
                mark_failed(span, &err);
                Err(err)
            }
            None => Ok(()),
        }
    }

    fn span(&self, op: RuntimeOp, sandbox: Option<&SandboxRef>) -> Box<dyn Span> {
        let mut span = tracer::start(self.tracer.as_ref(), op.span_name(), SpanKind::Client);
        if let Some(s) = sandbox {
            span.set_attribute(key::SESSION_ID, s.session_id.to_string().into());
            span.set_attribute(key::CHAT_ID, s.chat_id.to_string().into());
        }
        span
    }

    fn finish<T>(span: &mut dyn Span, result: Result<T, RuntimeError>) -> Result<T, RuntimeError> {
        if let Err(err) = &result {
            mark_failed(span, err);
        }
        span.end();
        result
    }

    fn running_container<T>(
        &self,
        sandbox: &SandboxRef,
        f: impl FnOnce(&mut FakeContainer) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let mut containers = self.containers.lock().unwrap();
        match containers.get_mut(&sandbox.session_id) {
            Some(c) if c.running => f(c),
            _ => Err(RuntimeError::ContainerGone),
        }
    }

    /// Runs `f` on the files of a running sandbox's workspace (none, if
    /// they were removed behind its back: an empty directory stays).
    fn running_files<T>(
        &self,
        sandbox: &SandboxRef,
        f: impl FnOnce(&mut FakeFiles) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let workspace = self.running_container(sandbox, |c| Ok(c.sandbox.workspace_id))?;
        let mut workspaces = self.workspaces.lock().unwrap();
        let mut gone = FakeFiles::new();
        f(workspaces
            .get_mut(&workspace)
            .map_or(&mut gone, |w| &mut w.files))
    }
}

impl FakeRuntime {
    /// The session's container, adopted if there, else made on its
    /// workspace (made first when fresh; nothing is made when that fails).
    fn create_container(&self, request: &CreateRequest) -> Result<ContainerId, RuntimeError> {
        let mut containers = self.containers.lock().unwrap();
        if let Some(adopted) = containers.get(&request.session_id) {
            return Ok(adopted.id.clone());
        }
        fake_workspace::mount(
            &mut self.workspaces.lock().unwrap(),
            request.workspace,
            request.created_at,
        )?;
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = ContainerId::new(format!("fake-{n:04}"));
        let container = FakeContainer {
            id: id.clone(),
            sandbox: RuntimeSandbox {
                container_id: id.clone(),
                session_id: request.session_id,
                chat_id: request.chat_id.clone(),
                workspace_id: request.workspace.id(),
                generation: request.generation,
                created_at: request.created_at,
                running: true,
            },
            image: request.spec.image.clone(),
            running: true,
            env: request.spec.env.clone(),
        };
        containers.insert(request.session_id, container);
        Ok(id)
    }
}

#[async_trait]
impl SandboxRuntime for FakeRuntime {
    async fn create(&self, request: &CreateRequest) -> Result<ContainerId, RuntimeError> {
        let sandbox = SandboxRef {
            session_id: request.session_id,
            chat_id: request.chat_id.clone(),
            container_id: None,
        };
        let mut span = self.span(RuntimeOp::Create, Some(&sandbox));
        self.enter(RuntimeOp::Create, span.as_mut()).await?;
        let result = if self
            .missing_images
            .lock()
            .unwrap()
            .contains(&request.spec.image)
        {
            Err(RuntimeError::ImageNotFound(request.spec.image.clone()))
        } else {
            self.create_container(request)
        };
        if let Ok(id) = &result {
            span.set_attribute(key::CONTAINER_ID, id.to_string().into());
        }
        Self::finish(span.as_mut(), result)
    }

    async fn stop(&self, sandbox: &SandboxRef) -> Result<StopOutcome, RuntimeError> {
        let mut span = self.span(RuntimeOp::Stop, Some(sandbox));
        self.enter(RuntimeOp::Stop, span.as_mut()).await?;
        let scripted = self
            .stop_failures
            .lock()
            .unwrap()
            .get(&sandbox.session_id)
            .cloned();
        let result = match scripted {
            Some(err) => Err(err),
            None => {
                let removed = self.containers.lock().unwrap().remove(&sandbox.session_id);
                self.end_processes(sandbox.session_id);
                Ok(match removed {
                    Some(_) => StopOutcome::Stopped,
                    None => StopOutcome::AlreadyGone,
                })
            }
        };
        Self::finish(span.as_mut(), result)
    }

    async fn delete_workspace(&self, workspace: &WorkspaceId) -> Result<(), RuntimeError> {
        let mut span = self.span(RuntimeOp::DeleteWorkspace, None);
        span.set_attribute(key::WORKSPACE_ID, workspace.to_string().into());
        self.enter(RuntimeOp::DeleteWorkspace, span.as_mut())
            .await?;
        // Any container on it, running or not, holds it (as a volume is).
        let containers = self.containers.lock().unwrap();
        let user = containers
            .values()
            .find(|c| c.sandbox.workspace_id == *workspace)
            .map(|c| c.sandbox.session_id);
        let result = fake_workspace::delete(&mut self.workspaces.lock().unwrap(), *workspace, user);
        drop(containers);
        Self::finish(span.as_mut(), result)
    }

    async fn list_workspaces(&self, measure: bool) -> Result<Vec<RuntimeWorkspace>, RuntimeError> {
        let mut span = self.span(RuntimeOp::ListWorkspaces, None);
        self.enter(RuntimeOp::ListWorkspaces, span.as_mut()).await?;
        let mut list: Vec<_> = self
            .workspaces
            .lock()
            .unwrap()
            .values()
            .map(|w| w.listed(measure))
            .collect();
        list.sort_by_key(|w| w.id);
        Self::finish(span.as_mut(), Ok(list))
    }

    async fn list_active_sessions(&self) -> Result<Vec<RuntimeSandbox>, RuntimeError> {
        let mut span = self.span(RuntimeOp::List, None);
        self.enter(RuntimeOp::List, span.as_mut()).await?;
        let list: Vec<_> = self
            .containers
            .lock()
            .unwrap()
            .values()
            .map(|c| c.sandbox.clone())
            .collect();
        span.set_attribute(key::ACTIVE_SESSIONS, list.len().into());
        Self::finish(span.as_mut(), Ok(list))
    }

    async fn inspect(&self, sandbox: &SandboxRef) -> Result<ContainerState, RuntimeError> {
        let mut span = self.span(RuntimeOp::Inspect, Some(sandbox));
        self.enter(RuntimeOp::Inspect, span.as_mut()).await?;
        let state = match self.containers.lock().unwrap().get(&sandbox.session_id) {
            Some(c) if c.running => ContainerState::Running,
            Some(_) => ContainerState::Exited,
            None => ContainerState::Missing,
        };
        Self::finish(span.as_mut(), Ok(state))
    }

    async fn exec(
        &self,
        sandbox: &SandboxRef,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, RuntimeError> {
        let mut span = self.span(RuntimeOp::Exec, Some(sandbox));
        self.enter(RuntimeOp::Exec, span.as_mut()).await?;
        let vanish = {
            let mut pending = self.vanish_on_exec.lock().unwrap();
            let hit = pending.iter().position(|s| *s == sandbox.session_id);
            hit.map(|i| pending.remove(i))
        };
        if let Some(session) = vanish {
            self.remove_container(session);
        }
        if let Err(err) = self.running_container(sandbox, |_| Ok(())) {
            return Self::finish(span.as_mut(), Err(err));
        }
        self.execs_running.fetch_add(1, Ordering::SeqCst);
        let gate = self.exec_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            let _permit = gate.acquire().await;
        }
        let outcome = self.run_program(sandbox, request);
        let outcome = fake_userland::as_a_runtime_would(request, outcome);
        if outcome.timed_out {
            tokio::time::sleep(request.timeout).await;
        }
        self.execs_running.fetch_sub(1, Ordering::SeqCst);
        Self::finish(span.as_mut(), Ok(outcome))
    }

    async fn put_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
        contents: &[u8],
    ) -> Result<(), RuntimeError> {
        let mut span = self.span(RuntimeOp::PutFile, Some(sandbox));
        self.enter(RuntimeOp::PutFile, span.as_mut()).await?;
        let result = self.running_files(sandbox, |files| {
            fake_workspace::write(files, path, contents)
        });
        Self::finish(span.as_mut(), result)
    }

    async fn get_file(
        &self,
        sandbox: &SandboxRef,
        path: &WorkspacePath,
    ) -> Result<Vec<u8>, RuntimeError> {
        let mut span = self.span(RuntimeOp::GetFile, Some(sandbox));
        self.enter(RuntimeOp::GetFile, span.as_mut()).await?;
        let result = self.running_files(sandbox, |files| fake_workspace::read(files, path));
        Self::finish(span.as_mut(), result)
    }

    async fn list_files(
        &self,
        sandbox: &SandboxRef,
        dir: Option<&WorkspacePath>,
    ) -> Result<Vec<FileEntry>, RuntimeError> {
        let mut span = self.span(RuntimeOp::ListFiles, Some(sandbox));
        self.enter(RuntimeOp::ListFiles, span.as_mut()).await?;
        let result = self.running_files(sandbox, |files| fake_workspace::list(files, dir));
        Self::finish(span.as_mut(), result)
    }

    async fn start_process(
        &self,
        sandbox: &SandboxRef,
        request: &ProcessRequest,
        limits: ProcessLimits,
    ) -> Result<Started, RuntimeError> {
        let mut span = self.span(RuntimeOp::StartProcess, Some(sandbox));
        self.enter(RuntimeOp::StartProcess, span.as_mut()).await?;
        let exec = ExecRequest {
            argv: request.argv.clone(),
            stdin: request.stdin.clone(),
            env: request.env.clone(),
            workdir: request.workdir.clone(),
            timeout: request.timeout,
            output_limit: usize::MAX,
        };
        let started = self.with_processes(sandbox, |table| {
            procs::start(table, request, limits, || self.run_program(sandbox, &exec))
        });
        let result = started.map(|(info, created, ending)| {
            if let Some(ending) = ending {
                let tables = Arc::clone(&self.processes);
                let (session, id) = (sandbox.session_id, request.id.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(ending.after).await;
                    procs::run_out(&tables, session, &id, ending);
                });
            }
            Started { info, created }
        });
        Self::finish(span.as_mut(), result)
    }

    async fn list_processes(&self, sandbox: &SandboxRef) -> Result<Vec<ProcessInfo>, RuntimeError> {
        self.process_call(sandbox, |table| Ok(procs::list(table)))
            .await
    }

    async fn process_status(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        self.process_call(sandbox, |table| procs::status(table, id))
            .await
    }

    async fn read_output(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        from: OutputCursor,
        options: ReadOptions,
    ) -> Result<OutputRead, RuntimeError> {
        // No span: a follow stream reads often, as the Docker adapter's do.
        *self
            .calls
            .lock()
            .unwrap()
            .entry(RuntimeOp::ReadOutput)
            .or_default() += 1;
        let deadline = tokio::time::Instant::now() + options.wait;
        loop {
            let changes = self.with_processes(sandbox, |t| Ok(procs::changes(t)))?;
            let notified = changes.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let may_wait = tokio::time::Instant::now() < deadline;
            let read = self.with_processes(sandbox, |table| {
                procs::read(table, id, from, options.max_bytes, may_wait)
            })?;
            if let Some(read) = read {
                return Ok(read);
            }
            // Woken by any change, or the wait runs out (then read once more).
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    async fn write_stdin(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        write: &StdinWrite,
    ) -> Result<StdinState, RuntimeError> {
        self.process_call(sandbox, |table| procs::write_stdin(table, id, write))
            .await
    }

    async fn signal_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        signal: Signal,
    ) -> Result<(), RuntimeError> {
        self.process_call(sandbox, |table| procs::signal(table, id, signal))
            .await
    }

    async fn kill_process(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
    ) -> Result<ProcessInfo, RuntimeError> {
        self.process_call(sandbox, |table| procs::kill(table, id))
            .await
    }

    async fn resize_pty(
        &self,
        sandbox: &SandboxRef,
        id: &ProcessId,
        _size: PtySize,
    ) -> Result<(), RuntimeError> {
        self.process_call(sandbox, |table| procs::resize(table, id))
            .await
    }

    async fn prepare(
        &self,
        sandbox: &SandboxRef,
        env: &BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let mut span = self.span(RuntimeOp::Prepare, Some(sandbox));
        self.enter(RuntimeOp::Prepare, span.as_mut()).await?;
        let result = self.running_container(sandbox, |c| {
            c.env.extend(env.clone());
            Ok(())
        });
        Self::finish(span.as_mut(), result)
    }

    async fn fingerprint(&self, spec: &SandboxSpec) -> Result<String, RuntimeError> {
        let mut span = self.span(RuntimeOp::Fingerprint, None);
        self.enter(RuntimeOp::Fingerprint, span.as_mut()).await?;
        let known = !self.missing_images.lock().unwrap().contains(&spec.image);
        let result = if known {
            Ok(format!("fake:{}", spec.image))
        } else {
            Err(RuntimeError::ImageNotFound(spec.image.clone()))
        };
        Self::finish(span.as_mut(), result)
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        let mut span = self.span(RuntimeOp::Ping, None);
        self.enter(RuntimeOp::Ping, span.as_mut()).await?;
        Self::finish(span.as_mut(), Ok(()))
    }
}
