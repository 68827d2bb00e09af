//! Replicas on one database: one leads at a time, the lead passes on when
//! its holder resigns, dies or loses its connection, and heartbeats tell
//! who is alive.

mod common;

use std::time::{Duration, Instant};

use sandboxer_core::port::Coordination;
use sandboxer_postgres::testing::TestDatabase;
use sandboxer_postgres::{PostgresCoordination, PostgresStoreOptions};
use sqlx::{Connection, PgConnection};

async fn replica(db: &TestDatabase, name: &str, grace: Duration) -> PostgresCoordination {
    let store = common::open(db.url(), PostgresStoreOptions::default()).await;
    store.coordination(name, "test-host", grace)
}

/// Asks `who` to lead until it does, for at most 5 s.
async fn takes_the_lead(who: &PostgresCoordination) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if who.lead().await.unwrap() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never took the lead", who.replica());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_leads_and_the_lead_passes_on_when_it_resigns() {
    let db = TestDatabase::create().await;
    let a = replica(&db, "a", Duration::from_secs(15)).await;
    let b = replica(&db, "b", Duration::from_secs(15)).await;
    assert!(a.lead().await.unwrap());
    assert!(!b.lead().await.unwrap());
    assert!(a.lead().await.unwrap(), "the leader keeps the lead");
    assert!(!b.lead().await.unwrap());
    a.resign().await;
    assert!(b.lead().await.unwrap());
    assert!(!a.lead().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_of_a_replica_that_dies_is_taken_over() {
    let db = TestDatabase::create().await;
    let a = replica(&db, "a", Duration::from_secs(15)).await;
    let b = replica(&db, "b", Duration::from_secs(15)).await;
    assert!(a.lead().await.unwrap());
    // The process is gone: its connections close without a word.
    drop(a);
    let took = takes_the_lead(&b).await;
    eprintln!("took over after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_connection_the_server_ends_loses_the_lead() {
    let db = TestDatabase::create().await;
    let a = replica(&db, "a", Duration::from_secs(15)).await;
    let b = replica(&db, "b", Duration::from_secs(15)).await;
    assert!(a.lead().await.unwrap());
    let mut admin = PgConnection::connect(db.url()).await.unwrap();
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(ended, 1, "one connection held the lock");
    takes_the_lead(&b).await;
    assert!(!a.lead().await.unwrap(), "a must see it lost the lead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_tell_who_is_alive() {
    let db = TestDatabase::create().await;
    let grace = Duration::from_secs(1);
    let a = replica(&db, "a", grace).await;
    let b = replica(&db, "b", grace).await;
    assert_eq!(a.others_alive().await.unwrap(), 0);
    a.heartbeat().await.unwrap();
    b.heartbeat().await.unwrap();
    assert_eq!(a.others_alive().await.unwrap(), 1);
    assert_eq!(b.others_alive().await.unwrap(), 1);
    // b goes silent past the grace; a keeps beating.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    a.heartbeat().await.unwrap();
    assert_eq!(a.others_alive().await.unwrap(), 0);
    assert_eq!(b.others_alive().await.unwrap(), 1);
    // A replica that resigns is gone at once.
    a.resign().await;
    assert_eq!(b.others_alive().await.unwrap(), 0);
}
