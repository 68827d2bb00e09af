//! Every use case wired to one set of ports and one `SessionGuards`: the
//! single place that knows how they fit together (the binary and the tests
//! build them through it).

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Policy, Retention, SandboxSpec};

use super::warm_pool::PoolSettings;
use super::{
    CleanupExpiredSandboxes, CleanupSettings, CreateSandbox, CreateSettings, ExecInSandbox,
    FollowProcessOutput, GetFile, HibernateSandbox, KillProcess, ListFiles, Ports, ProcessIo,
    ProcessSettings, PutFile, QuerySandboxes, Reconcile, ReconcileSettings, SessionGuards,
    SignalProcess, StartProcess, StopSandbox, WarmPool,
};

/// What the use cases are tuned by.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    /// How long hibernated chats keep their files, and how many at most.
    pub retention: Retention,
    /// The sandbox a chat gets unless it asks for something else.
    pub defaults: SandboxSpec,
    /// How long another process's `creating` row is waited for.
    pub foreign_create_wait: Duration,
    /// Sandboxes cleanup stops at once.
    pub cleanup_concurrency: usize,
    pub reconcile: ReconcileSettings,
    pub processes: ProcessSettings,
    pub pool: PoolSettings,
}

#[derive(Clone)]
pub struct UseCases {
    pub create: CreateSandbox,
    pub exec: ExecInSandbox,
    pub put_file: PutFile,
    pub get_file: GetFile,
    pub list_files: ListFiles,
    pub start_process: StartProcess,
    pub signal_process: SignalProcess,
    pub kill_process: KillProcess,
    pub process_io: ProcessIo,
    pub follow_output: FollowProcessOutput,
    pub stop: StopSandbox,
    pub hibernate: HibernateSandbox,
    pub cleanup: CleanupExpiredSandboxes,
    pub reconcile: Reconcile,
    pub query: QuerySandboxes,
    pub pool: WarmPool,
    /// Shared by all of the above: the per-chat locks and the leases.
    pub guards: Arc<SessionGuards>,
}

impl UseCases {
    pub fn new(ports: Ports, settings: Settings) -> Self {
        let guards = Arc::new(SessionGuards::new());
        let pool = WarmPool::new(
            ports.clone(),
            settings.pool,
            settings.defaults.clone(),
            settings.foreign_create_wait,
        );
        let create = CreateSandbox::new(
            ports.clone(),
            Arc::clone(&guards),
            CreateSettings {
                policy: settings.policy,
                defaults: settings.defaults,
                foreign_create_wait: settings.foreign_create_wait,
                retention: settings.retention,
            },
            pool.clone(),
        );
        Self {
            exec: ExecInSandbox::new(create.clone()),
            put_file: PutFile::new(create.clone()),
            get_file: GetFile::new(create.clone()),
            list_files: ListFiles::new(create.clone()),
            start_process: StartProcess::new(create.clone(), settings.processes),
            signal_process: SignalProcess::new(create.clone()),
            kill_process: KillProcess::new(create.clone()),
            process_io: ProcessIo::new(create.clone()),
            follow_output: FollowProcessOutput::new(create.clone(), settings.processes),
            stop: StopSandbox::new(ports.clone(), Arc::clone(&guards)),
            hibernate: HibernateSandbox::new(
                ports.clone(),
                Arc::clone(&guards),
                settings.retention,
            ),
            cleanup: CleanupExpiredSandboxes::new(
                ports.clone(),
                Arc::clone(&guards),
                CleanupSettings {
                    policy: settings.policy,
                    retention: settings.retention,
                    concurrency: settings.cleanup_concurrency,
                    reconcile: settings.reconcile.clone(),
                },
            ),
            reconcile: Reconcile::new(
                ports.clone(),
                Arc::clone(&guards),
                settings.reconcile,
                (settings.policy, settings.retention),
            ),
            query: QuerySandboxes::new(Arc::clone(&ports.store)),
            create,
            pool,
            guards,
        }
    }
}
