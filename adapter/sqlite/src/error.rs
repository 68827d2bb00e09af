//! The one place where sqlx errors become `StoreError`s. Messages say what
//! is wrong with the database (locked, read-only, unreachable) and where.

use std::path::Path;

use sandboxer_core::port::StoreError;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;

// SQLite primary result codes: the low byte of the extended code sqlx reports.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_NOTADB: i32 = 26;

/// Translates a sqlx error met while working on the database at `db`.
pub(crate) fn store_error(error: sqlx::Error, db: &Path) -> StoreError {
    let shown = db.display();
    match error {
        sqlx::Error::Database(e) => database_error(e.as_ref(), db),
        sqlx::Error::PoolTimedOut => StoreError::Unavailable(format!(
            "timed out waiting for a free connection to {shown} (overloaded, or a write is stuck)"
        )),
        sqlx::Error::PoolClosed => {
            StoreError::Unavailable(format!("the store for {shown} is closed"))
        }
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(format!("the SQLite worker thread for {shown} crashed"))
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("I/O error on {shown}: {e}")),
        sqlx::Error::Migrate(e) => migrate_error(*e, db),
        sqlx::Error::Configuration(e) => {
            StoreError::Other(format!("bad SQLite configuration for {shown}: {e}"))
        }
        other => StoreError::Other(format!("{shown}: {other}")),
    }
}

/// Whether SQLite answered "database is locked" (`SQLITE_BUSY`).
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .and_then(|c| c.parse::<i32>().ok());
    code.is_some_and(|c| c & 0xff == SQLITE_BUSY)
}

/// Translates a failed schema migration of the database at `db`.
pub(crate) fn migrate_error(error: MigrateError, db: &Path) -> StoreError {
    match error {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            match store_error(inner, db) {
                StoreError::Other(m) => StoreError::Other(format!("migrating the schema: {m}")),
                mapped => mapped,
            }
        }
        // Typically a database written by a newer or modified build.
        other => StoreError::Other(format!(
            "the schema of {} does not match this build: {other}",
            db.display()
        )),
    }
}

fn database_error(e: &dyn DatabaseError, db: &Path) -> StoreError {
    let db = db.display();
    let message = e.message();
    if matches!(e.kind(), ErrorKind::UniqueViolation) {
        return StoreError::Conflict(unique_violation(message));
    }
    let code = e.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
    match code & 0xff {
        SQLITE_BUSY => StoreError::Unavailable(format!(
            "database is locked by another connection or process (busy timeout passed): {db}"
        )),
        SQLITE_LOCKED => StoreError::Unavailable(format!("database table is locked: {db}")),
        SQLITE_READONLY => {
            StoreError::Unavailable(format!("database file is read-only: {db} ({message})"))
        }
        SQLITE_CANTOPEN => {
            StoreError::Unavailable(format!("cannot open database file {db} ({message})"))
        }
        SQLITE_IOERR => StoreError::Unavailable(format!("disk I/O error on {db} ({message})")),
        SQLITE_FULL => StoreError::Unavailable(format!("disk full, cannot write {db}")),
        SQLITE_CORRUPT | SQLITE_NOTADB => StoreError::Other(format!(
            "{db} is corrupt or not a SQLite database ({message})"
        )),
        _ => StoreError::Other(format!("{db}: {message}")),
    }
}

/// Names the rule a unique violation broke, in the store's words. SQLite
/// names the columns of the index, not the index: `sessions.chat_id` alone
/// is the one-active-per-chat index, `workspaces.chat_id` the
/// one-live-per-chat one.
fn unique_violation(message: &str) -> String {
    let columns = message.rsplit(": ").next().unwrap_or(message);
    match columns {
        "sessions.chat_id" => "the chat already has an active session".into(),
        "sessions.chat_id, sessions.generation" => {
            "another session took this generation of the chat".into()
        }
        "sessions.id" => "a session with this id already exists".into(),
        "workspaces.chat_id" => "the chat already has a live workspace".into(),
        "workspaces.id" => "a workspace with this id already exists".into(),
        "pool_members.session_id" => "a pool member with this session id already exists".into(),
        "pool_members.workspace_id" => "a pool member with this workspace id already exists".into(),
        _ => message.to_owned(),
    }
}
