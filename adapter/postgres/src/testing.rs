//! Throwaway databases for tests (feature `testing`): each test makes its
//! own database on the test cluster (`scripts/test-postgres.sh start`, or
//! any server named by `SANDBOXER_TEST_POSTGRES`) and drops it when done,
//! also when the test fails.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

/// The test cluster's admin URL: `SANDBOXER_TEST_POSTGRES`, else the one
/// `scripts/test-postgres.sh` starts.
pub fn admin_url() -> String {
    std::env::var("SANDBOXER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".to_owned())
}

/// A database of its own on the test cluster, dropped (with its
/// connections) when this value is.
#[derive(Debug)]
pub struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `sbx_test_<random>`.
    ///
    /// # Panics
    /// When the test cluster does not answer: the message says how to
    /// start it.
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("sbx_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL for the tests at {admin} ({e}); start the throwaway cluster \
                 with `bash scripts/test-postgres.sh start` or set SANDBOXER_TEST_POSTGRES"
            )
        });
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let url = with_database(&admin, &name);
        Self { admin, name, url }
    }

    /// The URL of this database (the admin's credentials and host).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let drop_it = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Its own thread and runtime: Drop may run inside (or outside) any runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(&admin).await?;
                conn.execute(sqlx::AssertSqlSafe(drop_it)).await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// The CA that signed the test cluster's server certificate
/// (`scripts/test-postgres.sh` makes it), for `sslmode=verify-full`.
pub fn ca_certificate() -> std::path::PathBuf {
    let dir = std::env::var("SANDBOXER_TEST_PG_DIR")
        .unwrap_or_else(|_| "/tmp/sandboxer-test-pg".to_owned());
    std::path::Path::new(&dir).join("ca.crt")
}

/// `url` naming database `name` instead, its query kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    }
}
