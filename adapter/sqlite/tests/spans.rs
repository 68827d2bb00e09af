//! Every store call is a CLIENT span named `SqliteSessionStore.<op>`, child
//! of the caller's span, with the database attributes and the ids it knows;
//! a failed call marks its span failed with the store's `error.type`.

mod common;

use std::sync::Arc;

use sandboxer_core::domain::{ContainerId, EndReason, PoolStatus, SessionId, WorkspaceFate};
use sandboxer_core::port::{Replacing, SessionStore, SpanKind, Touch, Tracer, tracer};
use sandboxer_core::testing::store_contract::{
    at, fresh_chat, fresh_fingerprint, keep_until, new_session, next_session, pool_hash,
    pool_member,
};
use sandboxer_core::testing::{RecordedSpan, RecordingTracer, SpanStatus};
use sandboxer_core::trace::attr::{ErrorClass, key, result};
use sandboxer_core::trace::in_span;
use sandboxer_sqlite::telemetry::{Op, attr, op};

fn assert_db_span(span: &RecordedSpan, operation: &str) {
    assert_eq!(span.name, format!("SqliteSessionStore.{operation}"));
    assert_eq!(span.kind, SpanKind::Client, "{}", span.name);
    assert_eq!(
        span.str(attr::DB_SYSTEM_NAME),
        Some("sqlite"),
        "{}",
        span.name
    );
    assert_eq!(
        span.str(attr::DB_OPERATION_NAME),
        Some(operation),
        "{}",
        span.name
    );
}

#[tokio::test]
async fn each_call_is_a_client_span_under_the_callers_span() {
    let dir = tempfile::tempdir().unwrap();
    let tracing = RecordingTracer::new();
    let store = common::open_with(
        &common::db_path(&dir),
        Default::default(),
        Arc::new(tracing.clone()),
    )
    .await;
    let chat = fresh_chat("spans");
    let new = new_session(&chat, at(0));

    let mut parent = tracer::start(&tracing, "Test.parent", SpanKind::Internal);
    in_span(parent.as_ref(), async {
        store.ping().await.unwrap();
        store.get_active(&chat).await.unwrap();
        let s = store.begin_create(&new, None).await.unwrap();
        store
            .mark_running(&s.id, &ContainerId::new("c"))
            .await
            .unwrap();
        let touch = Touch {
            last_used_at: at(1),
            expires_at: at(2),
            idle_ttl: std::time::Duration::from_secs(1),
        };
        store.touch(&s.id, touch).await.unwrap();
        store.get(&s.id).await.unwrap();
        store.list_active().await.unwrap();
        store.list_expired(at(5)).await.unwrap();
        store.count_active().await.unwrap();
        store
            .end(&s.id, EndReason::Hibernated, at(3), keep_until(9))
            .await
            .unwrap();
        store.get_latest(&chat).await.unwrap();
        store.get_workspace(&chat).await.unwrap();
        store.list_workspaces().await.unwrap();
        store.count_hibernated().await.unwrap();
        store.retire_workspace(&s.workspace_id).await.unwrap();
        store.forget_workspace(&s.workspace_id).await.unwrap();
        store.purge_ended(at(0)).await.unwrap();
    })
    .await;
    parent.end();

    let parent = tracing.one("Test.parent");
    let children = tracing.children_of(&parent);
    let names: Vec<_> = children.iter().map(|s| s.name.as_str()).collect();
    let expected = [
        op::PING,
        op::GET_ACTIVE,
        op::BEGIN_CREATE,
        op::MARK_RUNNING,
        op::TOUCH,
        op::GET,
        op::LIST_ACTIVE,
        op::LIST_EXPIRED,
        op::COUNT_ACTIVE,
        op::END,
        op::GET_LATEST,
        op::GET_WORKSPACE,
        op::LIST_WORKSPACES,
        op::COUNT_HIBERNATED,
        op::RETIRE_WORKSPACE,
        op::FORGET_WORKSPACE,
        op::PURGE_ENDED,
    ];
    assert_eq!(names, expected.map(|o| o.span_name));
    for (span, o) in children.iter().zip(expected) {
        assert_db_span(span, o.name);
        assert_eq!(span.status, SpanStatus::Unset, "{}", span.name);
    }
    assert_eq!(tracing.spans().len(), expected.len() + 1, "no stray spans");

    let id = new.id.to_string();
    let workspace = new.workspace.id().to_string();
    let by_name = |o: Op| children.iter().find(|s| s.name == o.span_name).unwrap();
    let created = by_name(op::BEGIN_CREATE);
    assert_eq!(created.str(key::CHAT_ID), Some(chat.as_str()));
    assert_eq!(created.str(key::SESSION_ID), Some(id.as_str()));
    assert_eq!(created.int(key::GENERATION), Some(1));
    assert_eq!(created.str(key::WORKSPACE_ID), Some(workspace.as_str()));
    let lookup = by_name(op::GET_ACTIVE);
    assert_eq!(lookup.str(key::CHAT_ID), Some(chat.as_str()));
    assert_eq!(lookup.str(key::SESSION_ID), None, "nothing was found");
    for o in [op::MARK_RUNNING, op::TOUCH, op::GET, op::END] {
        assert_eq!(
            by_name(o).str(key::SESSION_ID),
            Some(id.as_str()),
            "{}",
            o.name
        );
    }
    assert_eq!(by_name(op::TOUCH).str(key::CHAT_ID), Some(chat.as_str()));
    assert_eq!(
        by_name(op::LIST_ACTIVE).int(attr::DB_RESPONSE_RETURNED_ROWS),
        Some(1)
    );
    assert_eq!(
        by_name(op::LIST_EXPIRED).int(attr::DB_RESPONSE_RETURNED_ROWS),
        Some(1)
    );
    let latest = by_name(op::GET_LATEST);
    assert_eq!(latest.str(key::SESSION_ID), Some(id.as_str()));
    assert_eq!(latest.str(key::CHAT_ID), Some(chat.as_str()));
    let found = by_name(op::GET_WORKSPACE);
    assert_eq!(found.str(key::CHAT_ID), Some(chat.as_str()));
    assert_eq!(found.str(key::WORKSPACE_ID), Some(workspace.as_str()));
    assert_eq!(
        by_name(op::LIST_WORKSPACES).int(attr::DB_RESPONSE_RETURNED_ROWS),
        Some(1)
    );
    for o in [op::RETIRE_WORKSPACE, op::FORGET_WORKSPACE] {
        assert_eq!(
            by_name(o).str(key::WORKSPACE_ID),
            Some(workspace.as_str()),
            "{}",
            o.name
        );
    }
}

