//! Workspaces across the decision table, hibernation, retention and
//! reconciliation, against fakes: the chat's files are what is checked.

mod support;

use std::time::Duration;

use sandboxer_core::domain::{
    ChatId, EndReason, NewSession, Retention, SessionId, SpecOverrides, WorkspacePath, WorkspaceUse,
};
use sandboxer_core::port::{RuntimeError, SandboxRuntime, SessionStore};
use sandboxer_core::testing::RuntimeOp;
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::usecase::{
    CreateResult, ExecError, HibernateError, HibernateResult, ReconcileMode, StopResult,
};
use support::{TTL, World, chat};

const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

fn notes() -> WorkspacePath {
    WorkspacePath::parse("notes/today.txt").unwrap()
}

async fn write(w: &World, c: &ChatId, text: &str) {
    w.put_file
        .execute(c, &notes(), text.as_bytes().to_vec())
        .await
        .unwrap();
}

async fn read(w: &World, c: &ChatId) -> Result<String, ExecError> {
    let (bytes, _) = w.get_file.execute(c, &notes()).await?;
    Ok(String::from_utf8(bytes).unwrap())
}

/// Lets the chat go idle and runs cleanup: one hibernated.
async fn hibernate_by_cleanup(w: &World) {
    w.clock.advance(TTL + Duration::from_secs(1));
    let report = w.cleanup.execute().await.unwrap();
    assert!(report.hibernated >= 1, "{report:?}");
}

/// A `creating` row as a process that died mid-create left it.
fn creating_row(w: &World, c: &ChatId, workspace: WorkspaceUse) -> NewSession {
    NewSession {
        id: SessionId::new(),
        chat_id: c.clone(),
        workspace,
        image: "sandboxer-base:latest".into(),
        spec_hash: support::default_spec().hash(),
        overrides: SpecOverrides::default(),
        idle_ttl: TTL,
        created_at: w.clock_now(),
        expires_at: w.clock_now() + TTL,
    }
}

