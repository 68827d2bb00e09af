//! `CreateSandbox` against fakes: every row of the decision table, the
//! `expires_at` each leaves, single flight, failed creates and their spans.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{
    ContainerId, EndReason, NewSession, ReplaceReason, SessionId, SessionStatus, SpecOverrides,
    WorkspaceFate, WorkspaceId, WorkspaceUse,
};
use sandboxer_core::port::{RuntimeError, RuntimeSandbox, SessionStore, SpanKind, StoreError};
use sandboxer_core::testing::{RuntimeOp, StoreOp};
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::usecase::{CreateResult, CreateSandboxError, CreateSandboxInput, SpecChoice};
use support::{MAX_LIFETIME, TTL, World, chat};

#[tokio::test]
async fn no_session_creates_one_expiring_after_the_ttl() {
    let w = World::new();
    let c = chat("web:42");
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(out.result, CreateResult::Created);
    let s = &out.session;
    assert_eq!(s.status, SessionStatus::Running);
    assert_eq!(s.generation, 1);
    assert_eq!(s.expires_at, w.clock_now() + TTL);
    assert_eq!(w.runtime.calls(RuntimeOp::Create), 1);
    let container = w.runtime.container_of(s.id).unwrap();
    assert_eq!(Some(container.id), s.container_id);
    assert_eq!(container.sandbox.chat_id, c);
}

#[tokio::test]
async fn live_session_with_the_same_spec_is_reused_and_extended() {
    let w = World::new();
    let c = chat("C024BE91L");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.clock.advance(Duration::from_secs(600));
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(out.result, CreateResult::Reused);
    assert_eq!(out.session.id, first.id);
    assert_eq!(out.session.container_id, first.container_id);
    assert_eq!(out.session.expires_at, w.clock_now() + TTL);
    assert_eq!(out.session.last_used_at, w.clock_now());
    assert_eq!(w.runtime.calls(RuntimeOp::Create), 1);
}

#[tokio::test]
async fn missing_container_is_replaced_as_container_gone() {
    let w = World::new();
    let c = chat("-1001234567");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.runtime.remove_container(first.id);
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::ContainerGone)
    );
    assert_ne!(out.session.id, first.id);
    assert_eq!(out.session.generation, 2);
    assert_eq!(out.session.expires_at, w.clock_now() + TTL);
    let old = w.store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(old.status, SessionStatus::Ended);
    assert_eq!(old.end_reason, Some(EndReason::ContainerGone));
    assert_eq!(w.active().len(), 1);
}

#[tokio::test]
async fn exited_container_is_replaced_and_removed() {
    let w = World::new();
    let c = chat("exited");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.runtime.kill_container(first.id);
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::ContainerGone)
    );
    assert!(
        w.runtime.container_of(first.id).is_none(),
        "exited container left behind"
    );
    assert_eq!(w.runtime.containers().len(), 1);
}

#[tokio::test]
async fn idle_expiry_before_cleanup_reuses_a_running_container_and_max_lifetime_replaces() {
    let w = World::new();
    let c = chat("idle");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.clock.advance(TTL);
    // Cleanup has not come yet: the sandbox holds the chat's files and
    // processes, so it serves.
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(out.result, CreateResult::Reused);
    assert_eq!(out.session.id, first.id);
    assert_eq!(out.session.expires_at, w.clock_now() + TTL);
    w.clock.advance(MAX_LIFETIME);
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::MaxLifetime)
    );
    assert_eq!(out.session.workspace_id, first.workspace_id);
    assert_eq!(
        w.store.get(&first.id).await.unwrap().unwrap().end_reason,
        Some(EndReason::MaxLifetime)
    );
    assert!(w.runtime.container_of(first.id).is_none());
}