#[tokio::test]
async fn pool_calls_are_client_spans_with_their_ids() {
    let (tracing, store, _dir) = traced_store().await;
    let fp = fresh_fingerprint("spans-pool");
    let member = pool_member(&fp, 0, PoolStatus::Warming);
    let chat = fresh_chat("spans-pool");
    let new = new_session(&chat, at(10));

    let mut parent = tracer::start(&tracing, "Test.parent", SpanKind::Internal);
    in_span(parent.as_ref(), async {
        store.add_pool_member(&member).await.unwrap();
        let container = ContainerId::new("c-pool");
        assert!(
            store
                .mark_pool_ready(&member.session_id, &container)
                .await
                .unwrap()
        );
        store.list_pool().await.unwrap();
        store
            .claim_pool_member(&pool_hash(), &fp, &new)
            .await
            .unwrap()
            .unwrap();
        store.remove_pool_member(&member.session_id).await.unwrap();
    })
    .await;
    parent.end();

    let parent = tracing.one("Test.parent");
    let children = tracing.children_of(&parent);
    let expected = [
        op::ADD_POOL_MEMBER,
        op::MARK_POOL_READY,
        op::LIST_POOL,
        op::CLAIM_POOL_MEMBER,
        op::REMOVE_POOL_MEMBER,
    ];
    let names: Vec<_> = children.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, expected.map(|o| o.span_name));
    for (span, o) in children.iter().zip(expected) {
        assert_db_span(span, o.name);
        assert_eq!(span.status, SpanStatus::Unset, "{}", span.name);
    }

    let id = member.session_id.to_string();
    let workspace = member.workspace_id.to_string();
    let by_name = |o: Op| children.iter().find(|s| s.name == o.span_name).unwrap();
    let added = by_name(op::ADD_POOL_MEMBER);
    assert_eq!(added.str(key::SESSION_ID), Some(id.as_str()));
    assert_eq!(added.str(key::WORKSPACE_ID), Some(workspace.as_str()));
    for o in [op::MARK_POOL_READY, op::REMOVE_POOL_MEMBER] {
        assert_eq!(
            by_name(o).str(key::SESSION_ID),
            Some(id.as_str()),
            "{}",
            o.name
        );
    }
    assert_eq!(
        by_name(op::LIST_POOL).int(attr::DB_RESPONSE_RETURNED_ROWS),
        Some(1)
    );
    let claimed = by_name(op::CLAIM_POOL_MEMBER);
    assert_eq!(claimed.str(key::CHAT_ID), Some(chat.as_str()));
    assert_eq!(claimed.str(key::SESSION_ID), Some(id.as_str()));
    assert_eq!(claimed.str(key::WORKSPACE_ID), Some(workspace.as_str()));
    assert_eq!(claimed.int(key::GENERATION), Some(1));

    // A claim for a chat that has a sandbox is a failed span.
    tracing.clear();
    store
        .add_pool_member(&pool_member(&fp, 1, PoolStatus::Ready))
        .await
        .unwrap();
    store
        .claim_pool_member(&pool_hash(), &fp, &new_session(&chat, at(20)))
        .await
        .unwrap_err();
    assert_failed(
        &tracing.one(op::CLAIM_POOL_MEMBER.span_name),
        ErrorClass::StoreConflict.as_str(),
        "already has an active session",
    );
}

