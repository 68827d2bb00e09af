//! The store a deployment runs on, and how its replicas get along: SQLite
//! is one process (`Solo`); on PostgreSQL every replica heartbeats, one at
//! a time leads the background work (cleanup with reconciliation, warm pool
//! refills), and a replica that starts beside live ones leaves their
//! in-flight creates alone.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sandboxer_core::port::{Coordination, SessionStore, Solo, Tracer};
use sandboxer_postgres::{PostgresSessionStore, PostgresStoreOptions};
use sandboxer_sqlite::{SqliteSessionStore, SqliteStoreOptions};

/// Between two heartbeats of a replica.
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A replica silent this long counts as gone.
const HEARTBEAT_GRACE: Duration = Duration::from_secs(15);

/// The session store and the coordination of replicas on it.
pub(crate) struct Store {
    pub store: Arc<dyn SessionStore>,
    pub coordination: Arc<dyn Coordination>,
}

/// PostgreSQL for a `postgres://` or `postgresql://` URL (replicas share
/// it), else the SQLite file (a path or a `sqlite:` URL).
pub(crate) async fn open_store(database: &str, tracer: &Arc<dyn Tracer>) -> anyhow::Result<Store> {
    if !is_postgres(database) {
        let store =
            SqliteSessionStore::open(database, SqliteStoreOptions::default(), Arc::clone(tracer))
                .await
                .with_context(|| format!("opening the session store {database}"))?;
        return Ok(Store {
            store: Arc::new(store),
            coordination: Arc::new(Solo),
        });
    }
    let store = PostgresSessionStore::open(
        database,
        PostgresStoreOptions::default(),
        Arc::clone(tracer),
    )
    .await
    .context("opening the PostgreSQL session store")?;
    let replica = uuid::Uuid::now_v7().to_string();
    let coordination = store.coordination(&replica, &host_name(), HEARTBEAT_GRACE);
    tracing::info!(database = %store.target(), %replica, "session store: PostgreSQL");
    Ok(Store {
        store: Arc::new(store),
        coordination: Arc::new(coordination),
    })
}

pub(crate) fn is_postgres(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Says this replica is alive, then whether it started alone and leads:
/// only then is everything `creating` or `warming` in the store abandoned
/// (by a process that died), and settled at once.
pub(crate) async fn start_alone(coordination: &dyn Coordination) -> anyhow::Result<bool> {
    coordination
        .heartbeat()
        .await
        .context("announcing this replica in the store")?;
    let others = coordination
        .others_alive()
        .await
        .context("counting the other replicas")?;
    let leads = coordination.lead().await.context("asking for the lead")?;
    if others > 0 || !leads {
        tracing::info!(
            others,
            leads,
            "other replicas are alive: in-flight creates are theirs; the leader's periodic \
             reconciliation settles what a dead one left"
        );
    }
    Ok(others == 0 && leads)
}

/// Heartbeats every `HEARTBEAT_INTERVAL` until the task is dropped.
pub(crate) async fn heartbeat_loop(coordination: Arc<dyn Coordination>) {
    let mut ticks = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = coordination.heartbeat().await {
            tracing::warn!(error = %err, "heartbeat failed; retried");
        }
    }
}

/// Whether this replica leads now, logging when that changes.
pub(crate) async fn leads(coordination: &dyn Coordination, was: &mut Option<bool>) -> bool {
    let now = match coordination.lead().await {
        Ok(leads) => leads,
        Err(err) => {
            tracing::warn!(error = %err, "cannot tell who leads; no background work now");
            false
        }
    };
    if *was != Some(now) {
        if now {
            tracing::info!(
                "this replica leads the background work (cleanup, reconciliation, warm pool)"
            );
        } else {
            tracing::info!("another replica leads the background work");
        }
        *was = Some(now);
    }
    now
}
