//! The database away, too slow or out of connections: every call fails
//! `Unavailable` (the API's 503 `store_unavailable`), nothing is left half
//! written, and the store recovers by itself once the database is back.
//! TLS is used when the URL asks for it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandboxer_core::domain::ChatId;
use sandboxer_core::port::{SessionStore, StoreError};
use sandboxer_core::testing::store_contract::{at, fresh_chat, new_session};
use sandboxer_postgres::PostgresStoreOptions;
use sandboxer_postgres::testing::{TestDatabase, ca_certificate};
use sqlx::{Connection, Executor, PgConnection};

fn quick() -> PostgresStoreOptions {
    PostgresStoreOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_millis(500),
        statement_timeout: Some(Duration::from_secs(5)),
    }
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::Unavailable(why)) => why,
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

/// Retries `call` until it succeeds, for at most 10 s.
async fn recovers<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_unavailable_then_recovers_with_nothing_half_written() {
    let db = TestDatabase::create().await;
    let proxy = common::Proxy::start(&db).await;
    let store = common::open(&proxy.url(&db), quick()).await;
    let chat = fresh_chat("pg");
    store.get_active(&chat).await.unwrap();

    proxy.cut();
    let why = unavailable(store.ping().await, "ping while away");
    assert!(why.contains("PostgreSQL"), "{why}");
    let new = new_session(&chat, at(0));
    unavailable(store.begin_create(&new, None).await, "create while away");
    unavailable(store.get_active(&chat).await, "read while away");

    proxy.restore();
    recovers(|| store.ping()).await;
    // The create that failed left no row and no workspace: a new one is generation 1.
    assert_eq!(store.get_active(&chat).await.unwrap(), None);
    assert_eq!(store.get_workspace(&chat).await.unwrap(), None);
    let created = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    assert_eq!(created.generation, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_transaction_rolls_the_whole_call_back() {
    let db = TestDatabase::create().await;
    let proxy = common::Proxy::start(&db).await;
    let store = Arc::new(common::open(&proxy.url(&db), quick()).await);
    let direct = common::open(db.url(), quick()).await;
    // Hold the chat's generation lock from outside, so the create stops
    // inside its transaction; then cut the connection under it.
    let chat = fresh_chat("pg");
    let mut blocker = PgConnection::connect(db.url()).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("LOCK TABLE workspaces IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let creating = {
        let store = store.clone();
        let new = new_session(&chat, at(0));
        tokio::spawn(async move { store.begin_create(&new, None).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    let result = creating.await.unwrap();
    unavailable(result, "a create whose connection was cut");
    blocker.execute("ROLLBACK").await.unwrap();
    proxy.restore();
    assert_eq!(
        direct.get_active(&chat).await.unwrap(),
        None,
        "half a create stayed"
    );
    assert_eq!(direct.get_workspace(&chat).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_timeout_is_unavailable() {
    let db = TestDatabase::create().await;
    let options = PostgresStoreOptions {
        statement_timeout: Some(Duration::from_millis(300)),
        ..quick()
    };
    let store = common::open(db.url(), options).await;
    let chat = fresh_chat("pg");
    let mut blocker = PgConnection::connect(db.url()).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let why = unavailable(store.get_active(&chat).await, "a read behind a lock");
    assert!(why.contains("57014"), "not the statement timeout: {why}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    blocker.execute("ROLLBACK").await.unwrap();
    assert_eq!(store.get_active(&chat).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_pool_is_unavailable() {
    let db = TestDatabase::create().await;
    let options = PostgresStoreOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(300),
        statement_timeout: Some(Duration::from_secs(5)),
    };
    let store = Arc::new(common::open(db.url(), options).await);
    let mut blocker = PgConnection::connect(db.url()).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // The only connection waits behind the lock...
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.get_active(&ChatId::parse("held").unwrap()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so the next call finds no free one.
    let why = unavailable(
        store.get_active(&fresh_chat("pg")).await,
        "a call on a full pool",
    );
    assert!(why.contains("free connection"), "{why}");
    blocker.execute("ROLLBACK").await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), None);
    store.get_active(&fresh_chat("pg")).await.unwrap();
}

/// Whether every connection the store has open to `db` uses TLS.
async fn connections_use_tls(db: &TestDatabase) -> (i64, i64) {
    let mut admin = PgConnection::connect(db.url()).await.unwrap();
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1 AND a.application_name = 'sandboxer'",
    )
    .bind(db.name())
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_used_and_verified_when_the_url_asks_for_it() {
    let db = TestDatabase::create().await;
    let ca = ca_certificate();
    assert!(
        ca.exists(),
        "the test cluster's CA {} is missing",
        ca.display()
    );
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        db.url().replace("127.0.0.1", "localhost"),
        ca.display()
    );
    let store = common::open(&url, quick()).await;
    store.ping().await.unwrap();
    let (all, tls) = connections_use_tls(&db).await;
    assert!(all > 0 && all == tls, "{tls} of {all} connections use TLS");
    store.close().await;

    // A server certificate the given CA did not sign is refused.
    let wrong = format!(
        "{}?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt",
        db.url().replace("127.0.0.1", "localhost")
    );
    let refused = sandboxer_postgres::PostgresSessionStore::open(
        &wrong,
        quick(),
        Arc::new(sandboxer_core::trace::NoopTracer),
    )
    .await;
    let why = unavailable(refused, "an unverifiable server");
    assert!(why.contains("TLS") || why.contains("certificate"), "{why}");
}
