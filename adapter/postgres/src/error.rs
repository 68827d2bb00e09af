//! The one place where sqlx errors become `StoreError`s. A database that is
//! away, restarting, out of connections or too slow is `Unavailable` (the
//! API's 503 `store_unavailable` with Retry-After); a broken rule of the
//! schema is `Conflict` or `Other`. Messages name the server, never the
//! password.

use sandboxer_core::port::StoreError;
use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;

/// Translates a sqlx error met while working on the database `target`
/// (`host:port/name`).
pub(crate) fn store_error(error: sqlx::Error, target: &str) -> StoreError {
    match error {
        sqlx::Error::Database(e) => database_error(e.as_ref(), target),
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "timed out waiting for a free connection to PostgreSQL {target} \
             (every connection busy, or the server does not answer)"
        )),
        sqlx::Error::PoolClosed => {
            StoreError::Unavailable(format!("the store for PostgreSQL {target} is closed"))
        }
        sqlx::Error::Io(e) => {
            StoreError::Unavailable(format!("cannot reach PostgreSQL {target}: {e}"))
        }
        sqlx::Error::Tls(e) => {
            StoreError::Unavailable(format!("TLS to PostgreSQL {target} failed: {e}"))
        }
        sqlx::Error::Protocol(e) => {
            StoreError::Unavailable(format!("the connection to PostgreSQL {target} broke: {e}"))
        }
        sqlx::Error::Migrate(e) => migrate_error(*e, target),
        sqlx::Error::Configuration(e) => {
            StoreError::Other(format!("bad PostgreSQL configuration for {target}: {e}"))
        }
        other => StoreError::Other(format!("PostgreSQL {target}: {other}")),
    }
}

/// Translates a failed schema migration.
pub(crate) fn migrate_error(error: MigrateError, target: &str) -> StoreError {
    match error {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            match store_error(inner, target) {
                StoreError::Other(m) => StoreError::Other(format!("migrating the schema: {m}")),
                mapped => mapped,
            }
        }
        other => StoreError::Other(format!(
            "the schema of PostgreSQL {target} does not match this build: {other}"
        )),
    }
}

/// SQLSTATE classes and codes that say "not now", not "never".
fn transient(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin / crash shutdown, cannot connect now
        || matches!(
            code,
            "57014" // query_canceled: the statement timeout
                | "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "55P03" // lock_not_available
                | "25006" // read_only_sql_transaction: a standby, or a failover under way
                | "3D000" // the database is not there (yet)
        )
}

fn database_error(e: &dyn DatabaseError, target: &str) -> StoreError {
    let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
    let message = e.message();
    if code == "23505" {
        return StoreError::Conflict(unique_violation(e.constraint(), message));
    }
    if transient(&code) {
        return StoreError::Unavailable(format!(
            "PostgreSQL {target} cannot serve now ({code}): {message}"
        ));
    }
    StoreError::Other(format!("PostgreSQL {target} ({code}): {message}"))
}

/// Names the rule a unique violation broke, in the store's words.
fn unique_violation(constraint: Option<&str>, message: &str) -> String {
    match constraint {
        Some("sessions_one_active_per_chat") => "the chat already has an active session".into(),
        Some("sessions_chat_generation") => {
            "another session took this generation of the chat".into()
        }
        Some("sessions_pkey") => "a session with this id already exists".into(),
        Some("workspaces_one_live_per_chat") => "the chat already has a live workspace".into(),
        Some("workspaces_pkey") => "a workspace with this id already exists".into(),
        Some("pool_members_pkey") => "a pool member with this session id already exists".into(),
        Some("pool_members_workspace_id_key") => {
            "a pool member with this workspace id already exists".into()
        }
        _ => message.to_owned(),
    }
}
