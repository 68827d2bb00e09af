//! The warm pool on SQLite beyond the contract: the schema itself keeps a
//! ready member with its container and one member per workspace, conflicts
//! say why, a claim changes all three tables or none, two processes on one
//! file never claim one member twice, and corrupt rows are named.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use sandboxer_core::domain::{EndReason, PoolMember, PoolStatus, SessionId, SpecHash};
use sandboxer_core::port::{SessionStore, StoreError};
use sandboxer_core::testing::store_contract::{
    at, expected_claimed, fresh_chat, fresh_fingerprint, keep_until, new_session, pool_hash,
    pool_member,
};

const INSERT_MEMBER: &str = "INSERT INTO pool_members (session_id, workspace_id, container_id, \
     image, spec_hash, fingerprint, created_at, status) VALUES (?1, ?2, ?3, 'img', 'hash', 'fp', 0, ?4)";

#[tokio::test]
async fn the_database_itself_keeps_members_whole() {
    let (store, dir) = common::fresh().await;
    let mut conn = common::raw(&common::db_path(&dir)).await;
    let insert = |workspace: &str, container: Option<&'static str>, status: &'static str| {
        sqlx::query(INSERT_MEMBER)
            .bind(SessionId::new().to_string())
            .bind(workspace.to_owned())
            .bind(container)
            .bind(status)
    };
    let workspace = SessionId::new().to_string();
    for (container, status) in [(None, "ready"), (Some("c"), "claimed")] {
        let err = insert(&workspace, container, status)
            .execute(&mut conn)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
    }
    insert(&workspace, None, "warming")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = insert(&workspace, Some("c"), "ready")
        .execute(&mut conn)
        .await
        .unwrap_err();
    let db = err.as_database_error().expect("a database error");
    assert_eq!(
        db.message(),
        "UNIQUE constraint failed: pool_members.workspace_id"
    );

    // Through the port: the same refusals, in the store's words.
    let fp = fresh_fingerprint("schema-pool");
    let member = pool_member(&fp, 0, PoolStatus::Ready);
    store.add_pool_member(&member).await.unwrap();
    let same_workspace = PoolMember {
        workspace_id: member.workspace_id,
        ..pool_member(&fp, 1, PoolStatus::Warming)
    };
    match store.add_pool_member(&same_workspace).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("workspace id already exists"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let same_session = PoolMember {
        session_id: member.session_id,
        ..pool_member(&fp, 1, PoolStatus::Warming)
    };
    match store.add_pool_member(&same_session).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("session id already exists"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let no_container = PoolMember {
        container_id: None,
        ..pool_member(&fp, 2, PoolStatus::Ready)
    };
    match store.add_pool_member(&no_container).await {
        Err(StoreError::Other(m)) => assert!(m.contains("CHECK constraint failed"), "{m}"),
        other => panic!("expected Other, got {other:?}"),
    }
    assert_eq!(store.list_pool().await.unwrap().len(), 2);
}

#[tokio::test]
async fn claim_conflicts_say_why() {
    let (store, _dir) = common::fresh().await;
    let fp = fresh_fingerprint("why-pool");
    let member = pool_member(&fp, 0, PoolStatus::Ready);
    store.add_pool_member(&member).await.unwrap();
    let busy = fresh_chat("why-pool-active");
    store
        .begin_create(&new_session(&busy, at(0)), None)
        .await
        .unwrap();
    let asleep = fresh_chat("why-pool-hibernated");
    let s = store
        .begin_create(&new_session(&asleep, at(0)), None)
        .await
        .unwrap();
    store
        .end(&s.id, EndReason::Hibernated, at(1), keep_until(100))
        .await
        .unwrap();

    for (chat, says) in [
        (&busy, "already has an active session"),
        (&asleep, "already has a live workspace"),
    ] {
        match store
            .claim_pool_member(&pool_hash(), &fp, &new_session(chat, at(2)))
            .await
        {
            Err(StoreError::Conflict(m)) => {
                assert!(m.contains(says), "{m}");
                assert!(m.contains(chat.as_str()), "{m}");
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(store.list_pool().await.unwrap(), vec![member]);
}

#[tokio::test]
async fn a_claim_changes_all_three_tables_or_none() {
    let (store, dir) = common::fresh().await;
    let fp = fresh_fingerprint("atomic-pool");
    let member = pool_member(&fp, 0, PoolStatus::Ready);
    store.add_pool_member(&member).await.unwrap();
    let mut conn = common::raw(&common::db_path(&dir)).await;
    sqlx::query(
        "CREATE TRIGGER no_insert BEFORE INSERT ON workspaces \
         BEGIN SELECT RAISE(ABORT, 'workspaces refused'); END",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let chat = fresh_chat("atomic-pool");
    let new = new_session(&chat, at(10));
    let err = store
        .claim_pool_member(&pool_hash(), &fp, &new)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("workspaces refused"), "{err}");
    assert_eq!(store.list_pool().await.unwrap(), vec![member.clone()]);
    assert_eq!(store.get(&member.session_id).await.unwrap(), None);
    assert_eq!(store.get_active(&chat).await.unwrap(), None);

    sqlx::query("DROP TRIGGER no_insert")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_pool_member(&pool_hash(), &fp, &new)
            .await
            .unwrap(),
        Some(expected_claimed(&member, &new, 1))
    );
    assert_eq!(store.list_pool().await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_never_claim_one_member_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    // Two pools on one file behave like two service processes.
    let a: Arc<dyn SessionStore> = Arc::new(common::open(&path).await);
    let b: Arc<dyn SessionStore> = Arc::new(common::open(&path).await);
    let fp = fresh_fingerprint("two-processes-pool");
    let members: Vec<_> = (0..4)
        .map(|i| pool_member(&fp, i, PoolStatus::Ready))
        .collect();
    for m in &members {
        a.add_pool_member(m).await.unwrap();
    }

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let (fp, new) = (fp.clone(), new_session(&fresh_chat("two-pool"), at(10)));
            tokio::spawn(async move { store.claim_pool_member(&pool_hash(), &fp, &new).await })
        })
        .collect();
    let mut taken = Vec::new();
    for t in tasks {
        if let Some(s) = t.await.unwrap().unwrap() {
            taken.push(s.id);
        }
    }
    assert_eq!(taken.len(), members.len(), "{taken:?}");
    let taken: HashSet<_> = taken.into_iter().collect();
    let offered: HashSet<_> = members.iter().map(|m| m.session_id).collect();
    assert_eq!(taken, offered);
    assert_eq!(b.list_pool().await.unwrap(), vec![]);
    assert_eq!(a.count_active().await.unwrap(), 4);
}

#[tokio::test]
async fn corrupt_pool_rows_are_reported_with_their_id() {
    let (store, dir) = common::fresh().await;
    let mut conn = common::raw(&common::db_path(&dir)).await;
    sqlx::query(INSERT_MEMBER)
        .bind("not-a-uuid")
        .bind(SessionId::new().to_string())
        .bind(None::<&str>)
        .bind("warming")
        .execute(&mut conn)
        .await
        .unwrap();
    match store.list_pool().await {
        Err(StoreError::Other(m)) => {
            assert!(m.contains("corrupt pool member row \"not-a-uuid\""), "{m}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
    sqlx::query("DELETE FROM pool_members")
        .execute(&mut conn)
        .await
        .unwrap();

    // A ready member whose workspace id does not parse: a claim reports it
    // and takes nothing.
    let id = SessionId::new();
    sqlx::query(INSERT_MEMBER)
        .bind(id.to_string())
        .bind("not-a-workspace")
        .bind(Some("c"))
        .bind("ready")
        .execute(&mut conn)
        .await
        .unwrap();
    let chat = fresh_chat("corrupt-pool");
    match store
        .claim_pool_member(
            &SpecHash::from_stored("hash"),
            "fp",
            &new_session(&chat, at(0)),
        )
        .await
    {
        Err(StoreError::Other(m)) => {
            assert!(m.contains(&id.to_string()), "{m}");
            assert!(m.contains("not-a-workspace"), "{m}");
        }
        other => panic!("expected Other, got {other:?}"),
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pool_members")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 1);
    assert_eq!(store.get_active(&chat).await.unwrap(), None);
}
