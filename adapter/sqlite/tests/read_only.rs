//! A database that refuses writes. Tests run as root, and root ignores
//! file modes, so `chmod 0444` proves nothing here. Two things refuse
//! writes even to root: opening with `?mode=ro` (SQLite's own read-only
//! open) and the ext4 immutable attribute (`chattr +i`), which is what an
//! operator's read-only file looks like to SQLite (it falls back to a
//! read-only open).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{ContainerId, EndReason, Session, WorkspaceFate};
use sandboxer_core::port::{Replacing, SessionStore, StoreError, Touch};
use sandboxer_core::testing::store_contract::{
    at, fresh_chat, keep_until, new_session, next_session,
};
use sandboxer_core::trace::NoopTracer;
use sandboxer_sqlite::{SqliteSessionStore, SqliteStoreOptions};

/// Writes two sessions (one active, one ended and hibernated) and closes
/// the store.
async fn seed(path: &Path) -> (Session, Session) {
    let store = common::open(path).await;
    let active = store
        .begin_create(&new_session(&fresh_chat("ro"), at(0)), None)
        .await
        .unwrap();
    let active = store
        .mark_running(&active.id, &ContainerId::new("c-ro"))
        .await
        .unwrap();
    let ended = store
        .begin_create(&new_session(&fresh_chat("ro-ended"), at(1)), None)
        .await
        .unwrap();
    store
        .end(&ended.id, EndReason::Hibernated, at(2), keep_until(100))
        .await
        .unwrap();
    let ended = store.get(&ended.id).await.unwrap().unwrap();
    store.close().await;
    (active, ended)
}

/// Every write fails `Unavailable` saying the file is read-only; reads work.
async fn writes_are_refused(store: &SqliteSessionStore, active: &Session, ended: &Session) {
    let read_only = |r: Result<_, StoreError>, call: &str| match r {
        Err(StoreError::Unavailable(m)) => {
            assert!(m.contains("read-only"), "{call}: {m}");
            assert!(
                m.contains(&store.path().display().to_string()),
                "{call}: {m}"
            );
        }
        other => panic!("{call}: expected Unavailable, got {other:?}"),
    };
    let replacing = Replacing {
        session_id: active.id,
        generation: active.generation,
        reason: EndReason::Expired,
    };
    let fresh = next_session(active, at(10));
    read_only(
        store.begin_create(&fresh, Some(&replacing)).await.map(drop),
        "begin_create",
    );
    let other = new_session(&fresh_chat("ro-new"), at(10));
    read_only(
        store.begin_create(&other, None).await.map(drop),
        "begin_create (new chat)",
    );
    let touch = Touch {
        last_used_at: at(11),
        expires_at: at(99),
        idle_ttl: Duration::from_secs(88),
    };
    read_only(store.touch(&active.id, touch).await.map(drop), "touch");
    read_only(
        store
            .end(
                &active.id,
                EndReason::Stopped,
                at(12),
                WorkspaceFate::Delete,
            )
            .await
            .map(drop),
        "end",
    );
    read_only(
        store.retire_workspace(&ended.workspace_id).await.map(drop),
        "retire_workspace",
    );
    read_only(
        store.forget_workspace(&ended.workspace_id).await.map(drop),
        "forget_workspace",
    );
    read_only(store.purge_ended(at(1000)).await.map(drop), "purge_ended");
    read_only(store.ping().await, "ping (readiness needs writes)");

    assert_eq!(
        store.get_active(&active.chat_id).await.unwrap(),
        Some(active.clone())
    );
    assert_eq!(store.get(&ended.id).await.unwrap(), Some(ended.clone()));
    assert_eq!(store.get(&fresh.id).await.unwrap(), None);
    assert_eq!(store.count_hibernated().await.unwrap(), 1);
    let kept = store.get_workspace(&ended.chat_id).await.unwrap();
    assert!(kept.as_ref().is_some_and(|w| w.is_hibernated()), "{kept:?}");
}

