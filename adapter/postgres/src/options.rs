//! How the store talks to PostgreSQL beyond what the URL says.

use std::time::Duration;

/// Connection pool and timeouts of a `PostgresSessionStore`.
#[derive(Debug, Clone)]
pub struct PostgresStoreOptions {
    /// Connections this replica keeps open at most.
    pub max_connections: u32,
    /// How long a call waits for a free connection (or a new one to open)
    /// before it fails `Unavailable`.
    pub acquire_timeout: Duration,
    /// The server cancels a statement that runs longer (`statement_timeout`);
    /// the call fails `Unavailable`. `None` keeps the server's setting.
    pub statement_timeout: Option<Duration>,
}

impl Default for PostgresStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Some(Duration::from_secs(5)),
        }
    }
}