#[tokio::test]
async fn a_call_outside_any_span_starts_a_trace() {
    let (tracing, store, _dir) = traced_store().await;
    store.ping().await.unwrap();
    let span = tracing.one(op::PING.span_name);
    assert_eq!(span.parent, None);
    assert_db_span(&span, "ping");
}

async fn traced_store() -> (
    RecordingTracer,
    sandboxer_sqlite::SqliteSessionStore,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let tracing = RecordingTracer::new();
    let tracer: Arc<dyn Tracer> = Arc::new(tracing.clone());
    let store =
        common::open_with(&common::db_path(&dir), common::short_busy_timeout(), tracer).await;
    (tracing, store, dir)
}

fn assert_failed(span: &RecordedSpan, error: &str, says: &str) {
    let SpanStatus::Error(description) = &span.status else {
        panic!("{} is not failed: {span:?}", span.name);
    };
    assert!(description.contains(says), "{}: {description}", span.name);
    assert_eq!(span.error_type(), Some(error), "{}", span.name);
    assert_eq!(span.str(key::RESULT), Some(result::FAILED), "{}", span.name);
}

#[tokio::test]
async fn failed_calls_mark_their_span_with_the_error_type() {
    let (tracing, store, dir) = traced_store().await;
    let chat = fresh_chat("span-errors");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .unwrap();
    tracing.clear();

    // Conflict.
    store
        .begin_create(&new_session(&chat, at(1)), None)
        .await
        .unwrap_err();
    let span = tracing.one(op::BEGIN_CREATE.span_name);
    assert_db_span(&span, "begin_create");
    assert_failed(
        &span,
        ErrorClass::StoreConflict.as_str(),
        "already has an active session",
    );

    // Not found.
    let unknown = SessionId::new();
    store
        .mark_running(&unknown, &ContainerId::new("c"))
        .await
        .unwrap_err();
    let span = tracing.one(op::MARK_RUNNING.span_name);
    assert_failed(&span, ErrorClass::StoreError.as_str(), &unknown.to_string());
    assert_eq!(
        span.str(key::SESSION_ID),
        Some(unknown.to_string().as_str())
    );

    // Unavailable: another connection holds the write lock.
    tracing.clear();
    let mut holder = common::raw(&common::db_path(&dir)).await;
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    let replacing = Replacing {
        session_id: s1.id,
        generation: 1,
        reason: EndReason::Expired,
    };
    store
        .begin_create(&next_session(&s1, at(2)), Some(&replacing))
        .await
        .unwrap_err();
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let span = tracing.one(op::BEGIN_CREATE.span_name);
    assert_failed(
        &span,
        ErrorClass::StoreUnavailable.as_str(),
        "database is locked",
    );
    assert_eq!(span.str(key::CHAT_ID), Some(chat.as_str()));

    // Touching an ended session is not a failure.
    tracing.clear();
    store
        .end(&s1.id, EndReason::Stopped, at(3), WorkspaceFate::Delete)
        .await
        .unwrap();
    let touch = Touch {
        last_used_at: at(4),
        expires_at: at(5),
        idle_ttl: std::time::Duration::from_secs(1),
    };
    assert_eq!(store.touch(&s1.id, touch).await.unwrap(), None);
    assert!(!tracing.one(op::TOUCH.span_name).is_error());
}
