//! Shared setup of the SQLite store tests: a fresh database file in its
//! own temporary directory per test, and a quiet tracer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::port::Tracer;
use sandboxer_core::trace::NoopTracer;
use sandboxer_sqlite::{SqliteSessionStore, SqliteStoreOptions};
use tempfile::TempDir;

/// A store on a new file; keep the `TempDir` alive as long as the store.
#[allow(dead_code)] // contract, files, rows only
pub async fn fresh() -> (SqliteSessionStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_path(&dir)).await;
    (store, dir)
}

pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("sandboxer.db")
}

#[allow(dead_code)] // files, read_only, rows only
pub async fn open(path: &std::path::Path) -> SqliteSessionStore {
    open_with(path, SqliteStoreOptions::default(), Arc::new(NoopTracer)).await
}

pub async fn open_with(
    path: &std::path::Path,
    options: SqliteStoreOptions,
    tracer: Arc<dyn Tracer>,
) -> SqliteSessionStore {
    SqliteSessionStore::open(path.to_str().unwrap(), options, tracer)
        .await
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// Options whose lock waits end quickly, for tests that hold a lock.
#[allow(dead_code)] // files, spans only
pub fn short_busy_timeout() -> SqliteStoreOptions {
    SqliteStoreOptions {
        busy_timeout: Duration::from_millis(200),
        acquire_timeout: Duration::from_secs(2),
        ..SqliteStoreOptions::default()
    }
}

/// A plain connection to the file, beside the store (another "process").
#[allow(dead_code)] // files, rows, spans only
pub async fn raw(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap()
}
