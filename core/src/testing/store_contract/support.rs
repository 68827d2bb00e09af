//! What the properties share: fresh chat ids, fixed times, sessions to
//! insert, and small wrappers that turn store errors into findings.

use std::time::Duration;

use chrono::TimeZone;

use crate::domain::{
    ChatId, EndReason, NewSession, Session, SessionId, SessionStatus, SpecHash, SpecOverrides,
    Timestamp,
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

/// A new session for `chat` created at `created`, with a 30 min idle TTL.
pub fn new_session(chat: &ChatId, created: Timestamp) -> NewSession {
    let idle_ttl = Duration::from_secs(1800);
    NewSession {
        id: SessionId::new(),
        chat_id: chat.clone(),
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
