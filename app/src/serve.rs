//! `sandboxer serve`: the composition root. Builds the adapters, hands them
//! to the use cases, reconciles with Docker, then serves the API and runs
//! the background cleanup until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use sandboxer_core::port::{
    Clock, Coordination, ProcessLimits, SandboxRuntime, SessionStore, SystemClock, Tracer,
};
use sandboxer_core::usecase::{
    CleanupExpiredSandboxes, PoolSettings, Ports, ProcessSettings, ReconcileMode,
    ReconcileSettings, Settings, UseCases,
};
use sandboxer_docker::{AgentBinary, DockerConfig, DockerNodes, DockerSandboxRuntime};
use sandboxer_http::{ApiConfig, ApiState, MetricsRender, SandboxCounts};
use sandboxer_mcp::{
    CancellationToken, McpHttpConfig, McpSettings, SandboxerMcp, allowed_hosts_for,
};
use sandboxer_telemetry::{
    LogFormat, MetricsHandle, MetricsTracer, TelemetryConfig, init_logging, init_tracer,
    install_prometheus, set_active_sandboxes, set_hibernated_sandboxes, set_workspace_bytes,
};

use crate::config::{self, ServeConfig};
use crate::image;
use crate::replicas::{self, Store, is_postgres};

/// Ended sessions are kept this long for inspection, then purged.
/// Between two measurements of the bytes the workspaces hold.
const WORKSPACE_MEASURE_INTERVAL: Duration = Duration::from_secs(600);
/// Between two refills of the warm pool when no claim wakes it.
const POOL_REFILL_INTERVAL: Duration = Duration::from_secs(5);
const ENDED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let format = match config.log_format {
        config::LogFormat::Text => LogFormat::Text,
        config::LogFormat::Json => LogFormat::Json,
    };
    // The OTLP exporter logs every failed export; one warning line is enough.
    init_logging(
        format,
        "info,opentelemetry_sdk=warn,opentelemetry_otlp=warn",
    )?;

    let mut telemetry = TelemetryConfig::from_env()?;
    if let Some(endpoint) = &config.otlp_endpoint {
        telemetry.endpoint = Some(endpoint.clone());
        telemetry.enabled = true;
    }
    let tracing_pipeline = init_tracer(&telemetry)?;
    let metrics = install_prometheus()?;
    let tracer: Arc<dyn Tracer> = Arc::new(MetricsTracer::new(tracing_pipeline.tracer()));
    tracing::info!(
        tracing = tracing_pipeline.is_enabled(),
        endpoint = %if tracing_pipeline.is_enabled() { telemetry.resolved_endpoint() } else { String::new() },
        "telemetry ready"
    );

    let Adapters {
        store,
        coordination,
        runtime,
        fleet,
    } = adapters(&config, &tracer).await?;
    let ports = Ports {
        runtime: runtime.clone(),
        store: store.clone(),
        clock: Arc::new(SystemClock) as Arc<dyn Clock>,
        tracer: Arc::clone(&tracer),
    };
    let app = compose(&config, ports)?;
    // Alone on the store: whatever is `creating` or `warming` was cut by a
    // dead process. Beside live replicas it may be theirs, in flight.
    let alone = replicas::start_alone(coordination.as_ref()).await?;
    if alone {
        match app.reconcile.execute(ReconcileMode::Startup).await {
            Ok(report) => tracing::info!(
                adopted = report.adopted,
                undone = report.undone,
                orphans_removed = report.orphans_removed,
                containers_gone = report.containers_gone,
                failed = report.failed,
                "startup reconciliation done"
            ),
            // A node that is away blocks no start: the periodic
            // reconciliation runs once every node answers.
            Err(err) if fleet.is_some() => tracing::warn!(
                error = %err,
                "startup reconciliation waits for every node to answer"
            ),
            Err(err) => return Err(err).context("reconciling sessions with Docker at startup"),
        }
    }

    let state = Arc::new(ApiState {
        services: app.clone(),
        config: ApiConfig {
            token: config.token.clone(),
            max_file_bytes: config.max_file_bytes,
            exec_output_limit: config.exec_output_bytes,
            ..ApiConfig::default()
        },
        tracer: Arc::clone(&tracer),
        runtime: runtime.clone(),
        store: store.clone(),
        metrics: Some(Arc::new(Prometheus(metrics))),
        fleet: fleet
            .clone()
            .map(|f| Arc::new(crate::nodes::FleetView(f)) as Arc<dyn sandboxer_http::Fleet>),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    // Scripts and tests read this line to find a port-0 service.
    println!("sandboxer listening on http://{address}");
    // A PostgreSQL URL may hold a password: only its kind is logged here.
    let database = if is_postgres(&config.database) {
        "postgresql"
    } else {
        config.database.as_str()
    };
    tracing::info!(%address, %database, image = %config.image, "serving");

    let (mcp, mcp_sessions) = mcp_router(&config, &app, &tracer);
    // Refills run in the background, never in a request's path.
    let pool = app.pool.clone();
    let pool_coordination = Arc::clone(&coordination);
    let pool_loop = tokio::spawn(async move {
        pool.run(POOL_REFILL_INTERVAL, pool_coordination, alone)
            .await;
    });
    let heartbeats = tokio::spawn(replicas::heartbeat_loop(Arc::clone(&coordination)));
    let (stop, stopped) = watch::channel(false);
    let measure = tokio::spawn(measure_loop(runtime.clone()));
    let node_metrics = fleet.map(|f| tokio::spawn(crate::nodes::metrics_loop(f)));
    let cleanup = tokio::spawn(cleanup_loop(
        app.cleanup.clone(),
        Arc::clone(&store),
        Arc::clone(&coordination),
        config.cleanup_interval,
        stopped,
    ));
    axum::serve(listener, sandboxer_http::router_with(state, mcp))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // MCP sessions hold SSE streams open; ending them lets the
            // graceful shutdown finish.
            mcp_sessions.cancel();
        })
        .await
        .context("serving HTTP")?;

    tracing::info!("shutting down: in-flight requests finished; sandboxes are kept");
    let _ = stop.send(true);
    // Warm sandboxes are kept: the next start adopts the healthy ones.
    pool_loop.abort();
    measure.abort();
    if let Some(task) = node_metrics {
        task.abort();
    }
    let _ = cleanup.await;
    heartbeats.abort();
    // Another replica takes the lead at its next run, not after a timeout.
    coordination.resign().await;
    if let Err(err) = tracing_pipeline.shutdown().await {
        tracing::warn!(error = %err, "flushing traces at shutdown failed");
    }
    store.close().await;
    Ok(())
}

