//! The database file's life: created with its directory on first start,
//! reopened after a restart, migrated once, and what callers see when the
//! file is read-only, locked or cannot be made.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandboxer_core::domain::{ContainerId, EndReason, WorkspaceFate};
use sandboxer_core::port::{SessionStore, StoreError, Touch};
use sandboxer_core::testing::store_contract::{
    at, fresh_chat, keep_until, new_session, next_session,
};
use sandboxer_core::trace::NoopTracer;
use sandboxer_sqlite::{SqliteSessionStore, SqliteStoreOptions};
use sqlx::Connection;

#[tokio::test]
async fn first_open_creates_the_file_and_its_directory_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/nested/sandboxer.db");
    assert!(!path.parent().unwrap().exists());

    let store = common::open(&path).await;
    assert!(path.is_file(), "{} was not created", path.display());
    assert_eq!(store.path(), path);
    store.ping().await.unwrap();

    let mut conn = common::raw(&path).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_sqlite_url_opens_the_same_database_as_its_path() {
    let (store, dir) = common::fresh().await;
    let s1 = store
        .begin_create(&new_session(&fresh_chat("url"), at(0)), None)
        .await
        .unwrap();
    store.close().await;

    let url = format!("sqlite://{}", common::db_path(&dir).display());
    assert!(url.starts_with("sqlite:///"), "{url}");
    let by_url =
        SqliteSessionStore::open(&url, SqliteStoreOptions::default(), Arc::new(NoopTracer))
            .await
            .unwrap();
    assert_eq!(by_url.get(&s1.id).await.unwrap(), Some(s1));
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let (store, dir) = common::fresh().await;
    let chat = fresh_chat("restart");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    let s1 = store
        .mark_running(&s1.id, &ContainerId::new("c-1"))
        .await
        .unwrap();
    let touch = Touch {
        last_used_at: at(10),
        expires_at: at(1810),
        idle_ttl: Duration::from_secs(1800),
    };
    let s1 = store.touch(&s1.id, touch).await.unwrap().unwrap();
    let other = store
        .begin_create(&new_session(&fresh_chat("restart-other"), at(1)), None)
        .await
        .unwrap();
    store
        .end(&other.id, EndReason::Hibernated, at(2), keep_until(100))
        .await
        .unwrap();
    let other = store.get(&other.id).await.unwrap().unwrap();
    let workspaces = store.list_workspaces().await.unwrap();
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    let reopened = common::open(&common::db_path(&dir)).await;
    assert_eq!(reopened.get_active(&chat).await.unwrap(), Some(s1.clone()));
    assert_eq!(reopened.get(&other.id).await.unwrap(), Some(other));
    assert_eq!(reopened.list_active().await.unwrap(), vec![s1.clone()]);
    assert_eq!(reopened.list_workspaces().await.unwrap(), workspaces);
    assert_eq!(reopened.count_hibernated().await.unwrap(), 1);
    // The generation keeps counting after a restart.
    let replacing = sandboxer_core::port::Replacing {
        session_id: s1.id,
        generation: s1.generation,
        reason: EndReason::Expired,
    };
    let s2 = reopened
        .begin_create(&next_session(&s1, at(20)), Some(&replacing))
        .await
        .unwrap();
    assert_eq!(s2.generation, 2);
}

/// Rounds of simultaneous first starts: the races (who switches the new file
/// to WAL, who applies the migrations) go a different way each time.
const FIRST_START_ROUNDS: usize = 5;
const PROCESSES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_on_a_new_file_all_open_and_migrate_once() {
    for _ in 0..FIRST_START_ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let path = common::db_path(&dir);
        // Stores opening a file that does not exist yet, at the same time.
        let stores = futures::future::join_all((0..PROCESSES).map(|_| common::open(&path))).await;
        let s = stores[0]
            .begin_create(&new_session(&fresh_chat("migrate"), at(0)), None)
            .await
            .unwrap();
        for other in &stores[1..] {
            assert_eq!(other.get(&s.id).await.unwrap(), Some(s.clone()));
        }
        for store in &stores {
            store.close().await;
        }

        // A later start finds the schema in place and the row still there.
        let again = common::open(&path).await;
        assert_eq!(again.get(&s.id).await.unwrap(), Some(s));
        let mut conn = common::raw(&path).await;
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .count();
        assert_eq!(applied.len(), shipped, "{applied:?}");
        assert!(applied.iter().all(|(_, ok)| *ok), "{applied:?}");
    }
}

