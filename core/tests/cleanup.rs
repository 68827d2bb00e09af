//! `CleanupExpiredSandboxes` and `Reconcile` against fakes.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, ExecRequest, NewSession, SessionId, SessionStatus,
    SpecOverrides, WorkspaceId, WorkspaceUse, rfc3339,
};
use sandboxer_core::port::{RuntimeError, RuntimeSandbox, SessionStore, StoreError};
use sandboxer_core::testing::{RuntimeOp, StoreOp};
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::usecase::{CleanupReport, ReconcileMode, ReconcileReport};
use support::{TTL, World, chat};

#[tokio::test]
async fn one_failed_stop_does_not_stop_the_others() {
    let w = World::deleting();
    let mut sessions = Vec::new();
    for n in 0..3 {
        let c = chat(&format!("chat-{n}"));
        sessions.push(w.create.execute(World::declared(&c)).await.unwrap().session);
    }
    w.runtime.fail_stop_of(
        sessions[1].id,
        RuntimeError::Timeout("stop took too long".into()),
    );
    w.clock.advance(TTL + Duration::from_secs(1));
    w.tracer.clear();

    let report = w.cleanup.execute().await.unwrap();
    assert_eq!(
        report,
        CleanupReport {
            expired: 3,
            removed: 2,
            failed: 1,
            ..CleanupReport::default()
        }
    );
    for (n, s) in sessions.iter().enumerate() {
        let row = w.store.get(&s.id).await.unwrap().unwrap();
        if n == 1 {
            assert_eq!(
                row.status,
                SessionStatus::Running,
                "a failed stop keeps the row for the next run"
            );
            assert!(w.runtime.container_of(s.id).is_some());
        } else {
            assert_eq!(row.end_reason, Some(EndReason::Expired));
            assert!(w.runtime.container_of(s.id).is_none());
        }
    }

    let run = w.tracer.one(span::CLEANUP);
    assert_eq!(run.int(key::CLEANUP_EXPIRED), Some(3));
    assert_eq!(run.int(key::CLEANUP_REMOVED), Some(2));
    assert_eq!(run.int(key::CLEANUP_FAILED), Some(1));
    assert_eq!(run.int(key::CLEANUP_ORPHANS_REMOVED), Some(0));
    assert_eq!(run.str(key::OPERATION), Some("cleanup"));
    let per_session = w.tracer.named(span::CLEANUP_SESSION);
    assert_eq!(per_session.len(), 3);
    for s in &sessions {
        let sp = per_session
            .iter()
            .find(|sp| sp.str(key::SESSION_ID) == Some(s.id.to_string().as_str()))
            .expect("one cleanup_session span per session");
        assert!(sp.is_child_of(&run));
        assert_eq!(sp.str(key::CHAT_ID), Some(s.chat_id.as_str()));
        assert_eq!(
            sp.str(key::CONTAINER_ID),
            s.container_id.as_ref().map(ContainerId::as_str)
        );
        assert_eq!(
            sp.str(key::EXPIRES_AT),
            Some(rfc3339(s.expires_at).as_str())
        );
        assert_eq!(sp.str(key::OPERATION), Some("delete"));
        let stop = w
            .tracer
            .children_of(sp)
            .into_iter()
            .find(|c| c.name == "FakeSandboxRuntime.stop")
            .expect("the runtime stop is the session span's child");
        if s.id == sessions[1].id {
            assert_eq!(sp.str(key::RESULT), Some("failed"));
            assert_eq!(sp.error_type(), Some("timeout"));
            assert!(sp.is_error());
            assert!(stop.is_error());
        } else {
            assert_eq!(sp.str(key::RESULT), Some("cleaned"));
            assert_eq!(sp.error_type(), None);
            assert!(!sp.is_error());
        }
    }
    assert!(w.tracer.one(span::RECONCILE).is_child_of(&run));
}

