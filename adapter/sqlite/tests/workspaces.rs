//! Workspaces on SQLite beyond the contract: the schema itself allows one
//! live workspace per chat, conflicts say why, `begin_create` and `end`
//! change both tables or neither, and corrupt rows are named.

mod common;

use sandboxer_core::domain::{
    ChatId, EndReason, WorkspaceFate, WorkspaceId, WorkspaceStatus, WorkspaceUse,
};
use sandboxer_core::port::{SessionStore, StoreError};
use sandboxer_core::testing::store_contract::{
    at, fresh_chat, keep_until, new_session, next_session, session_on,
};

const INSERT_WORKSPACE: &str = "INSERT INTO workspaces \
     (id, chat_id, created_at, created_by, status, hibernated_at, retained_until) \
     VALUES (?1, ?2, 0, ?1, ?3, ?4, ?5)";

#[tokio::test]
async fn the_database_itself_refuses_a_second_live_workspace() {
    let (store, dir) = common::fresh().await;
    let chat = fresh_chat("schema-ws");
    store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();

    let mut conn = common::raw(&common::db_path(&dir)).await;
    let insert = |status: &'static str, hibernated: Option<i64>, until: Option<i64>| {
        sqlx::query(INSERT_WORKSPACE)
            .bind(WorkspaceId::new().to_string())
            .bind(chat.as_str())
            .bind(status)
            .bind(hibernated)
            .bind(until)
    };
    let err = insert("live", None, None)
        .execute(&mut conn)
        .await
        .unwrap_err();
    let db = err.as_database_error().expect("a database error");
    assert!(db.is_unique_violation(), "{db}");
    assert_eq!(db.message(), "UNIQUE constraint failed: workspaces.chat_id");
    // Rows being deleted may sit beside the live one.
    insert("deleting", None, None)
        .execute(&mut conn)
        .await
        .unwrap();
    // Hibernated means both times or neither.
    let err = insert("deleting", Some(1), None)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
    assert_eq!(store.list_workspaces().await.unwrap().len(), 2);
}

#[tokio::test]
async fn workspace_conflicts_say_why() {
    let (store, _dir) = common::fresh().await;
    let (chat, other) = (fresh_chat("why-ws"), fresh_chat("why-ws-other"));
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    let o1 = store
        .begin_create(&new_session(&other, at(0)), None)
        .await
        .unwrap();
    store
        .end(&s1.id, EndReason::Hibernated, at(1), keep_until(100))
        .await
        .unwrap();

    match store.begin_create(&new_session(&chat, at(2)), None).await {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains("already has a live workspace"), "{m}");
            assert!(m.contains(chat.as_str()), "{m}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let foreign = session_on(&chat, WorkspaceUse::Kept(o1.workspace_id), at(3));
    match store.begin_create(&foreign, None).await {
        Err(StoreError::Conflict(m)) => {
            let says = format!(
                "workspace {} is not chat {chat}'s live workspace",
                o1.workspace_id
            );
            assert!(m.contains(&says), "{m}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
}

/// Makes the next write to `workspaces` fail, as a full disk or a bug
/// would, to show the session half is rolled back with it.
async fn refuse_workspace_writes(conn: &mut sqlx::SqliteConnection) {
    for (name, event) in [("no_insert", "INSERT"), ("no_update", "UPDATE")] {
        let trigger = format!(
            "CREATE TRIGGER {name} BEFORE {event} ON workspaces \
             BEGIN SELECT RAISE(ABORT, 'workspaces refused'); END"
        );
        sqlx::query(sqlx::AssertSqlSafe(trigger))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn begin_create_and_end_change_both_tables_or_neither() {
    let (store, dir) = common::fresh().await;
    let chat = fresh_chat("atomic");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    let live = store.get_workspace(&chat).await.unwrap();
    let mut conn = common::raw(&common::db_path(&dir)).await;
    refuse_workspace_writes(&mut conn).await;

    // A replacement whose workspace step fails leaves the old session active.
    let replacing = sandboxer_core::port::Replacing {
        session_id: s1.id,
        generation: s1.generation,
        reason: EndReason::SpecChanged,
    };
    let s2 = next_session(&s1, at(10));
    let err = store.begin_create(&s2, Some(&replacing)).await.unwrap_err();
    assert!(err.to_string().contains("workspaces refused"), "{err}");
    assert_eq!(store.get_active(&chat).await.unwrap(), Some(s1.clone()));
    assert_eq!(store.get(&s2.id).await.unwrap(), None);

    // An end whose workspace step fails leaves the session active.
    let err = store
        .end(&s1.id, EndReason::Hibernated, at(20), keep_until(100))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("workspaces refused"), "{err}");
    assert_eq!(store.get_active(&chat).await.unwrap(), Some(s1.clone()));
    assert_eq!(store.get_workspace(&chat).await.unwrap(), live);

    // A first session whose fresh workspace cannot be made is not stored.
    let elsewhere = new_session(&fresh_chat("atomic-other"), at(25));
    store.begin_create(&elsewhere, None).await.unwrap_err();
    assert_eq!(store.get(&elsewhere.id).await.unwrap(), None);

    sqlx::query("DROP TRIGGER no_insert")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        store
            .end(&s1.id, EndReason::Stopped, at(30), WorkspaceFate::Delete)
            .await
            .unwrap()
    );
    let row = store.list_workspaces().await.unwrap();
    assert_eq!(row.len(), 1);
    assert_eq!(row[0].status, WorkspaceStatus::Deleting);
}

#[tokio::test]
async fn corrupt_workspace_rows_are_reported_with_their_id() {
    let (store, dir) = common::fresh().await;
    let mut conn = common::raw(&common::db_path(&dir)).await;
    sqlx::query(INSERT_WORKSPACE)
        .bind("not-a-uuid")
        .bind("chat-a")
        .bind("live")
        .bind(None::<i64>)
        .bind(None::<i64>)
        .execute(&mut conn)
        .await
        .unwrap();
    match store.get_workspace(&ChatId::parse("chat-a").unwrap()).await {
        Err(StoreError::Other(m)) => {
            assert!(m.contains("corrupt workspace row \"not-a-uuid\""), "{m}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
    match store.list_workspaces().await {
        Err(StoreError::Other(m)) => assert!(m.contains("not-a-uuid"), "{m}"),
        other => panic!("expected Other, got {other:?}"),
    }
}
