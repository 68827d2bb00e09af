//! The use cases. Each receives its ports (runtime, store, clock, tracer)
//! and the shared `SessionGuards` through its constructor.

mod cleanup_expired;
mod create_outcome;
mod create_sandbox;
mod errors;
mod exec_in_sandbox;
mod files;
pub mod guards;
mod hibernate_sandbox;
mod in_sandbox;
mod processes;
mod query_sandboxes;
mod reconcile;
mod stop_sandbox;
mod warm_pool;
mod wiring;
mod workspaces;

pub use cleanup_expired::{
    CleanupExpiredSandboxes, CleanupReport, CleanupSettings, SessionCleanup,
};
pub use create_sandbox::{
    CreateOutcome, CreateResult, CreateSandbox, CreateSandboxInput, CreateSettings, SpecChoice,
    USE_COALESCE,
};
pub use errors::{
    CleanupError, CreateSandboxError, ExecError, FileError, HibernateError, QueryError,
    StopSandboxError,
};
pub use exec_in_sandbox::{ExecInSandbox, ExecResult};
pub use files::{GetFile, ListFiles, PutFile};
pub use guards::SessionGuards;
pub use hibernate_sandbox::{HibernateResult, HibernateSandbox};
pub use processes::{
    DEFAULT_MAX_PROCESSES, DEFAULT_PROCESS_BUFFER_BYTES, FollowEvent, FollowMode,
    FollowProcessOutput, KillProcess, OutputFollower, OutputStream, ProcessIo, ProcessSettings,
    SignalProcess, StartProcess,
};
pub use query_sandboxes::QuerySandboxes;
pub use reconcile::{Reconcile, ReconcileMode, ReconcileReport, ReconcileSettings};
pub use stop_sandbox::{StopResult, StopSandbox};
pub use warm_pool::{
    DEFAULT_POOL_MAX_AGE, DEFAULT_POOL_REFILL_CONCURRENCY, DEFAULT_POOL_SIZE, PoolSettings,
    PoolUse, RefillReport, WarmPool,
};
pub use wiring::{Settings, UseCases};

use std::sync::Arc;

use crate::port::tracer::Span;
use crate::port::{Clock, SandboxRuntime, SessionStore, Tracer};
use crate::trace::attr::{key, result};

/// The ports every use case needs, bundled to keep constructors short.
#[derive(Clone)]
pub struct Ports {
    pub runtime: Arc<dyn SandboxRuntime>,
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    pub tracer: Arc<dyn Tracer>,
}

/// A run's counts on its span, and `sandbox.result = ok`.
fn record_counts<const N: usize>(span: &mut dyn Span, counts: [(&'static str, u64); N]) {
    for (name, count) in counts {
        span.set_attribute(name, count.into());
    }
    span.set_attribute(key::RESULT, result::OK.into());
}