fn last_create_result(w: &World) -> String {
    let spans = w.tracer.named(span::CREATE_SANDBOX);
    let last = spans.last().expect("a create span");
    last.str(key::RESULT).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn cleanup_hibernates_and_the_next_use_resumes_on_the_same_files() {
    let w = World::new();
    let c = chat("hib");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    write(&w, &c, "kept").await;
    w.tracer.clear();
    hibernate_by_cleanup(&w).await;

    let ended = w.store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(ended.end_reason, Some(EndReason::Hibernated));
    assert!(w.runtime.container_of(first.id).is_none());
    let kept = w.store.get_workspace(&c).await.unwrap().unwrap();
    assert_eq!(kept.id, first.workspace_id);
    assert_eq!(kept.retained_until, Some(w.clock_now() + RETENTION));
    let per_session = w.tracer.one(span::CLEANUP_SESSION);
    assert_eq!(per_session.str(key::OPERATION), Some("hibernate"));
    assert_eq!(per_session.str(key::RESULT), Some("hibernated"));
    assert_eq!(
        w.tracer.one(span::CLEANUP).int(key::CLEANUP_HIBERNATED),
        Some(1)
    );

    // Any use resumes, transparently: here a file read.
    assert_eq!(read(&w, &c).await.unwrap(), "kept");
    assert_eq!(last_create_result(&w), "resumed");
    let resumed = w.store.get_active(&c).await.unwrap().unwrap();
    assert_eq!(resumed.workspace_id, first.workspace_id);
    assert_eq!(resumed.generation, 2);
    let kept = w.store.get_workspace(&c).await.unwrap().unwrap();
    assert_eq!((kept.retained_until, kept.hibernated_at), (None, None));
    // And a PUT now reuses it.
    let again = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(again.result, CreateResult::Reused);
}

#[tokio::test]
async fn a_resumed_chat_keeps_its_spec_and_ttl() {
    let w = World::new();
    let c = chat("spec");
    let mut input = World::declared(&c);
    input.ttl = Some(Duration::from_secs(600));
    input.spec = sandboxer_core::usecase::SpecChoice::Declared(SpecOverrides {
        env: [("A".to_owned(), "1".to_owned())].into(),
        ..SpecOverrides::default()
    });
    let first = w.create.execute(input).await.unwrap().session;
    w.hibernate.execute(&c).await.unwrap();
    write(&w, &c, "x").await;
    let resumed = w.store.get_active(&c).await.unwrap().unwrap();
    assert_eq!(resumed.spec_hash, first.spec_hash);
    assert_eq!(resumed.overrides, first.overrides);
    assert_eq!(resumed.idle_ttl, Duration::from_secs(600));
}

#[tokio::test]
async fn past_retention_the_workspace_goes_and_the_next_use_starts_empty() {
    let w = World::new();
    let c = chat("old");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    write(&w, &c, "gone soon").await;
    hibernate_by_cleanup(&w).await;
    w.clock.advance(RETENTION);
    let report = w.cleanup.execute().await.unwrap();
    assert_eq!(report.workspaces_deleted, 1, "{report:?}");
    assert!(w.store.get_workspace(&c).await.unwrap().is_none());
    assert!(
        w.store.workspaces().is_empty(),
        "the row went after the volume"
    );
    let volumes = w.runtime.list_workspaces(false).await.unwrap();
    assert!(volumes.iter().all(|v| v.id != first.workspace_id));

    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(out.result, CreateResult::Created);
    assert_ne!(out.session.workspace_id, first.workspace_id);
    assert!(matches!(
        read(&w, &c).await,
        Err(ExecError::Runtime(RuntimeError::FileNotFound(_)))
    ));
}

#[tokio::test]
async fn past_the_cap_the_oldest_hibernated_go_first() {
    let w = World::with_retention(Retention {
        period: RETENTION,
        max_hibernated: 2,
    });
    let chats: Vec<ChatId> = (0..3).map(|n| chat(&format!("cap-{n}"))).collect();
    for c in &chats {
        w.create.execute(World::declared(c)).await.unwrap();
        write(&w, c, "f").await;
        w.hibernate.execute(c).await.unwrap();
        w.clock.advance(Duration::from_secs(10));
    }
    let report = w.cleanup.execute().await.unwrap();
    assert_eq!(report.workspaces_deleted, 1);
    assert!(w.store.get_workspace(&chats[0]).await.unwrap().is_none());
    for c in &chats[1..] {
        assert_eq!(read(&w, c).await.unwrap(), "f");
    }
}

#[tokio::test]
async fn replacements_keep_the_files() {
    let w = World::new();
    let c = chat("repl");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    write(&w, &c, "v1").await;

    // The container died: replaced on the same workspace.
    w.runtime.kill_container(first.id);
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert!(matches!(out.result, CreateResult::Replaced(_)));
    assert_eq!(out.session.workspace_id, first.workspace_id);
    assert_eq!(read(&w, &c).await.unwrap(), "v1");

    // Another spec: replaced on the same workspace.
    let mut input = World::declared(&c);
    input.spec = sandboxer_core::usecase::SpecChoice::Declared(SpecOverrides {
        env: [("B".to_owned(), "2".to_owned())].into(),
        ..SpecOverrides::default()
    });
    let out = w.create.execute(input).await.unwrap();
    assert!(matches!(out.result, CreateResult::Replaced(_)));
    assert_eq!(out.session.workspace_id, first.workspace_id);
    assert_eq!(read(&w, &c).await.unwrap(), "v1");
    assert_eq!(w.store.workspaces().len(), 1);
}

#[tokio::test]
async fn a_failed_resume_leaves_the_chat_hibernated_with_its_files() {
    let w = World::new();
    let c = chat("failres");
    w.create.execute(World::declared(&c)).await.unwrap();
    write(&w, &c, "precious").await;
    w.hibernate.execute(&c).await.unwrap();
    w.runtime.fail_next(
        RuntimeOp::Create,
        RuntimeError::Unavailable("engine restarting".into()),
    );
    assert!(w.create.execute(World::declared(&c)).await.is_err());
    let kept = w.store.get_workspace(&c).await.unwrap().unwrap();
    assert!(kept.is_hibernated());
    assert!(w.store.get_active(&c).await.unwrap().is_none());
    assert_eq!(read(&w, &c).await.unwrap(), "precious");
    assert_eq!(last_create_result(&w), "resumed");
}

#[tokio::test]
async fn a_failed_fresh_create_leaves_no_workspace() {
    let w = World::new();
    let c = chat("failnew");
    w.runtime.fail_next(
        RuntimeOp::Create,
        RuntimeError::ImageNotFound("nope".into()),
    );
    assert!(w.create.execute(World::declared(&c)).await.is_err());
    assert!(w.store.workspaces().is_empty());
    assert!(w.runtime.list_workspaces(false).await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_removes_the_workspace_of_an_active_or_a_hibernated_chat() {
    let w = World::new();
    let (a, b) = (chat("del-a"), chat("del-b"));
    for c in [&a, &b] {
        w.create.execute(World::declared(c)).await.unwrap();
        write(&w, c, "bye").await;
    }
    w.hibernate.execute(&b).await.unwrap();
    assert!(matches!(
        w.stop.execute(&a).await.unwrap(),
        StopResult::Stopped(_)
    ));
    assert!(matches!(
        w.stop.execute(&b).await.unwrap(),
        StopResult::WorkspaceDeleted(_)
    ));
    assert!(matches!(
        w.stop.execute(&b).await.unwrap(),
        StopResult::AlreadyGone
    ));
    assert!(w.store.workspaces().is_empty());
    assert!(w.runtime.list_workspaces(false).await.unwrap().is_empty());
    assert!(w.runtime.containers().is_empty());
}

#[tokio::test]
async fn hibernate_now_is_idempotent_and_says_when_it_cannot() {
    let w = World::new();
    let c = chat("now");
    assert!(matches!(
        w.hibernate.execute(&c).await,
        Err(HibernateError::NoSandbox(_))
    ));
    let s = w.create.execute(World::declared(&c)).await.unwrap().session;
    assert!(matches!(
        w.hibernate.execute(&c).await.unwrap(),
        HibernateResult::Hibernated(_)
    ));
    assert!(w.runtime.container_of(s.id).is_none());
    assert_eq!(
        w.hibernate.execute(&c).await.unwrap(),
        HibernateResult::AlreadyHibernated
    );
    let off = World::deleting();
    off.create.execute(World::declared(&c)).await.unwrap();
    assert!(matches!(
        off.hibernate.execute(&c).await,
        Err(HibernateError::Disabled)
    ));
}

#[tokio::test]
async fn retention_off_deletes_idle_sandboxes_workspace_and_all() {
    let w = World::deleting();
    let c = chat("off");
    w.create.execute(World::declared(&c)).await.unwrap();
    write(&w, &c, "x").await;
    w.clock.advance(TTL + Duration::from_secs(1));
    let report = w.cleanup.execute().await.unwrap();
    assert_eq!((report.removed, report.hibernated), (1, 0));
    assert!(w.store.workspaces().is_empty());
    assert!(w.runtime.list_workspaces(false).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_interrupted_resume_is_undone_into_hibernation_with_the_files() {
    let w = World::new();
    let c = chat("crash");
    w.create.execute(World::declared(&c)).await.unwrap();
    write(&w, &c, "survives").await;
    w.hibernate.execute(&c).await.unwrap();
    let kept = w.store.get_workspace(&c).await.unwrap().unwrap();
    // A process died between the row and the container of a resume.
    let row = creating_row(&w, &c, WorkspaceUse::Kept(kept.id));
    let creating = w.store.begin_create(&row, None).await.unwrap();
    let report = w.reconcile.execute(ReconcileMode::Startup).await.unwrap();
    assert_eq!(report.undone, 1);
    let ended = w.store.get(&creating.id).await.unwrap().unwrap();
    assert_eq!(ended.end_reason, Some(EndReason::CreateInterrupted));
    assert!(
        w.store
            .get_workspace(&c)
            .await
            .unwrap()
            .unwrap()
            .is_hibernated()
    );
    assert_eq!(read(&w, &c).await.unwrap(), "survives");
}

#[tokio::test]
async fn an_interrupted_fresh_create_is_undone_with_its_workspace() {
    let w = World::new();
    let c = chat("crash-new");
    let fresh = WorkspaceUse::Fresh(sandboxer_core::domain::WorkspaceId::new());
    w.store
        .begin_create(&creating_row(&w, &c, fresh), None)
        .await
        .unwrap();
    let report = w.reconcile.execute(ReconcileMode::Startup).await.unwrap();
    assert_eq!(report.undone, 1);
    assert!(w.store.workspaces().is_empty());
    assert!(w.store.get_workspace(&c).await.unwrap().is_none());
}

#[tokio::test]
async fn a_dead_container_found_by_reconcile_keeps_its_files_for_the_next_use() {
    let w = World::deleting();
    let c = chat("gone");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    write(&w, &c, "still here").await;
    w.runtime.kill_container(first.id);
    let report = w.reconcile.execute(ReconcileMode::Periodic).await.unwrap();
    assert_eq!(report.containers_gone, 1);
    // Even with retention off: a dead container is not idleness.
    assert!(
        w.store
            .get_workspace(&c)
            .await
            .unwrap()
            .unwrap()
            .is_hibernated()
    );
    assert_eq!(read(&w, &c).await.unwrap(), "still here");
}

#[tokio::test]
async fn a_volume_without_a_row_is_removed_by_reconcile() {
    let w = World::new();
    let c = chat("stray");
    let s = w.create.execute(World::declared(&c)).await.unwrap().session;
    // The store forgets the chat (another deployment's leftovers, a lost
    // database): the container and the volume are orphans.
    w.stop.execute(&c).await.unwrap();
    let request = sandboxer_core::port::CreateRequest {
        session_id: SessionId::new(),
        chat_id: c.clone(),
        workspace: WorkspaceUse::Fresh(sandboxer_core::domain::WorkspaceId::new()),
        generation: 1,
        created_at: w.clock_now(),
        spec: support::default_spec(),
    };
    w.runtime.create(&request).await.unwrap();
    let report = w.reconcile.execute(ReconcileMode::Startup).await.unwrap();
    assert_eq!(report.orphans_removed, 2, "the container, then its volume");
    assert!(w.runtime.list_workspaces(false).await.unwrap().is_empty());
    assert_ne!(s.workspace_id, request.workspace.id());
}