#[tokio::test]
async fn max_lifetime_caps_expiry_and_then_replaces() {
    let w = World::new();
    let c = chat("long-lived");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    let end_of_life = first.created_at + MAX_LIFETIME;
    // Used every 20 minutes: never idle, but the lifetime runs out.
    let step = Duration::from_secs(20 * 60);
    let mut last = first.clone();
    while w.clock_now() + step < end_of_life {
        w.clock.advance(step);
        let out = w.create.execute(World::declared(&c)).await.unwrap();
        assert_eq!(out.result, CreateResult::Reused);
        assert!(out.session.expires_at <= end_of_life);
        last = out.session;
    }
    assert_eq!(
        last.expires_at, end_of_life,
        "expiry is capped by max lifetime"
    );
    w.clock.advance(step);
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::MaxLifetime)
    );
    assert_eq!(out.session.expires_at, w.clock_now() + TTL);
}

#[tokio::test]
async fn a_different_spec_replaces_as_spec_changed() {
    let w = World::new();
    let c = chat("spec");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    let python = CreateSandboxInput {
        chat_id: c.clone(),
        spec: SpecChoice::Declared(SpecOverrides {
            image: Some("python:3".into()),
            ..Default::default()
        }),
        ttl: None,
    };
    let out = w.create.execute(python.clone()).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::SpecChanged)
    );
    assert_eq!(out.session.image, "python:3");
    assert_eq!(out.session.expires_at, w.clock_now() + TTL);
    assert_eq!(
        w.store.get(&first.id).await.unwrap().unwrap().end_reason,
        Some(EndReason::SpecChanged)
    );
    // Same declaration again: reused. Exec-style "whatever is there": reused too.
    assert_eq!(
        w.create.execute(python).await.unwrap().result,
        CreateResult::Reused
    );
    let existing = CreateSandboxInput {
        chat_id: c.clone(),
        spec: SpecChoice::Existing,
        ttl: None,
    };
    let out = w.create.execute(existing.clone()).await.unwrap();
    assert_eq!(out.result, CreateResult::Reused);
    // A replacement for a dead container keeps the chat's declared image.
    w.runtime.remove_container(out.session.id);
    let out = w.create.execute(existing).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::ContainerGone)
    );
    assert_eq!(out.session.image, "python:3");
}

#[tokio::test]
async fn a_requested_ttl_sets_expiry_and_bad_ones_are_refused() {
    let w = World::new();
    let c = chat("ttl");
    let input = CreateSandboxInput {
        chat_id: c.clone(),
        spec: SpecChoice::Declared(SpecOverrides::default()),
        ttl: Some(Duration::from_secs(60)),
    };
    let out = w.create.execute(input).await.unwrap();
    assert_eq!(
        out.session.expires_at,
        w.clock_now() + Duration::from_secs(60)
    );
    assert_eq!(out.session.idle_ttl, Duration::from_secs(60));
    let too_long = CreateSandboxInput {
        chat_id: c.clone(),
        spec: SpecChoice::Declared(SpecOverrides::default()),
        ttl: Some(MAX_LIFETIME + Duration::from_secs(1)),
    };
    let err = w.create.execute(too_long).await.unwrap_err();
    assert!(matches!(err, CreateSandboxError::InvalidTtl(_)), "{err:?}");
    assert_eq!(w.runtime.calls(RuntimeOp::Create), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_calls_make_one_container() {
    let w = Arc::new(World::new());
    w.runtime
        .set_delay(RuntimeOp::Create, Duration::from_millis(50));
    let c = chat("storm");
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let w = Arc::clone(&w);
            let c = c.clone();
            tokio::spawn(async move { w.create.execute(World::declared(&c)).await })
        })
        .collect();
    let mut sessions = Vec::new();
    for call in calls {
        sessions.push(call.await.unwrap().unwrap());
    }
    assert_eq!(w.runtime.calls(RuntimeOp::Create), 1);
    assert_eq!(w.runtime.containers().len(), 1);
    // Single flight in process: nobody even tried to open a second row.
    assert_eq!(w.store.calls(StoreOp::BeginCreate), 1);
    let first = &sessions[0].session;
    assert!(sessions.iter().all(|o| o.session.id == first.id));
    let created = sessions
        .iter()
        .filter(|o| o.result == CreateResult::Created)
        .count();
    assert_eq!(created, 1);
    assert_eq!(w.active().len(), 1);
    assert_eq!(w.guards.locked_chats(), 0);
}

