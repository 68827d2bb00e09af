//! `PostgresCoordination`: the `Coordination` port for replicas on one
//! database. The lead is a session-level advisory lock held on a
//! connection of its own: while the replica lives the lock stays; when its
//! process dies (or its connection does) the server releases it, and the
//! next replica to ask takes it. Heartbeats are rows of `replicas`, stamped
//! with the server's clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sandboxer_core::port::{Coordination, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

use crate::error::store_error;
use crate::store::PostgresSessionStore;

/// The advisory lock of the background work, within the database.
const LEAD_LOCK: i64 = 0x5342_584c_4541_4400; // "SBXLEAD\0"

/// How long a check of the lock's connection may take before the lead is
/// taken for lost.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

const HEARTBEAT: &str = "INSERT INTO replicas (id, host) VALUES ($1, $2) \
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()";

/// Others alive; rows silent for a day are forgotten on the way.
const OTHERS_ALIVE: &str = "SELECT count(*) FROM replicas WHERE id <> $1 \
     AND heartbeat_at > now() - make_interval(secs => $2)";
const FORGET_SILENT: &str = "DELETE FROM replicas WHERE heartbeat_at < now() - interval '1 day'";
const GONE: &str = "DELETE FROM replicas WHERE id = $1";

/// The lock's connection, and whether it holds the lock.
struct Lead {
    conn: Option<PgConnection>,
    holding: bool,
}

pub struct PostgresCoordination {
    pool: PgPool,
    connect: Arc<PgConnectOptions>,
    target: String,
    replica: String,
    host: String,
    grace: Duration,
    lead: Mutex<Lead>,
}

impl fmt::Debug for PostgresCoordination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCoordination")
            .field("target", &self.target)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

impl PostgresSessionStore {
    /// Coordination of this replica with the others on the same database:
    /// `replica` names it (unique per process), `host` says where it runs,
    /// and a replica silent for `grace` counts as gone.
    pub fn coordination(&self, replica: &str, host: &str, grace: Duration) -> PostgresCoordination {
        PostgresCoordination {
            pool: self.pool.clone(),
            connect: self.pool.connect_options(),
            target: self.target().to_owned(),
            replica: replica.to_owned(),
            host: host.to_owned(),
            grace,
            lead: Mutex::new(Lead {
                conn: None,
                holding: false,
            }),
        }
    }
}

impl PostgresCoordination {
    fn error(&self, error: sqlx::Error) -> StoreError {
        store_error(error, &self.target)
    }

    /// The replica this is.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    async fn try_lock(&self, conn: &mut PgConnection) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEAD_LOCK)
            .fetch_one(conn)
            .await
            .map_err(|e| self.error(e))
    }
}

#[async_trait]
impl Coordination for PostgresCoordination {
    async fn lead(&self) -> Result<bool, StoreError> {
        let mut lead = self.lead.lock().await;
        if let Some(conn) = lead.conn.as_mut() {
            let alive = tokio::time::timeout(PROBE_TIMEOUT, conn.ping()).await;
            if matches!(alive, Ok(Ok(()))) {
                if lead.holding {
                    return Ok(true);
                }
            } else {
                // The lock (if held) went with the connection.
                lead.conn = None;
                lead.holding = false;
            }
        }
        if lead.conn.is_none() {
            let conn = self
                .connect
                .as_ref()
                .clone()
                .connect()
                .await
                .map_err(|e| self.error(e))?;
            lead.conn = Some(conn);
        }
        let Some(conn) = lead.conn.as_mut() else {
            return Ok(false);
        };
        let taken = self.try_lock(conn).await;
        if taken.is_err() {
            lead.conn = None;
        }
        lead.holding = taken?;
        Ok(lead.holding)
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        sqlx::query(HEARTBEAT)
            .bind(&self.replica)
            .bind(&self.host)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        sqlx::query(FORGET_SILENT)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    async fn others_alive(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(OTHERS_ALIVE)
            .bind(&self.replica)
            .bind(self.grace.as_secs_f64())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn resign(&self) {
        let mut lead = self.lead.lock().await;
        if let Some(conn) = lead.conn.take() {
            // Closing the connection releases the lock.
            let _ = conn.close().await;
        }
        lead.holding = false;
        let _ = sqlx::query(GONE)
            .bind(&self.replica)
            .execute(&self.pool)
            .await;
    }
}