/// `/mcp`: the MCP tools over the same use cases, with the `Host`
/// allow-list that fits the listen address; the token that cancels its
/// sessions at shutdown.
fn mcp_router(
    config: &ServeConfig,
    app: &UseCases,
    tracer: &Arc<dyn Tracer>,
) -> (axum::Router, CancellationToken) {
    let cancel = CancellationToken::new();
    let server = SandboxerMcp::new(
        app.clone(),
        Arc::clone(tracer),
        McpSettings {
            exec_output_limit: config.exec_output_bytes,
            ..McpSettings::default()
        },
    );
    let router = sandboxer_mcp::router(
        server,
        McpHttpConfig {
            allowed_hosts: allowed_hosts_for(config.listen),
            // A file in base64 is 4/3 of its size, plus the JSON around it.
            max_request_bytes: config.max_file_bytes / 3 * 4 + 64 * 1024,
            cancel: cancel.clone(),
        },
    );
    (router, cancel)
}

/// The store, the replicas' coordination and the runtime behind the ports.
struct Adapters {
    store: Arc<dyn SessionStore>,
    coordination: Arc<dyn Coordination>,
    runtime: Arc<dyn SandboxRuntime>,
    /// The engines, when there are several.
    fleet: Option<Arc<DockerNodes>>,
}

/// The one place that names the concrete store and runtime: the SQLite
/// file and the Docker Engine, labelled with the deployment's instance id
/// (configured, else the one the store keeps), with the default image there.
async fn adapters(config: &ServeConfig, tracer: &Arc<dyn Tracer>) -> anyhow::Result<Adapters> {
    let Store {
        store,
        coordination,
    } = replicas::open_store(&config.database, tracer).await?;
    let instance = match &config.instance {
        Some(configured) => configured.clone(),
        None => store
            .instance_id()
            .await
            .context("reading the deployment's instance id from the store")?,
    };
    let docker = DockerConfig {
        call_timeout: config.docker_timeout,
        instance: Some(instance.clone()),
        max_download_bytes: config.max_file_bytes as u64,
        agent: Some(AgentBinary::new(
            sandboxer_agent_embed::binary(),
            sandboxer_agent_embed::digest(),
        )),
        ..DockerConfig::default()
    };
    let (runtime, fleet): (Arc<dyn SandboxRuntime>, _) = if config.nodes.is_empty() {
        (Arc::new(one_engine(config, docker, tracer).await?), None)
    } else {
        let fleet = crate::nodes::connect(config, &docker, tracer).await?;
        (fleet.clone(), Some(fleet))
    };
    tracing::info!(%instance, "adapters ready");
    Ok(Adapters {
        store,
        coordination,
        runtime,
        fleet,
    })
}