#[tokio::test]
async fn a_directory_that_cannot_be_made_is_unavailable_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the directory should be: refused even for root.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let path = blocker.join("sandboxer.db");
    let err = SqliteSessionStore::open(
        path.to_str().unwrap(),
        SqliteStoreOptions::default(),
        Arc::new(NoopTracer),
    )
    .await
    .unwrap_err();
    let StoreError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(
        message.contains("cannot create the database directory"),
        "{message}"
    );
    assert!(
        message.contains(&blocker.display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn an_existing_database_is_required_with_mode_rw() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let url = format!("sqlite://{}?mode=rw", path.display());
    let err = SqliteSessionStore::open(&url, SqliteStoreOptions::default(), Arc::new(NoopTracer))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("cannot open database file")),
        "{err:?}"
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn unusable_locations_are_refused_clearly() {
    for (location, says) in [
        ("sqlite::memory:", "in-memory databases are not supported"),
        (
            "sqlite://x.db?mode=memory",
            "in-memory databases are not supported",
        ),
        ("sqlite://x.db?mode=bogus", "unknown mode \"bogus\""),
        ("sqlite://x.db?colour=blue", "unknown query parameter"),
        ("  ", "empty path"),
    ] {
        let err = SqliteSessionStore::open(
            location,
            SqliteStoreOptions::default(),
            Arc::new(NoopTracer),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, StoreError::Other(m) if m.contains(says) && m.contains(location)),
            "{location}: {err:?}"
        );
    }
    assert!(!std::path::Path::new("x.db").exists());
}

#[tokio::test]
async fn a_locked_database_is_unavailable_after_the_busy_timeout_and_leaves_no_half_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let options = common::short_busy_timeout();
    let busy = options.busy_timeout;
    let store = common::open_with(&path, options, Arc::new(NoopTracer)).await;
    let chat = fresh_chat("locked");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    let s1 = store
        .mark_running(&s1.id, &ContainerId::new("c-1"))
        .await
        .unwrap();

    // Another process holds the write lock.
    let mut holder = common::raw(&path).await;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();

    let replacement = next_session(&s1, at(10));
    let replacing = sandboxer_core::port::Replacing {
        session_id: s1.id,
        generation: s1.generation,
        reason: EndReason::Expired,
    };
    let started = Instant::now();
    let err = store
        .begin_create(&replacement, Some(&replacing))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    let StoreError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("locked"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        waited >= busy,
        "gave up after {waited:?}, before the busy timeout"
    );
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    let touch = Touch {
        last_used_at: at(11),
        expires_at: at(99),
        idle_ttl: Duration::from_secs(88),
    };
    assert!(matches!(
        store.touch(&s1.id, touch).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store
            .end(&s1.id, EndReason::Stopped, at(12), WorkspaceFate::Delete)
            .await,
        Err(StoreError::Unavailable(_))
    ));
    // WAL: readers are not blocked by the writer, but readiness needs writes.
    assert_eq!(store.get_active(&chat).await.unwrap(), Some(s1.clone()));
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();

    // Nothing half done: the old session is still the active one, untouched,
    // and the replacement was never stored.
    assert_eq!(store.get_active(&chat).await.unwrap(), Some(s1.clone()));
    assert_eq!(store.get(&replacement.id).await.unwrap(), None);
    assert_eq!(store.count_active().await.unwrap(), 1);
    // And the store works again once the lock is gone.
    store.ping().await.unwrap();
    let s2 = store
        .begin_create(&replacement, Some(&replacing))
        .await
        .unwrap();
    assert_eq!(s2.generation, 2);
}

