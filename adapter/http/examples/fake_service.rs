//! The real router over the in-memory fakes of `sandboxer-core` (memory
//! store, fake runtime, manual clock, no tracing): an API to throw thousands
//! of generated requests at without a container or a database
//! (`scripts/openapi-check.sh`). Listens on 127.0.0.1, on the port given as
//! the first argument (0, the default, picks a free one), and prints
//! `listening on <port>` once it accepts connections.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{Policy, Retention, SandboxSpec};
use sandboxer_core::testing::{FakeRuntime, ManualClock, MemoryStore};
use sandboxer_core::trace::NoopTracer;
use sandboxer_core::usecase::{Ports, ReconcileSettings, Settings, UseCases};
use sandboxer_http::{ApiConfig, ApiState, MetricsRender, SandboxCounts, router};

/// `/metrics` answers as in the binary, without a Prometheus registry here.
struct NoMetrics;

impl MetricsRender for NoMetrics {
    fn render(&self, counts: SandboxCounts) -> String {
        format!(
            "# TYPE sandboxer_active_sandboxes gauge\nsandboxer_active_sandboxes {}\n\
             # TYPE sandboxer_sandboxes_hibernated gauge\nsandboxer_sandboxes_hibernated {}\n",
            counts.active, counts.hibernated
        )
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(raw) => raw
            .parse()
            .map_err(|e| std::io::Error::other(format!("port {raw:?}: {e}")))?,
        None => 0,
    };
    let tracer = Arc::new(NoopTracer);
    let runtime = Arc::new(FakeRuntime::new(tracer.clone()));
    let store = Arc::new(MemoryStore::new());
    let ports = Ports {
        runtime: runtime.clone(),
        store: store.clone(),
        clock: Arc::new(ManualClock::at_epoch()),
        tracer: tracer.clone(),
    };
    let settings = Settings {
        policy: Policy::default(),
        retention: Retention::default(),
        defaults: SandboxSpec::with_defaults("sandboxer-base:fake"),
        foreign_create_wait: Duration::from_secs(1),
        cleanup_concurrency: 2,
        reconcile: ReconcileSettings {
            orphan_grace: Duration::from_secs(60),
            creating_timeout: Duration::from_secs(60),
        },
        processes: sandboxer_core::usecase::ProcessSettings::default(),
        // No warm pool: its refills would run in every test's background.
        pool: sandboxer_core::usecase::PoolSettings {
            size: 0,
            ..Default::default()
        },
    };
    let state = Arc::new(ApiState {
        services: UseCases::new(ports, settings),
        config: ApiConfig::default(),
        tracer,
        runtime,
        store,
        metrics: Some(Arc::new(NoMetrics)),
        fleet: None,
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?.port())?;
    stdout.flush()?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