/// The one engine of DOCKER_HOST, with the default image (built when
/// missing) and the agent's volume ready.
async fn one_engine(
    config: &ServeConfig,
    docker: DockerConfig,
    tracer: &Arc<dyn Tracer>,
) -> anyhow::Result<DockerSandboxRuntime> {
    let runtime = DockerSandboxRuntime::connect(docker, Arc::clone(tracer))
        .await
        .context("connecting to the Docker Engine (is it running? DOCKER_HOST?)")?;
    image::ensure(&runtime, config).await?;
    runtime
        .prepare_agent(&config.image)
        .await
        .with_context(|| {
            format!(
                "putting the sandbox agent built into this binary into its Docker volume \
             (with image {}); rebuilding the service (`cargo build --release -p sandboxer`) \
             rebuilds the agent with it",
                config.image
            )
        })?;
    Ok(runtime)
}

/// The use cases, wired to the ports.
fn compose(config: &ServeConfig, ports: Ports) -> anyhow::Result<UseCases> {
    let defaults = config.sandbox_defaults();
    defaults.validate().context("the default sandbox spec")?;
    Ok(UseCases::new(
        ports,
        Settings {
            policy: config.policy()?,
            retention: config.retention(),
            defaults,
            // A create is bounded by a few Docker calls; past this it is dead.
            foreign_create_wait: config.docker_timeout * 4,
            cleanup_concurrency: config.cleanup_concurrency,
            reconcile: ReconcileSettings {
                orphan_grace: config.orphan_grace,
                creating_timeout: config.docker_timeout * 4,
            },
            pool: PoolSettings {
                size: config.warm_pool_size,
                max_age: config.warm_pool_max_age,
                ..PoolSettings::default()
            },
            processes: ProcessSettings {
                limits: ProcessLimits {
                    max_running: config.max_processes,
                    buffer_bytes: config.process_buffer_bytes,
                },
                ..ProcessSettings::default()
            },
        },
    ))
}

/// Runs cleanup every `interval` (each run its own trace) and purges ended
/// sessions past their retention, while this replica leads: when the
/// leader dies, another takes over at its next tick.
async fn cleanup_loop(
    cleanup: CleanupExpiredSandboxes,
    store: Arc<dyn SessionStore>,
    coordination: Arc<dyn Coordination>,
    interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        if !replicas::leads(coordination.as_ref(), &mut leading).await {
            continue;
        }
        match cleanup.execute().await {
            Ok(r)
                if r.expired
                    + r.workspaces_deleted
                    + r.orphans_removed
                    + r.containers_gone
                    + r.failed
                    > 0 =>
            {
                tracing::info!(
                    expired = r.expired,
                    hibernated = r.hibernated,
                    removed = r.removed,
                    workspaces_deleted = r.workspaces_deleted,
                    failed = r.failed,
                    skipped = r.skipped,
                    orphans_removed = r.orphans_removed,
                    containers_gone = r.containers_gone,
                    "cleanup run"
                );
            }
            Ok(_) => tracing::debug!("cleanup run: nothing to do"),
            Err(err) => tracing::warn!(error = %err, "cleanup run failed; next run retries"),
        }
        let horizon = SystemClock.now() - ENDED_RETENTION;
        if let Err(err) = store.purge_ended(horizon).await {
            tracing::warn!(error = %err, "purging old ended sessions failed");
        }
    }
}

/// Measures the bytes the workspaces hold now and then, in a task of its
/// own: the engine walks every volume (older engines every container too)
/// to tell sizes, which must never delay cleanup.
async fn measure_loop(runtime: Arc<dyn SandboxRuntime>) {
    let first = tokio::time::Instant::now() + WORKSPACE_MEASURE_INTERVAL / 10;
    let mut ticks = tokio::time::interval_at(first, WORKSPACE_MEASURE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match runtime.list_workspaces(true).await {
            Ok(kept) => set_workspace_bytes(kept.iter().filter_map(|w| w.bytes).sum()),
            Err(err) => tracing::debug!(error = %err, "measuring the workspaces failed"),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}

/// `/metrics`: the Prometheus registry, with the active-sandbox gauge fresh.
struct Prometheus(MetricsHandle);

impl MetricsRender for Prometheus {
    fn render(&self, counts: SandboxCounts) -> String {
        set_active_sandboxes(usize::try_from(counts.active).unwrap_or(usize::MAX));
        set_hibernated_sandboxes(usize::try_from(counts.hibernated).unwrap_or(usize::MAX));
        self.0.render()
    }
}