#[tokio::test]
async fn failed_runtime_create_leaves_nothing_and_fails_the_span() {
    let w = World::new();
    let c = chat("broken");
    w.runtime.remove_image("sandboxer-base:latest");
    let err = w.create.execute(World::declared(&c)).await.unwrap_err();
    assert!(
        matches!(err, CreateSandboxError::Runtime(RuntimeError::ImageNotFound(ref i)) if i == "sandboxer-base:latest"),
        "{err:?}"
    );
    assert!(
        w.active().is_empty(),
        "an active row survived a failed create"
    );
    let rows = w.store.all();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].end_reason, Some(EndReason::CreateFailed));
    assert!(w.runtime.containers().is_empty());

    let span = w.tracer.one(span::CREATE_SANDBOX);
    assert!(span.is_error());
    assert_eq!(span.error_type(), Some("image_not_found"));
    assert_eq!(span.str(key::RESULT), Some("failed"));
    assert_eq!(span.str(key::CHAT_ID), Some("broken"));
    assert_eq!(
        span.str(key::SESSION_ID),
        Some(rows[0].id.to_string().as_str())
    );
    let docker = w.tracer.one("FakeSandboxRuntime.create");
    assert!(docker.is_child_of(&span));
    assert_eq!(docker.error_type(), Some("image_not_found"));
}