/// Sessions found in a copy of the main database file alone (no WAL): what
/// a checkpoint has written there. `None` while the schema is not there yet.
async fn rows_in_main_file(path: &std::path::Path, scratch: &std::path::Path) -> Option<i64> {
    let copy = scratch.join(format!(
        "copy-{}.db",
        sandboxer_core::domain::SessionId::new()
    ));
    std::fs::copy(path, &copy).ok()?;
    let mut conn = common::raw(&copy).await;
    sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&mut conn)
        .await
        .ok()
}

async fn write_sessions(store: &SqliteSessionStore, n: i64) {
    for i in 0..n {
        store
            .begin_create(&new_session(&fresh_chat("checkpoint"), at(i)), None)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();

    // Control: left to SQLite, 20 small commits stay in the WAL.
    let quiet = dir.path().join("quiet.db");
    let options = SqliteStoreOptions {
        checkpoint_interval: None,
        ..SqliteStoreOptions::default()
    };
    let store = common::open_with(&quiet, options, Arc::new(NoopTracer)).await;
    write_sessions(&store, 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(rows_in_main_file(&quiet, scratch.path()).await, Some(20));

    // With the background task, the main file catches up on its own.
    let busy = dir.path().join("checkpointed.db");
    let options = SqliteStoreOptions {
        checkpoint_interval: Some(Duration::from_millis(50)),
        ..SqliteStoreOptions::default()
    };
    let store = common::open_with(&busy, options, Arc::new(NoopTracer)).await;
    write_sessions(&store, 20).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while rows_in_main_file(&busy, scratch.path()).await != Some(20) {
        assert!(Instant::now() < deadline, "the WAL was not checkpointed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_behind_a_stuck_write_give_up_after_the_acquire_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let options = SqliteStoreOptions {
        busy_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_millis(200),
        ..SqliteStoreOptions::default()
    };
    let store = Arc::new(common::open_with(&path, options, Arc::new(NoopTracer)).await);
    let s1 = store
        .begin_create(&new_session(&fresh_chat("queued"), at(0)), None)
        .await
        .unwrap();

    let mut holder = common::raw(&path).await;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    // This write takes the one write connection and waits on the lock...
    let stuck = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .begin_create(&new_session(&fresh_chat("queued-2"), at(1)), None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so this one cannot even get a connection.
    let started = Instant::now();
    let err = store
        .end(&s1.id, EndReason::Stopped, at(2), WorkspaceFate::Delete)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let StoreError::Unavailable(message) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(
        message.contains("timed out waiting for a free connection"),
        "{message}"
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // The stuck write goes through once the lock is gone.
    stuck.await.unwrap().unwrap();
    assert!(
        store
            .end(&s1.id, EndReason::Stopped, at(3), WorkspaceFate::Delete)
            .await
            .unwrap()
    );
}

/// The drill's fault: the file and its WAL made immutable while the store
/// holds an open writer. Readiness must see it (a write that changes no row
/// would not: SQLite writes nothing before a commit), and recover after.
#[tokio::test]
async fn readiness_fails_when_the_open_file_stops_taking_writes() {
    struct Mutable(Vec<std::path::PathBuf>);
    impl Drop for Mutable {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(p)
                    .status();
            }
        }
    }
    let (store, dir) = common::fresh().await;
    store.ping().await.unwrap();
    let db = store.path().to_path_buf();
    let files = vec![db.clone(), db.with_extension("db-wal")];
    let guard = Mutable(files.clone());
    let made = std::process::Command::new("chattr")
        .arg("+i")
        .args(&files)
        .status()
        .expect("chattr runs (e2fsprogs)");
    assert!(made.success(), "chattr +i needs root on ext4");
    let probed = store.ping().await;
    assert!(
        matches!(probed, Err(StoreError::Unavailable(_))),
        "{probed:?}"
    );
    drop(guard);
    store.ping().await.unwrap();
    drop(dir);
}
