//! A world of fakes: every use case wired to the in-memory runtime and
//! store, a manual clock and a recording tracer.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{ChatId, Policy, Retention, SandboxSpec, Session, Timestamp};
use sandboxer_core::port::Clock;
use sandboxer_core::testing::{FakeRuntime, ManualClock, MemoryStore, RecordingTracer};
use sandboxer_core::usecase::{
    CreateSandboxInput, Ports, ReconcileSettings, Settings, SpecChoice, UseCases,
};

pub const TTL: Duration = Duration::from_secs(30 * 60);
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

pub struct World {
    pub runtime: Arc<FakeRuntime>,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub tracer: RecordingTracer,
    pub use_cases: UseCases,
}

/// `w.create`, `w.exec`, ... reach the use cases directly.
impl Deref for World {
    type Target = UseCases;

    fn deref(&self) -> &UseCases {
        &self.use_cases
    }
}

pub fn default_spec() -> SandboxSpec {
    SandboxSpec::with_defaults("sandboxer-base:latest")
}

pub fn policy() -> Policy {
    Policy::new(TTL, MAX_LIFETIME).unwrap()
}

#[allow(dead_code)] // Each test binary uses some of these.
impl World {
    pub fn new() -> Self {
        Self::with_retention(Retention::default())
    }

    /// Retention off: an idle sandbox is deleted, workspace and all.
    pub fn deleting() -> Self {
        Self::with_retention(Retention {
            period: Duration::ZERO,
            ..Retention::default()
        })
    }

    pub fn with_retention(retention: Retention) -> Self {
        Self::build(retention, 0)
    }

    /// A warm pool of `size` (refilled only when a test calls `refill`).
    pub fn with_pool(size: usize) -> Self {
        Self::build(Retention::default(), size)
    }

    fn build(retention: Retention, pool: usize) -> Self {
        let tracer = RecordingTracer::new();
        let runtime = Arc::new(FakeRuntime::new(Arc::new(tracer.clone())));
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::at_epoch());
        Self::on(runtime, store, clock, tracer, (retention, pool))
    }

    /// The same runtime, store and clock under a service with another
    /// pool size (a restart with a new setting).
    pub fn with_pool_size(&self, pool: usize) -> Self {
        Self::on(
            Arc::clone(&self.runtime),
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            self.tracer.clone(),
            (Retention::default(), pool),
        )
    }

    fn on(
        runtime: Arc<FakeRuntime>,
        store: Arc<MemoryStore>,
        clock: Arc<ManualClock>,
        tracer: RecordingTracer,
        (retention, pool): (Retention, usize),
    ) -> Self {
        let ports = Ports {
            runtime: runtime.clone(),
            store: store.clone(),
            clock: clock.clone(),
            tracer: Arc::new(tracer.clone()),
        };
        let settings = Settings {
            policy: policy(),
            retention,
            defaults: default_spec(),
            foreign_create_wait: Duration::from_millis(300),
            cleanup_concurrency: 4,
            reconcile: ReconcileSettings {
                orphan_grace: Duration::from_secs(60),
                creating_timeout: Duration::from_secs(120),
            },
            processes: sandboxer_core::usecase::ProcessSettings::default(),
            pool: sandboxer_core::usecase::PoolSettings {
                size: pool,
                ..Default::default()
            },
        };
        Self {
            use_cases: UseCases::new(ports, settings),
            runtime,
            store,
            clock,
            tracer,
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

    pub fn clock_now(&self) -> Timestamp {
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
