//! Connecting: the URL (`postgres://user:pass@host:port/db?sslmode=...`,
//! with `sslrootcert`, `sslcert`, `sslkey` for TLS), the pool's size and
//! timeouts, and the embedded schema migrations. sqlx's migrator holds an
//! advisory lock while it runs, so replicas starting together on an empty
//! database migrate it once.

use std::str::FromStr;

use sandboxer_core::port::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{migrate_error, store_error};
use crate::options::PostgresStoreOptions;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub(crate) struct Opened {
    pub pool: PgPool,
    /// `host:port/database`, for messages (never the password).
    pub target: String,
}

pub(crate) async fn open(url: &str, options: &PostgresStoreOptions) -> Result<Opened, StoreError> {
    let mut connect = PgConnectOptions::from_str(url).map_err(|e| {
        StoreError::Other(format!(
            "bad PostgreSQL URL (expected postgres://user:password@host:port/database): {e}"
        ))
    })?;
    let target = format!(
        "{}:{}/{}",
        connect.get_host(),
        connect.get_port(),
        connect.get_database().unwrap_or(connect.get_username())
    );
    if connect.get_application_name().is_none() {
        connect = connect.application_name("sandboxer");
    }
    if let Some(timeout) = options.statement_timeout {
        connect = connect.options([("statement_timeout", timeout.as_millis().to_string())]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|e| store_error(e, &target))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| migrate_error(e, &target))?;
    Ok(Opened { pool, target })
}