#[tokio::test]
async fn nothing_expired_means_nothing_touched_and_twice_is_harmless() {
    let w = World::deleting();
    let s = w
        .create
        .execute(World::declared(&chat("fresh")))
        .await
        .unwrap()
        .session;
    assert_eq!(w.cleanup.execute().await.unwrap(), CleanupReport::default());
    w.clock.advance(TTL);
    assert_eq!(w.cleanup.execute().await.unwrap().removed, 1);
    assert_eq!(w.cleanup.execute().await.unwrap(), CleanupReport::default());
    assert_eq!(
        w.store.get(&s.id).await.unwrap().unwrap().end_reason,
        Some(EndReason::Expired)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_in_an_exec_is_not_reaped_until_the_exec_ends() {
    let w = Arc::new(World::deleting());
    let c = chat("busy");
    let s = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.runtime.hold_execs();
    let exec = {
        let w = Arc::clone(&w);
        let c = c.clone();
        tokio::spawn(async move {
            let req = ExecRequest::new(vec!["sleep".into(), "100".into()]).unwrap();
            w.exec.execute(&c, &req).await
        })
    };
    while w.runtime.execs_running() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.clock.advance(TTL * 2);
    let during = w.cleanup.execute().await.unwrap();
    assert_eq!((during.expired, during.removed, during.skipped), (1, 0, 1));
    assert!(
        w.runtime.container_of(s.id).is_some(),
        "reaped during an exec"
    );

    w.runtime.release_execs();
    let out = exec.await.unwrap().unwrap();
    assert_eq!(out.session.id, s.id);
    // The exec's end counts as a use: expiry moved past now.
    let row = w.store.get(&s.id).await.unwrap().unwrap();
    assert_eq!(row.expires_at, w.clock_now() + TTL);
    w.clock.advance(TTL);
    let after = w.cleanup.execute().await.unwrap();
    assert_eq!(after.removed, 1);
    assert!(w.runtime.container_of(s.id).is_none());
}

#[tokio::test]
async fn listing_failure_is_an_error_of_the_run() {
    let w = World::deleting();
    w.store.fail_next(
        StoreOp::ListExpired,
        StoreError::Unavailable("locked".into()),
    );
    let err = w.cleanup.execute().await.unwrap_err();
    assert_eq!(
        sandboxer_core::trace::ErrorType::error_type(&err).as_str(),
        "store_unavailable"
    );
    assert_eq!(
        w.tracer.one(span::CLEANUP).error_type(),
        Some("store_unavailable")
    );
}

fn orphan(chat: &ChatId, age: Duration, now: chrono::DateTime<chrono::Utc>) -> RuntimeSandbox {
    RuntimeSandbox {
        container_id: ContainerId::new(format!("orphan-{}", SessionId::new())),
        session_id: SessionId::new(),
        chat_id: chat.clone(),
        workspace_id: WorkspaceId::new(),
        generation: 1,
        created_at: now - age,
        running: true,
    }
}

#[tokio::test]
async fn orphans_are_removed_after_the_grace_and_vanished_containers_end_rows() {
    let w = World::deleting();
    let now = w.clock_now();
    let old = orphan(&chat("orphan-old"), Duration::from_secs(600), now);
    let young = orphan(&chat("orphan-young"), Duration::from_secs(5), now);
    w.runtime.add_container(old.clone(), "img");
    w.runtime.add_container(young.clone(), "img");
    let gone = w
        .create
        .execute(World::declared(&chat("vanished")))
        .await
        .unwrap()
        .session;
    let exited = w
        .create
        .execute(World::declared(&chat("exited")))
        .await
        .unwrap()
        .session;
    let healthy = w
        .create
        .execute(World::declared(&chat("healthy")))
        .await
        .unwrap()
        .session;
    w.runtime.remove_container(gone.id);
    w.runtime.kill_container(exited.id);

    let report = w.cleanup.execute().await.unwrap();
    assert_eq!(
        (
            report.orphans_removed,
            report.containers_gone,
            report.failed
        ),
        // The old orphan's container, then its volume.
        (2, 2, 0)
    );
    assert!(w.runtime.container_of(old.session_id).is_none());
    assert!(
        w.runtime.container_of(young.session_id).is_some(),
        "inside its grace period"
    );
    for s in [&gone, &exited] {
        let row = w.store.get(&s.id).await.unwrap().unwrap();
        assert_eq!(row.end_reason, Some(EndReason::ContainerGone));
    }
    assert!(
        w.runtime.container_of(exited.id).is_none(),
        "the exited container is removed"
    );
    assert!(w.store.get(&healthy.id).await.unwrap().unwrap().is_active());
    let reconcile = w.tracer.one(span::RECONCILE);
    assert_eq!(reconcile.int(key::CLEANUP_ORPHANS_REMOVED), Some(2));
    assert_eq!(reconcile.int(key::CLEANUP_CONTAINERS_GONE), Some(2));
    let list = w.tracer.one("FakeSandboxRuntime.list_active_sessions");
    assert!(list.is_child_of(&reconcile));
}

fn creating_row(w: &World, chat_id: &ChatId) -> NewSession {
    NewSession {
        id: SessionId::new(),
        chat_id: chat_id.clone(),
        workspace: WorkspaceUse::Fresh(WorkspaceId::new()),
        image: "sandboxer-base:latest".into(),
        spec_hash: support::default_spec().hash(),
        overrides: SpecOverrides::default(),
        idle_ttl: TTL,
        created_at: w.clock_now(),
        expires_at: w.clock_now() + TTL,
    }
}

#[tokio::test]
async fn startup_settles_half_done_creates_and_every_orphan() {
    let w = World::deleting();
    let now = w.clock_now();
    // Crashed after the container started but before the row said so: adopt.
    let adopt = w
        .store
        .begin_create(&creating_row(&w, &chat("adopt")), None)
        .await
        .unwrap();
    let mut container = orphan(&adopt.chat_id, Duration::ZERO, now);
    container.session_id = adopt.id;
    container.workspace_id = adopt.workspace_id;
    w.runtime.add_container(container.clone(), "img");
    // Crashed before the container existed: undo.
    let undo = w
        .store
        .begin_create(&creating_row(&w, &chat("undo")), None)
        .await
        .unwrap();
    let young = orphan(&chat("young-orphan"), Duration::from_secs(1), now);
    w.runtime.add_container(young.clone(), "img");

    // A periodic run leaves all of these alone: too young.
    let periodic = w.reconcile.execute(ReconcileMode::Periodic).await.unwrap();
    assert_eq!(periodic, ReconcileReport::default());

    let report = w.reconcile.execute(ReconcileMode::Startup).await.unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            // The young orphan's container, then its volume.
            orphans_removed: 2,
            adopted: 1,
            undone: 1,
            ..ReconcileReport::default()
        }
    );
    let adopted = w.store.get(&adopt.id).await.unwrap().unwrap();
    assert_eq!(adopted.status, SessionStatus::Running);
    assert_eq!(adopted.container_id, Some(container.container_id));
    let undone = w.store.get(&undo.id).await.unwrap().unwrap();
    assert_eq!(undone.end_reason, Some(EndReason::CreateInterrupted));
    assert!(
        w.runtime.container_of(young.session_id).is_none(),
        "startup has no grace"
    );
    assert!(
        w.active()
            .iter()
            .all(|s| s.status == SessionStatus::Running)
    );
}

#[tokio::test]
async fn a_runtime_listing_failure_is_counted_not_fatal_for_cleanup() {
    let w = World::deleting();
    let s = w
        .create
        .execute(World::declared(&chat("x")))
        .await
        .unwrap()
        .session;
    w.clock.advance(TTL);
    w.runtime.fail_next(
        RuntimeOp::List,
        RuntimeError::Unavailable("socket gone".into()),
    );
    let report = w.cleanup.execute().await.unwrap();
    assert_eq!((report.removed, report.failed), (1, 1));
    assert_eq!(
        w.store.get(&s.id).await.unwrap().unwrap().end_reason,
        Some(EndReason::Expired)
    );
    assert_eq!(
        w.tracer.one(span::RECONCILE).error_type(),
        Some("runtime_unavailable")
    );
}
