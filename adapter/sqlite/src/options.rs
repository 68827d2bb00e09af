//! Tuning knobs of the SQLite store, with defaults that suit one service
//! process on a local disk.

use std::time::Duration;

/// How the store talks to its database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteStoreOptions {
    /// How long a statement waits for another connection's (or process's)
    /// write lock before the call fails with `Unavailable` ("database is locked").
    pub busy_timeout: Duration,
    /// Read connections. WAL lets readers run beside the single writer, so a
    /// few keep lookups from queueing behind each other.
    pub max_readers: u32,
    /// How long a call waits for a free pooled connection before failing with
    /// `Unavailable`. Writers queue here (there is one write connection), so
    /// keep it above `busy_timeout`.
    pub acquire_timeout: Duration,
    /// How often a background task checkpoints the WAL into the database
    /// file, keeping that fsync off the calls. Short, so each checkpoint is
    /// small (a big one stalls the file system's journal for everyone).
    /// `None` leaves it to SQLite, inside whichever commit crosses 1000
    /// pages of WAL.
    pub checkpoint_interval: Option<Duration>,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_readers: 4,
            acquire_timeout: Duration::from_secs(10),
            checkpoint_interval: Some(Duration::from_millis(200)),
        }
    }
}
