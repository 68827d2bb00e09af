//! Opening the database: where it is (a plain path or a `sqlite:` URL),
//! creating the file and its directory on first start, the connection
//! settings, the two pools and the embedded schema migrations.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use backon::{ConstantBuilder, Retryable};
use sandboxer_core::port::StoreError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::checkpoint::{Checkpointer, SAFETY_NET_PAGES};
use crate::error::{is_busy, migrate_error, store_error};
use crate::options::SqliteStoreOptions;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// `PRAGMA analysis_limit` for the `PRAGMA optimize` run when a connection
/// closes; the value the SQLite manual suggests.
const ANALYSIS_LIMIT: u32 = 400;

/// Pause between attempts to open a database another process is setting up.
const OPEN_RETRY_PAUSE: Duration = Duration::from_millis(20);

pub(crate) struct Opened {
    pub reader: SqlitePool,
    pub writer: SqlitePool,
    pub path: PathBuf,
    pub checkpointer: Option<Checkpointer>,
}

/// How the caller asked the file to be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read-write, created with its directory when missing (the default).
    Create,
    /// Read-write, must exist (`?mode=rw`).
    Existing,
    /// Read-only (`?mode=ro`): every write fails `Unavailable`.
    ReadOnly,
}

pub(crate) async fn open(
    location: &str,
    options: &SqliteStoreOptions,
) -> Result<Opened, StoreError> {
    let (connect, mode) = parse_location(location)?;
    let path = connect.get_filename().to_path_buf();
    if mode == Mode::Create {
        create_parent_dir(&path).await?;
    }
    let connect = settings(connect, mode, options);
    let fail = |e| store_error(e, &path);

    // One writer: SQLite serializes writes anyway, and queueing them in the
    // pool is fair and cheap where contending on the file lock means
    // sleeping in SQLite's busy handler.
    let writer = connect_pool(1, &connect, options).await.map_err(fail)?;
    migrate(&writer, mode, &path).await?;
    let reader = connect_pool(options.max_readers.max(1), &connect, options)
        .await
        .map_err(fail)?;
    let checkpointer = match options.checkpoint_interval {
        Some(every) if mode != Mode::ReadOnly => {
            Some(Checkpointer::start(&connect, every).await.map_err(fail)?)
        }
        _ => None,
    };
    Ok(Opened {
        reader,
        writer,
        path,
        checkpointer,
    })
}

fn parse_location(location: &str) -> Result<(SqliteConnectOptions, Mode), StoreError> {
    let bad = |why: String| StoreError::Other(format!("database location {location:?}: {why}"));
    let Some(rest) = location.strip_prefix("sqlite:") else {
        if location.trim().is_empty() {
            return Err(bad("empty path".into()));
        }
        return Ok((SqliteConnectOptions::new().filename(location), Mode::Create));
    };
    let (file, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mode_param = query.split('&').find_map(|pair| pair.strip_prefix("mode="));
    if file.trim_start_matches("//") == ":memory:" || mode_param == Some("memory") {
        // Pools of in-memory connections share one cache with table-level
        // locks; tests use the in-memory fake of the core instead.
        return Err(bad(
            "in-memory databases are not supported; give a file".into()
        ));
    }
    let mode = match mode_param {
        None | Some("rwc") => Mode::Create,
        Some("rw") => Mode::Existing,
        Some("ro") => Mode::ReadOnly,
        Some(other) => return Err(bad(format!("unknown mode {other:?} (ro, rw or rwc)"))),
    };
    let connect = SqliteConnectOptions::from_str(location).map_err(|e| bad(e.to_string()))?;
    Ok((connect, mode))
}

async fn create_parent_dir(path: &Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot create the database directory {} for {}: {e}",
            dir.display(),
            path.display()
        ))
    })
}

fn settings(
    connect: SqliteConnectOptions,
    mode: Mode,
    options: &SqliteStoreOptions,
) -> SqliteConnectOptions {
    let connect = connect
        .create_if_missing(mode == Mode::Create)
        .foreign_keys(true)
        .busy_timeout(options.busy_timeout);
    if mode == Mode::ReadOnly {
        // Changing the journal mode or analysing would be writes.
        return connect;
    }
    let connect = connect
        // Readers do not block the writer nor it them; NORMAL is durable
        // across application crashes in WAL mode (only a power cut can lose
        // the last commits), and saves an fsync per commit.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .optimize_on_close(true, ANALYSIS_LIMIT);
    if options.checkpoint_interval.is_some() {
        connect.pragma("wal_autocheckpoint", SAFETY_NET_PAGES.to_string())
    } else {
        connect
    }
}

/// Opens a pool, retrying for up to the busy timeout while the file is
/// locked. Needed on first start: the switch of a new file to WAL takes a
/// lock that SQLite's busy handler does not wait for, so a second process
/// starting at the same moment gets "database is locked" at once.
async fn connect_pool(
    max: u32,
    connect: &SqliteConnectOptions,
    options: &SqliteStoreOptions,
) -> Result<SqlitePool, sqlx::Error> {
    let deadline = Instant::now() + options.busy_timeout;
    // Bounded by the deadline, not by a count of tries.
    let pauses = ConstantBuilder::new()
        .with_delay(OPEN_RETRY_PAUSE)
        .without_max_times();
    (|| pool_options(max, options).connect_with(connect.clone()))
        .retry(pauses)
        .when(|e| is_busy(e) && Instant::now() < deadline)
        .await
}

fn pool_options(max: u32, options: &SqliteStoreOptions) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max)
        .acquire_timeout(options.acquire_timeout)
        // Long-lived connections keep their prepared statements cached.
        .idle_timeout(None)
        .max_lifetime(None)
        // A local file does not drop connections; a ping per acquire would
        // cost a round trip to the connection's worker thread on every call.
        .test_before_acquire(false)
}

/// Applies pending migrations. On a writable file they run under
/// `BEGIN IMMEDIATE`, so two processes starting on a fresh file cannot both
/// apply them: the second waits for the lock, then finds nothing to do.
async fn migrate(writer: &SqlitePool, mode: Mode, path: &Path) -> Result<(), StoreError> {
    let fail = |e| store_error(e, path);
    if mode == Mode::ReadOnly {
        return MIGRATOR
            .run(writer)
            .await
            .map_err(|e| migrate_error(e, path));
    }
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(fail)?;
    MIGRATOR
        .run(&mut *tx)
        .await
        .map_err(|e| migrate_error(e, path))?;
    tx.commit().await.map_err(fail)
}
