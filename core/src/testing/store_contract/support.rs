//! What the properties share: fresh chat ids, fixed times, sessions to
//! insert (on a fresh or the chat's kept workspace), warm pool members and
//! what a claim of one must store, and small wrappers that turn store
//! errors into findings.

use std::time::Duration;

use chrono::TimeZone;

use crate::domain::{
    ChatId, ContainerId, EndReason, NewSession, PoolMember, PoolStatus, Session, SessionId,
    SessionStatus, SpecHash, SpecOverrides, Timestamp, Workspace, WorkspaceFate, WorkspaceId,
    WorkspaceStatus, WorkspaceUse,
};
use crate::port::store::{Replacing, SessionStore, StoreError};

use super::Outcome;

/// A chat id no other property (or earlier run on the same store) uses.
pub fn fresh_chat(name: &str) -> ChatId {
    ChatId::parse(&format!("contract.{name}.{}", SessionId::new()))
        .expect("contract chat ids are valid")
}

/// 2026-01-01T00:00:00Z plus `secs`.
pub fn at(secs: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

/// A chat's first session, on a fresh workspace, created at `created`,
/// with a 30 min idle TTL.
pub fn new_session(chat: &ChatId, created: Timestamp) -> NewSession {
    session_on(chat, WorkspaceUse::Fresh(WorkspaceId::new()), created)
}

/// The session after `previous` (a replacement or a resume), on its
/// workspace.
pub fn next_session(previous: &Session, created: Timestamp) -> NewSession {
    session_on(
        &previous.chat_id,
        WorkspaceUse::Kept(previous.workspace_id),
        created,
    )
}

/// A new session for `chat` on `workspace`.
pub fn session_on(chat: &ChatId, workspace: WorkspaceUse, created: Timestamp) -> NewSession {
    let idle_ttl = Duration::from_secs(1800);
    NewSession {
        id: SessionId::new(),
        chat_id: chat.clone(),
        workspace,
        image: "sandboxer-base:latest".into(),
        spec_hash: SpecHash::from_stored("0123456789abcdef01234567"),
        overrides: SpecOverrides {
            image: Some("python:3".into()),
            env: [
                ("LANG".to_owned(), "C.UTF-8".to_owned()),
                ("Q".to_owned(), "a \"b\" =c".to_owned()),
            ]
            .into(),
        },
        idle_ttl,
        created_at: created,
        expires_at: created + idle_ttl,
    }
}

/// How `begin_create` must store `new` at `generation`.
pub fn expected_creating(new: &NewSession, generation: u64) -> Session {
    Session {
        id: new.id,
        chat_id: new.chat_id.clone(),
        workspace_id: new.workspace.id(),
        container_id: None,
        image: new.image.clone(),
        spec_hash: new.spec_hash.clone(),
        overrides: new.overrides.clone(),
        generation,
        idle_ttl: new.idle_ttl,
        created_at: new.created_at,
        last_used_at: new.created_at,
        expires_at: new.expires_at,
        status: SessionStatus::Creating,
        end_reason: None,
        ended_at: None,
    }
}

/// The live workspace a `Fresh` `new` must have made.
pub fn expected_fresh_workspace(new: &NewSession) -> Workspace {
    Workspace {
        id: new.workspace.id(),
        chat_id: new.chat_id.clone(),
        created_at: new.created_at,
        created_by: new.id,
        status: WorkspaceStatus::Live,
        hibernated_at: None,
        retained_until: None,
    }
}

/// Hibernated until `secs` (see `at`).
pub fn keep_until(secs: i64) -> WorkspaceFate {
    WorkspaceFate::Keep { until: at(secs) }
}

/// A fingerprint no other property (or earlier run on the same store) uses.
pub fn fresh_fingerprint(name: &str) -> String {
    format!("contract.{name}.{}", SessionId::new())
}

/// The spec hash of the contract's pool: that of `new_session`'s sessions.
pub fn pool_hash() -> SpecHash {
    new_session(&fresh_chat("hash"), at(0)).spec_hash
}

/// A member of `pool_hash` and `fingerprint` with fresh ids, made at
/// `secs` (see `at`); a `ready` one has its container.
pub fn pool_member(fingerprint: &str, secs: i64, status: PoolStatus) -> PoolMember {
    let session_id = SessionId::new();
    PoolMember {
        session_id,
        workspace_id: WorkspaceId::new(),
        container_id: (status == PoolStatus::Ready)
            .then(|| ContainerId::new(format!("c-pool-{session_id}"))),
        image: "sandboxer-base:latest".into(),
        spec_hash: pool_hash(),
        fingerprint: fingerprint.to_owned(),
        created_at: at(secs),
        status,
    }
}

/// How `claim_pool_member` must store `member` claimed for `new` at
/// `generation`.
pub fn expected_claimed(member: &PoolMember, new: &NewSession, generation: u64) -> Session {
    Session {
        id: member.session_id,
        chat_id: new.chat_id.clone(),
        workspace_id: member.workspace_id,
        container_id: member.container_id.clone(),
        image: new.image.clone(),
        spec_hash: new.spec_hash.clone(),
        overrides: new.overrides.clone(),
        generation,
        idle_ttl: new.idle_ttl,
        created_at: new.created_at,
        last_used_at: new.created_at,
        expires_at: new.expires_at,
        status: SessionStatus::Running,
        end_reason: None,
        ended_at: None,
    }
}

/// The live workspace a claim of `member` for `new` must have made.
pub fn expected_claimed_workspace(member: &PoolMember, new: &NewSession) -> Workspace {
    Workspace {
        id: member.workspace_id,
        chat_id: new.chat_id.clone(),
        created_at: new.created_at,
        created_by: member.session_id,
        status: WorkspaceStatus::Live,
        hibernated_at: None,
        retained_until: None,
    }
}

pub(super) fn replacing(session: &Session, reason: EndReason) -> Replacing {
    Replacing {
        session_id: session.id,
        generation: session.generation,
        reason,
    }
}

pub(super) async fn get(
    store: &dyn SessionStore,
    id: &SessionId,
) -> Result<Option<Session>, String> {
    store.get(id).await.map_err(unexpected("get"))
}

pub(super) async fn workspace_of(
    store: &dyn SessionStore,
    chat: &ChatId,
) -> Result<Option<Workspace>, String> {
    store
        .get_workspace(chat)
        .await
        .map_err(unexpected("get_workspace"))
}

/// `begin_create` of `new` with nothing to replace.
pub(super) async fn create(store: &dyn SessionStore, new: &NewSession) -> Result<Session, String> {
    store
        .begin_create(new, None)
        .await
        .map_err(unexpected("begin_create"))
}

/// Ends an active session at `secs`; it must have been active.
pub(super) async fn end_at(
    store: &dyn SessionStore,
    session: &Session,
    reason: EndReason,
    secs: i64,
    fate: WorkspaceFate,
) -> Outcome {
    let ended = store
        .end(&session.id, reason, at(secs), fate)
        .await
        .map_err(unexpected("end"))?;
    check!(ended, "end of active session {} returned false", session.id);
    Ok(())
}

/// The workspace's row as `list_workspaces` shows it, in any status.
pub(super) async fn workspace_row(
    store: &dyn SessionStore,
    id: WorkspaceId,
) -> Result<Option<Workspace>, String> {
    let all = store
        .list_workspaces()
        .await
        .map_err(unexpected("list_workspaces"))?;
    Ok(all.into_iter().find(|w| w.id == id))
}

pub(super) async fn hibernated(store: &dyn SessionStore) -> Result<u64, String> {
    store
        .count_hibernated()
        .await
        .map_err(unexpected("count_hibernated"))
}

pub(super) async fn retire(store: &dyn SessionStore, id: WorkspaceId) -> Result<bool, String> {
    store
        .retire_workspace(&id)
        .await
        .map_err(unexpected("retire_workspace"))
}

pub(super) async fn forget(store: &dyn SessionStore, id: WorkspaceId) -> Result<bool, String> {
    store
        .forget_workspace(&id)
        .await
        .map_err(unexpected("forget_workspace"))
}

pub(super) async fn count(store: &dyn SessionStore) -> Result<u64, String> {
    store
        .count_active()
        .await
        .map_err(unexpected("count_active"))
}

pub(super) fn expect_conflict(result: Result<Session, StoreError>, what: &str) -> Outcome {
    match result {
        Err(StoreError::Conflict(_)) => Ok(()),
        other => Err(format!("{what}: expected Conflict, got {other:?}")),
    }
}

pub(super) fn unexpected(call: &'static str) -> impl Fn(StoreError) -> String {
    move |e| format!("{call} failed: {e:?}")
}

pub(super) async fn add_member(store: &dyn SessionStore, member: &PoolMember) -> Outcome {
    store
        .add_pool_member(member)
        .await
        .map_err(unexpected("add_pool_member"))
}

pub(super) async fn listed_pool(store: &dyn SessionStore) -> Result<Vec<PoolMember>, String> {
    store.list_pool().await.map_err(unexpected("list_pool"))
}

pub(super) async fn mark_ready(
    store: &dyn SessionStore,
    session: &SessionId,
    container: &ContainerId,
) -> Result<bool, String> {
    store
        .mark_pool_ready(session, container)
        .await
        .map_err(unexpected("mark_pool_ready"))
}

pub(super) async fn remove_member(
    store: &dyn SessionStore,
    session: &SessionId,
) -> Result<bool, String> {
    store
        .remove_pool_member(session)
        .await
        .map_err(unexpected("remove_pool_member"))
}

/// A claim of `pool_hash` and `fingerprint` for `new`.
pub(super) async fn claim(
    store: &dyn SessionStore,
    fingerprint: &str,
    new: &NewSession,
) -> Result<Option<Session>, String> {
    store
        .claim_pool_member(&pool_hash(), fingerprint, new)
        .await
        .map_err(unexpected("claim_pool_member"))
}

pub(super) async fn active(
    store: &dyn SessionStore,
    chat: &ChatId,
) -> Result<Option<Session>, String> {
    store
        .get_active(chat)
        .await
        .map_err(unexpected("get_active"))
}