/// After writes were refused, a normal open finds exactly what was there.
async fn nothing_was_lost(path: &Path, active: &Session, ended: &Session) {
    let store = common::open(path).await;
    assert_eq!(store.list_active().await.unwrap(), vec![active.clone()]);
    assert_eq!(store.get(&ended.id).await.unwrap(), Some(ended.clone()));
    // And it is writable again.
    store
        .begin_create(&new_session(&fresh_chat("ro-after"), at(20)), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn mode_ro_refuses_writes_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let (active, ended) = seed(&path).await;

    let url = format!("sqlite://{}?mode=ro", path.display());
    let store = SqliteSessionStore::open(&url, SqliteStoreOptions::default(), Arc::new(NoopTracer))
        .await
        .unwrap();
    writes_are_refused(&store, &active, &ended).await;
    store.close().await;

    nothing_was_lost(&path, &active, &ended).await;
}

/// Clears the immutable attribute however the test ends, so the temporary
/// directory can be removed.
struct Immutable<'a>(&'a Path);

impl<'a> Immutable<'a> {
    fn set(path: &'a Path) -> Result<Self, String> {
        let out = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Self(path))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Immutable<'_> {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
    }
}

#[tokio::test]
async fn an_immutable_file_refuses_writes_even_to_root_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let (active, ended) = seed(&path).await;

    let guard = match Immutable::set(&path) {
        Ok(guard) => guard,
        Err(why) => {
            // Only filesystems without the attribute (overlay, tmpfs) get
            // here; the `mode=ro` test above still covers the store's side.
            eprintln!(
                "SKIPPED: chattr +i unsupported on {}: {why}",
                path.display()
            );
            return;
        }
    };
    // Proof that root really cannot write it.
    assert!(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .is_err()
    );

    let store = common::open(&path).await;
    writes_are_refused(&store, &active, &ended).await;
    store.close().await;
    drop(guard);

    nothing_was_lost(&path, &active, &ended).await;
}

/// A store whose files stop taking writes while it is open (disk full,
/// the file made immutable): writes fail `Unavailable`, and once the files
/// take writes again every write works at the first try, without a
/// restart. Neither a failed COMMIT (sqlx still counts the transaction
/// open) nor a connection SQLite opened read-only while the file was
/// protected may stay in the pool.
#[tokio::test]
async fn writes_work_again_once_the_open_files_take_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let (active, _) = seed(&path).await;
    let store = common::open(&path).await;
    let wal = path.with_extension("db-wal");
    store
        .begin_create(&new_session(&fresh_chat("ro-before"), at(3)), None)
        .await
        .unwrap();
    let guards = match (Immutable::set(&path), Immutable::set(&wal)) {
        (Ok(db), Ok(wal)) => (db, wal),
        (Err(why), _) | (_, Err(why)) => {
            eprintln!("SKIPPED: chattr +i unsupported: {why}");
            return;
        }
    };
    let touch = |n: i64| Touch {
        last_used_at: at(n),
        expires_at: at(99),
        idle_ttl: Duration::from_secs(60),
    };
    let unavailable = |r: Result<(), StoreError>, call: &str| {
        assert!(
            matches!(r, Err(StoreError::Unavailable(_))),
            "{call}: {r:?}"
        );
    };
    for attempt in 4..6 {
        let create = store
            .begin_create(&new_session(&fresh_chat("ro-while"), at(attempt)), None)
            .await;
        unavailable(create.map(drop), "begin_create");
        unavailable(
            store.touch(&active.id, touch(attempt)).await.map(drop),
            "touch",
        );
    }
    drop(guards);

    let touched = store.touch(&active.id, touch(7)).await;
    assert!(
        matches!(touched, Ok(Some(_))),
        "the first touch after the fault: {touched:?}"
    );
    let made = store
        .begin_create(&new_session(&fresh_chat("ro-after-lift"), at(8)), None)
        .await;
    assert!(made.is_ok(), "begin_create after the fault: {made:?}");
    store.close().await;
}