#[tokio::test]
async fn store_failure_after_create_removes_the_container() {
    let w = World::new();
    let c = chat("store-down");
    w.store.fail_next(
        StoreOp::MarkRunning,
        StoreError::Unavailable("disk full".into()),
    );
    let err = w.create.execute(World::declared(&c)).await.unwrap_err();
    assert!(matches!(
        err,
        CreateSandboxError::Store(StoreError::Unavailable(_))
    ));
    assert!(w.runtime.containers().is_empty());
    assert!(w.active().is_empty());
    assert_eq!(
        w.tracer.one(span::CREATE_SANDBOX).error_type(),
        Some("store_unavailable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_does_not_cut_a_create_in_half() {
    let w = Arc::new(World::new());
    w.runtime
        .set_delay(RuntimeOp::Create, Duration::from_millis(200));
    let c = chat("impatient");
    let caller = {
        let w = Arc::clone(&w);
        let c = c.clone();
        tokio::spawn(async move { w.create.execute(World::declared(&c)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let active = w.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].status, SessionStatus::Running);
    assert_eq!(w.runtime.containers().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_create_is_waited_for_then_reused() {
    let w = Arc::new(World::new());
    let c = chat("two-processes");
    // Another process opened a `creating` row and is making its container.
    let foreign = NewSession {
        id: SessionId::new(),
        chat_id: c.clone(),
        workspace: WorkspaceUse::Fresh(WorkspaceId::new()),
        image: "sandboxer-base:latest".into(),
        spec_hash: support::default_spec().hash(),
        overrides: SpecOverrides::default(),
        idle_ttl: TTL,
        created_at: w.clock_now(),
        expires_at: w.clock_now() + TTL,
    };
    let row = w.store.begin_create(&foreign, None).await.unwrap();
    let container = ContainerId::new("theirs");
    w.runtime.add_container(
        RuntimeSandbox {
            container_id: container.clone(),
            session_id: row.id,
            chat_id: c.clone(),
            workspace_id: row.workspace_id,
            generation: row.generation,
            created_at: row.created_at,
            running: true,
        },
        "sandboxer-base:latest",
    );
    let finisher = {
        let w = Arc::clone(&w);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            w.store.mark_running(&row.id, &container).await.unwrap();
        })
    };
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    finisher.await.unwrap();
    assert_eq!(out.result, CreateResult::Reused);
    assert_eq!(out.session.id, foreign.id);
    assert_eq!(w.runtime.calls(RuntimeOp::Create), 0);
    assert_eq!(w.active().len(), 1);
}

#[tokio::test]
async fn an_abandoned_creating_row_is_replaced() {
    let w = World::new();
    let c = chat("abandoned");
    let dead = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.store
        .end(
            &dead.id,
            EndReason::Stopped,
            w.clock_now(),
            WorkspaceFate::Keep {
                until: w.clock_now() + TTL,
            },
        )
        .await
        .unwrap();
    let mut stuck = dead.clone();
    stuck.id = SessionId::new();
    stuck.status = SessionStatus::Creating;
    stuck.container_id = None;
    stuck.generation = 2;
    w.store.insert(stuck.clone());
    w.clock.advance(Duration::from_secs(5));
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(
        out.result,
        CreateResult::Replaced(ReplaceReason::ContainerGone)
    );
    assert_eq!(out.session.generation, 3);
    let old = w.store.get(&stuck.id).await.unwrap().unwrap();
    assert_eq!(old.end_reason, Some(EndReason::ContainerGone));
}

#[tokio::test]
async fn create_span_carries_the_common_attributes() {
    let w = World::new();
    let c = chat("spans");
    let created = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.runtime.remove_container(created.id);
    let replaced = w.create.execute(World::declared(&c)).await.unwrap().session;
    let reused = w.create.execute(World::declared(&c)).await.unwrap().session;
    let spans = w.tracer.named(span::CREATE_SANDBOX);
    assert_eq!(spans.len(), 3);
    for (span, (result, session)) in spans.iter().zip([
        ("created", &created),
        ("replaced", &replaced),
        ("reused", &reused),
    ]) {
        assert_eq!(span.kind, SpanKind::Internal);
        assert!(!span.is_error());
        assert_eq!(
            span.parent, None,
            "a use case called outside any span starts a trace"
        );
        assert_eq!(span.str(key::RESULT), Some(result));
        assert_eq!(span.str(key::OPERATION), Some("create"));
        assert_eq!(span.str(key::CHAT_ID), Some("spans"));
        assert_eq!(
            span.str(key::SESSION_ID),
            Some(session.id.to_string().as_str())
        );
        let container = session.container_id.as_ref().map(ContainerId::to_string);
        assert_eq!(span.str(key::CONTAINER_ID), container.as_deref());
        assert_eq!(
            span.str(key::EXPIRES_AT),
            Some(sandboxer_core::domain::rfc3339(session.expires_at).as_str())
        );
    }
    assert_eq!(spans[1].str(key::REPLACE_REASON), Some("container_gone"));
    assert_eq!(spans[0].str(key::REPLACE_REASON), None);
    let creates = w.tracer.named("FakeSandboxRuntime.create");
    assert!(creates[0].is_child_of(&spans[0]));
    assert!(creates[1].is_child_of(&spans[1]));
    let inspects = w.tracer.named("FakeSandboxRuntime.inspect");
    assert!(inspects.iter().any(|i| i.is_child_of(&spans[2])));
}

#[tokio::test]
async fn a_runtime_that_does_not_answer_is_not_asked_again_to_undo() {
    let w = World::new();
    let c = chat("hung-docker");
    w.runtime.fail_next(
        RuntimeOp::Create,
        RuntimeError::Timeout("create container".into()),
    );
    let err = w.create.execute(World::declared(&c)).await.unwrap_err();
    assert!(
        matches!(err, CreateSandboxError::Runtime(RuntimeError::Timeout(_))),
        "{err:?}"
    );
    // One timeout, not one more per undo step: reconciliation removes what is left.
    assert_eq!(w.runtime.calls(RuntimeOp::Stop), 0);
    assert!(w.active().is_empty());
    assert_eq!(w.store.all()[0].end_reason, Some(EndReason::CreateFailed));
    assert_eq!(
        w.tracer.one(span::CREATE_SANDBOX).error_type(),
        Some("timeout")
    );
    // A refusal the runtime answered is still undone through it.
    w.runtime.remove_image("sandboxer-base:latest");
    w.create.execute(World::declared(&c)).await.unwrap_err();
    assert_eq!(w.runtime.calls(RuntimeOp::Stop), 1);
}
