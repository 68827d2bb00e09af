//! What the SQLite store keeps and how: rows read back exactly, the schema
//! (not only code) enforces one active session and one live workspace per
//! chat, two processes on one file race safely, corrupt rows are named, and
//! retention.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, NewSession, Session, SessionId, SessionStatus, SpecHash,
    SpecOverrides, Workspace, WorkspaceFate, WorkspaceId, WorkspaceStatus, WorkspaceUse,
};
use sandboxer_core::port::{Replacing, SessionStore, StoreError, Touch};
use sandboxer_core::testing::store_contract::{at, fresh_chat, new_session, next_session};
use sandboxer_sqlite::SqliteSessionStore;

fn replacing(s: &Session, reason: EndReason) -> Replacing {
    Replacing {
        session_id: s.id,
        generation: s.generation,
        reason,
    }
}

#[tokio::test]
async fn a_session_reads_back_exactly_as_written_to_the_millisecond() {
    let (store, _dir) = common::fresh().await;
    let created = chrono::Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
        + chrono::Duration::milliseconds(123);
    let new = NewSession {
        id: SessionId::new(),
        chat_id: ChatId::parse("user@host.example:-1001234567_x.y").unwrap(),
        workspace: WorkspaceUse::Fresh(WorkspaceId::new()),
        image: "registry.local:5000/team/python:3.12-slim@sha256:abc".into(),
        spec_hash: SpecHash::from_stored("deadbeef0123456789abcdef"),
        overrides: SpecOverrides {
            image: None,
            env: [
                ("PATH".to_owned(), "/opt/bin:/usr/bin".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
            .into(),
        },
        idle_ttl: Duration::from_millis(1_234_567),
        created_at: created,
        expires_at: created + Duration::from_millis(1_234_567),
    };
    let s = store.begin_create(&new, None).await.unwrap();
    assert_eq!(
        s,
        Session {
            id: new.id,
            chat_id: new.chat_id.clone(),
            workspace_id: new.workspace.id(),
            container_id: None,
            image: new.image.clone(),
            spec_hash: new.spec_hash.clone(),
            overrides: new.overrides.clone(),
            generation: 1,
            idle_ttl: new.idle_ttl,
            created_at: new.created_at,
            last_used_at: new.created_at,
            expires_at: new.expires_at,
            status: SessionStatus::Creating,
            end_reason: None,
            ended_at: None,
        }
    );
    assert_eq!(store.get(&s.id).await.unwrap(), Some(s.clone()));

    let container =
        ContainerId::new("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0");
    let running = store.mark_running(&s.id, &container).await.unwrap();
    let used = created + chrono::Duration::milliseconds(60_001);
    let touch = Touch {
        last_used_at: used,
        expires_at: used + Duration::from_millis(999),
        idle_ttl: Duration::from_millis(999),
    };
    let touched = store.touch(&s.id, touch).await.unwrap().unwrap();
    let ended_at = used + chrono::Duration::milliseconds(7);
    let until = ended_at + chrono::Duration::milliseconds(604_800_001);
    assert!(
        store
            .end(
                &s.id,
                EndReason::CreateInterrupted,
                ended_at,
                WorkspaceFate::Keep { until }
            )
            .await
            .unwrap()
    );
    let expected = Session {
        container_id: Some(container),
        last_used_at: touch.last_used_at,
        expires_at: touch.expires_at,
        idle_ttl: touch.idle_ttl,
        status: SessionStatus::Ended,
        end_reason: Some(EndReason::CreateInterrupted),
        ended_at: Some(ended_at),
        ..s
    };
    assert_eq!(running.container_id, expected.container_id);
    assert_eq!(touched.expires_at, expected.expires_at);
    assert_eq!(store.get(&expected.id).await.unwrap(), Some(expected));
    assert_eq!(
        store.get_workspace(&new.chat_id).await.unwrap(),
        Some(Workspace {
            id: new.workspace.id(),
            chat_id: new.chat_id.clone(),
            created_at: created,
            created_by: new.id,
            status: WorkspaceStatus::Live,
            hibernated_at: Some(ended_at),
            retained_until: Some(until),
        })
    );
}

#[tokio::test]
async fn sub_millisecond_times_are_kept_to_the_millisecond_everywhere() {
    let (store, _dir) = common::fresh().await;
    let mut new = new_session(&fresh_chat("precision"), at(0));
    new.created_at += chrono::Duration::nanoseconds(1_999_999);
    new.expires_at += chrono::Duration::microseconds(5_500);
    let returned = store.begin_create(&new, None).await.unwrap();
    // What the call returns is what a later read sees: no hidden precision.
    assert_eq!(
        returned.created_at,
        at(0) + chrono::Duration::milliseconds(1)
    );
    assert_eq!(
        returned.expires_at,
        new.expires_at - chrono::Duration::microseconds(500)
    );
    assert_eq!(store.get(&new.id).await.unwrap(), Some(returned));
}

#[tokio::test]
async fn the_database_itself_refuses_a_second_active_session() {
    let (store, dir) = common::fresh().await;
    let chat = fresh_chat("schema");
    store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();

    // Bypass the store: a raw insert of a second active row for the chat.
    let mut conn = common::raw(&common::db_path(&dir)).await;
    let insert = "INSERT INTO sessions (id, chat_id, container_id, image, spec_hash, \
                  generation, idle_ttl_ms, created_at, last_used_at, expires_at, status, \
                  end_reason, ended_at, workspace_id) \
                  VALUES (?1, ?2, 'c', 'img', 'hash', ?3, 1000, 0, 0, 1000, ?4, \
                  CASE ?4 WHEN 'ended' THEN 'stopped' END, CASE ?4 WHEN 'ended' THEN 0 END, ?1)";
    for (generation, status) in [(2, "running"), (2, "creating")] {
        let err = sqlx::query(insert)
            .bind(SessionId::new().to_string())
            .bind(chat.as_str())
            .bind(generation)
            .bind(status)
            .execute(&mut conn)
            .await
            .unwrap_err();
        let db = err.as_database_error().expect("a database error");
        assert!(db.is_unique_violation(), "{db}");
        // SQLite names the partial index by its column.
        assert_eq!(db.message(), "UNIQUE constraint failed: sessions.chat_id");
    }
    // An ended row may sit beside the active one, but not at a used generation.
    let err = sqlx::query(insert)
        .bind(SessionId::new().to_string())
        .bind(chat.as_str())
        .bind(1)
        .bind("ended")
        .execute(&mut conn)
        .await
        .unwrap_err();
    let db = err.as_database_error().expect("a database error");
    assert_eq!(
        db.message(),
        "UNIQUE constraint failed: sessions.chat_id, sessions.generation"
    );
    assert_eq!(store.count_active().await.unwrap(), 1);
}

#[tokio::test]
async fn a_conflict_says_why() {
    let (store, _dir) = common::fresh().await;
    let chat = fresh_chat("why");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    match store.begin_create(&new_session(&chat, at(1)), None).await {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains("already has an active session"), "{m}");
            assert!(m.contains(chat.as_str()), "{m}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let stale = Replacing {
        generation: 7,
        ..replacing(&s1, EndReason::Expired)
    };
    match store
        .begin_create(&new_session(&chat, at(2)), Some(&stale))
        .await
    {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains("no longer active at generation 7"), "{m}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // The same session id twice is a conflict too, not a crash.
    let mut dup = new_session(&fresh_chat("why-dup"), at(3));
    dup.id = s1.id;
    assert!(matches!(
        store.begin_create(&dup, None).await,
        Err(StoreError::Conflict(m)) if m.contains("id already exists")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_race_and_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    // Two pools on one file behave like two service processes.
    let a: Arc<dyn SessionStore> = Arc::new(common::open(&path).await);
    let b: Arc<dyn SessionStore> = Arc::new(common::open(&path).await);
    let chat = fresh_chat("two-processes");

    let create = |store: &Arc<dyn SessionStore>, old: Option<Replacing>, new: NewSession| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.begin_create(&new, old.as_ref()).await })
    };
    // Fresh workspaces first, then replacements on the winner's.
    let race = async |old: Option<&Session>| -> Vec<Result<Session, StoreError>> {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = if i % 2 == 0 { &a } else { &b };
                match old {
                    None => create(store, None, new_session(&chat, at(0))),
                    Some(s) => create(
                        store,
                        Some(replacing(s, EndReason::Expired)),
                        next_session(s, at(10)),
                    ),
                }
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    };
    let winner = |results: &[Result<Session, StoreError>]| -> Session {
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{results:#?}");
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(matches!(r, StoreError::Conflict(_)), "a loser got {r:?}");
        }
        won[0].clone()
    };

    let first = winner(&race(None).await);
    assert_eq!(first.generation, 1);
    assert_eq!(a.get_active(&chat).await.unwrap(), Some(first.clone()));
    assert_eq!(b.get_active(&chat).await.unwrap(), Some(first.clone()));

    let second = winner(&race(Some(&first)).await);
    assert_eq!(second.generation, 2);
    assert_eq!(b.get_active(&chat).await.unwrap(), Some(second.clone()));
    assert_eq!(a.count_active().await.unwrap(), 1);
    let old = a.get(&first.id).await.unwrap().unwrap();
    assert_eq!(old.status, SessionStatus::Ended);
    let live = b.get_workspace(&chat).await.unwrap().unwrap();
    assert_eq!((live.id, live.created_by), (first.workspace_id, first.id));
    assert_eq!(a.list_workspaces().await.unwrap(), vec![live]);
}

#[tokio::test]
async fn corrupt_rows_are_reported_with_their_id() {
    let (store, dir) = common::fresh().await;
    let mut conn = common::raw(&common::db_path(&dir)).await;
    let insert = "INSERT INTO sessions (id, chat_id, image, spec_hash, generation, idle_ttl_ms, \
                  created_at, last_used_at, expires_at, status, workspace_id) \
                  VALUES (?1, ?2, 'img', 'hash', 1, 1000, 0, 0, 1000, ?3, \
                  '0197a5d0-0000-7000-8000-000000000001')";
    sqlx::query(insert)
        .bind("not-a-uuid")
        .bind("chat-a")
        .bind("running")
        .execute(&mut conn)
        .await
        .unwrap_err(); // running needs a container id: the schema says so
    sqlx::query(insert)
        .bind("not-a-uuid")
        .bind("chat-a")
        .bind("creating")
        .execute(&mut conn)
        .await
        .unwrap();
    match store.list_active().await {
        Err(StoreError::Other(m)) => {
            assert!(m.contains("\"not-a-uuid\""), "{m}");
            assert!(m.contains("corrupt session row"), "{m}");
        }
        other => panic!("expected Other, got {other:?}"),
    }

    // A status the schema would refuse, written with the checks off.
    let zombie = SessionId::new();
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(insert)
        .bind(zombie.to_string())
        .bind("chat-b")
        .bind("zombie")
        .execute(&mut conn)
        .await
        .unwrap();
    match store.get(&zombie).await {
        Err(StoreError::Other(m)) => {
            assert!(m.contains(&zombie.to_string()), "{m}");
            assert!(m.contains("zombie"), "{m}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
}

#[tokio::test]
async fn purge_ended_removes_old_ended_rows_but_keeps_each_chats_latest() {
    let (store, _dir) = common::fresh().await;
    let (a, b, c) = (
        fresh_chat("purge-a"),
        fresh_chat("purge-b"),
        fresh_chat("purge-c"),
    );
    // Chat a: two replaced sessions (ended at 10 and 20), one active.
    let a1 = store
        .begin_create(&new_session(&a, at(0)), None)
        .await
        .unwrap();
    let a2 = store
        .begin_create(
            &next_session(&a1, at(10)),
            Some(&replacing(&a1, EndReason::Expired)),
        )
        .await
        .unwrap();
    let a3 = store
        .begin_create(
            &next_session(&a2, at(20)),
            Some(&replacing(&a2, EndReason::SpecChanged)),
        )
        .await
        .unwrap();
    // Chat b: its only session ended long ago.
    let b1 = store
        .begin_create(&new_session(&b, at(0)), None)
        .await
        .unwrap();
    store
        .end(&b1.id, EndReason::Stopped, at(5), WorkspaceFate::Delete)
        .await
        .unwrap();
    // Chat c: replaced after the cut-off.
    let c1 = store
        .begin_create(&new_session(&c, at(0)), None)
        .await
        .unwrap();
    let c2 = store
        .begin_create(
            &next_session(&c1, at(100)),
            Some(&replacing(&c1, EndReason::Expired)),
        )
        .await
        .unwrap();

    assert_eq!(store.purge_ended(at(50)).await.unwrap(), 2);
    assert_eq!(store.get(&a1.id).await.unwrap(), None);
    assert_eq!(store.get(&a2.id).await.unwrap(), None);
    for kept in [&a3, &b1, &c1, &c2] {
        assert!(
            store.get(&kept.id).await.unwrap().is_some(),
            "{:?} went",
            kept.id
        );
    }
    assert_eq!(store.count_active().await.unwrap(), 2);
    // Purging again finds nothing more; the generations keep counting.
    assert_eq!(store.purge_ended(at(50)).await.unwrap(), 0);
    let b2 = store
        .begin_create(&new_session(&b, at(60)), None)
        .await
        .unwrap();
    assert_eq!(b2.generation, 2);
    let a4 = store
        .begin_create(
            &next_session(&a3, at(60)),
            Some(&replacing(&a3, EndReason::Expired)),
        )
        .await
        .unwrap();
    assert_eq!(a4.generation, 4);
}

#[tokio::test]
async fn a_second_store_sees_writes_at_once() {
    // Read-after-write across connections: reads go to other connections
    // than writes, so each read must see the latest commit.
    let (store, dir) = common::fresh().await;
    let other: SqliteSessionStore = common::open(&common::db_path(&dir)).await;
    let chat = fresh_chat("visibility");
    for i in 0..50 {
        let s = store
            .begin_create(&new_session(&chat, at(i)), None)
            .await
            .unwrap();
        assert_eq!(
            store.get_active(&chat).await.unwrap().map(|x| x.id),
            Some(s.id)
        );
        assert_eq!(
            other.get_active(&chat).await.unwrap().map(|x| x.id),
            Some(s.id)
        );
        store
            .end(&s.id, EndReason::Stopped, at(i), WorkspaceFate::Delete)
            .await
            .unwrap();
        assert_eq!(store.get_active(&chat).await.unwrap(), None);
    }
}
