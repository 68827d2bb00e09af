//! A world of fakes: every use case wired to the in-memory runtime and
//! store, a manual clock and a recording tracer.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{ChatId, Policy, ResourceLimits, SandboxSpec, Session};
use sandboxer_core::testing::{FakeRuntime, ManualClock, MemoryStore, RecordingTracer};
use sandboxer_core::usecase::{
    CleanupExpiredSandboxes, CleanupSettings, CreateSandbox, CreateSandboxInput, CreateSettings,
    ExecInSandbox, GetFile, Ports, PutFile, QuerySandboxes, Reconcile, ReconcileSettings,
    SessionGuards, SpecChoice, StopSandbox,
};

pub const TTL: Duration = Duration::from_secs(30 * 60);
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub struct World {
    pub runtime: Arc<FakeRuntime>,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub tracer: RecordingTracer,
    pub guards: Arc<SessionGuards>,
    pub create: CreateSandbox,
    pub exec: ExecInSandbox,
    pub put_file: PutFile,
    pub get_file: GetFile,
    pub stop: StopSandbox,
    pub cleanup: CleanupExpiredSandboxes,
    pub reconcile: Reconcile,
    pub query: QuerySandboxes,
}

pub fn default_spec() -> SandboxSpec {
    SandboxSpec {
        image: "sandboxer-base:latest".into(),
        runtime: "runc".into(),
        user: "1000:1000".into(),
        env: BTreeMap::new(),
        limits: ResourceLimits::default(),
        network: "none".into(),
        keepalive: vec!["sleep".into(), "infinity".into()],
    }
}

pub fn policy() -> Policy {
    Policy::new(TTL, MAX_LIFETIME, true).unwrap()
}

impl World {
    pub fn new() -> Self {
        Self::with_spec(default_spec())
    }

    pub fn with_spec(defaults: SandboxSpec) -> Self {
        let tracer = RecordingTracer::new();
        let runtime = Arc::new(FakeRuntime::new(Arc::new(tracer.clone())));
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at_epoch());
        let guards = Arc::new(SessionGuards::new());
        let ports = Ports {
            runtime: runtime.clone(),
            store: store.clone(),
            clock: clock.clone(),
            tracer: Arc::new(tracer.clone()),
        };
        let create = CreateSandbox::new(
            ports.clone(),
            Arc::clone(&guards),
            CreateSettings {
                policy: policy(),
                defaults,
                foreign_create_wait: Duration::from_millis(300),
            },
        );
        let reconcile_settings = ReconcileSettings {
            orphan_grace: Duration::from_secs(60),
            creating_timeout: Duration::from_secs(120),
        };
        Self {
            exec: ExecInSandbox::new(create.clone(), runtime.clone(), ports.tracer.clone()),
            put_file: PutFile::new(create.clone(), runtime.clone(), ports.tracer.clone()),
            get_file: GetFile::new(create.clone(), runtime.clone(), ports.tracer.clone()),
            stop: StopSandbox::new(ports.clone(), Arc::clone(&guards)),
            cleanup: CleanupExpiredSandboxes::new(
                ports.clone(),
                Arc::clone(&guards),
                CleanupSettings {
                    policy: policy(),
                    concurrency: 4,
                    reconcile: reconcile_settings.clone(),
                },
            ),
            reconcile: Reconcile::new(ports.clone(), Arc::clone(&guards), reconcile_settings),
            query: QuerySandboxes::new(store.clone()),
            create,
            runtime,
            store,
            clock,
            tracer,
            guards,
        }
    }

    /// PUT with no body: the defaults.
    pub fn declared(chat: &ChatId) -> CreateSandboxInput {
        CreateSandboxInput {
            chat_id: chat.clone(),
            spec: SpecChoice::Declared(Default::default()),
            ttl: None,
        }
    }

    pub fn clock_now(&self) -> sandboxer_core::domain::Timestamp {
        use sandboxer_core::port::Clock;
        self.clock.now()
    }

    pub fn active(&self) -> Vec<Session> {
        self.store
            .all()
            .into_iter()
            .filter(|s| s.is_active())
            .collect()
    }
}

pub fn chat(raw: &str) -> ChatId {
    ChatId::parse(raw).unwrap()
}
