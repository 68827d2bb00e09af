//! An in-memory `SessionStore` with the same guarantees as the real one
//! (one active session per chat, generation compare-and-swap) and
//! scriptable failures.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{
    ChatId, ContainerId, EndReason, NewSession, Session, SessionId, SessionStatus, Timestamp,
};
use crate::port::store::{Replacing, SessionStore, StoreError, Touch};

/// Store operations, to script failures on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    GetActive,
    Get,
    ListActive,
    ListExpired,
    BeginCreate,
    MarkRunning,
    Touch,
    End,
    PurgeEnded,
    InstanceId,
    Ping,
}

#[derive(Debug)]
pub struct MemoryStore {
    /// The deployment this store stands for, fixed at construction.
    instance: String,
    sessions: Mutex<Vec<Session>>,
    failures: Mutex<HashMap<StoreOp, Vec<StoreError>>>,
    calls: Mutex<HashMap<StoreOp, usize>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            instance: SessionId::new().to_string().replace('-', "")[20..].to_owned(),
            sessions: Mutex::default(),
            failures: Mutex::default(),
            calls: Mutex::default(),
        }
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next call of `op` fails with `error` (queued, one per call).
    pub fn fail_next(&self, op: StoreOp, error: StoreError) {
        self.failures
            .lock()
            .unwrap()
            .entry(op)
            .or_default()
            .push(error);
    }

    /// Every session ever stored, in insertion order.
    pub fn all(&self) -> Vec<Session> {
        self.sessions.lock().unwrap().clone()
    }

    /// Puts a row in as is (test setup).
    pub fn insert(&self, session: Session) {
        self.sessions.lock().unwrap().push(session);
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: StoreOp) -> usize {
        self.calls.lock().unwrap().get(&op).copied().unwrap_or(0)
    }

    fn injected(&self, op: StoreOp) -> Result<(), StoreError> {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(&op) {
            Some(queue) if !queue.is_empty() => Err(queue.remove(0)),
            _ => Ok(()),
        }
    }

    fn with<T>(
        &self,
        op: StoreOp,
        f: impl FnOnce(&mut Vec<Session>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.injected(op)?;
        f(&mut self.sessions.lock().unwrap())
    }
}

fn active_of<'a>(rows: &'a mut [Session], chat: &ChatId) -> Option<&'a mut Session> {
    rows.iter_mut()
        .find(|s| s.is_active() && &s.chat_id == chat)
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn get_active(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        self.with(StoreOp::GetActive, |rows| {
            Ok(active_of(rows, chat).map(|s| s.clone()))
        })
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.with(StoreOp::Get, |rows| {
            Ok(rows.iter().find(|s| &s.id == id).cloned())
        })
    }

    async fn list_active(&self) -> Result<Vec<Session>, StoreError> {
        self.with(StoreOp::ListActive, |rows| {
            let mut active: Vec<_> = rows.iter().filter(|s| s.is_active()).cloned().collect();
            active.sort_by_key(|s| s.created_at);
            Ok(active)
        })
    }

    async fn list_expired(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        self.with(StoreOp::ListExpired, |rows| {
            Ok(rows
                .iter()
                .filter(|s| s.is_active() && s.expires_at <= now)
                .cloned()
                .collect())
        })
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        self.with(StoreOp::ListActive, |rows| {
            Ok(rows.iter().filter(|s| s.is_active()).count() as u64)
        })
    }

    async fn begin_create(
        &self,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        self.with(StoreOp::BeginCreate, |rows| {
            if let Some(old) = replacing {
                let current = rows.iter_mut().find(|s| {
                    s.id == old.session_id && s.is_active() && s.generation == old.generation
                });
                let Some(current) = current else {
                    return Err(StoreError::Conflict(format!(
                        "session {} is no longer active at generation {}",
                        old.session_id, old.generation
                    )));
                };
                if current.chat_id != new.chat_id {
                    return Err(StoreError::Conflict(
                        "replacing another chat's session".into(),
                    ));
                }
                current.status = SessionStatus::Ended;
                current.end_reason = Some(old.reason);
                current.ended_at = Some(new.created_at);
            }
            if active_of(rows, &new.chat_id).is_some() {
                return Err(StoreError::Conflict(format!(
                    "chat {} already has an active session",
                    new.chat_id
                )));
            }
            let generation = rows
                .iter()
                .filter(|s| s.chat_id == new.chat_id)
                .map(|s| s.generation)
                .max()
                .unwrap_or(0)
                + 1;
            let session = Session {
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
            };
            rows.push(session.clone());
            Ok(session)
        })
    }

    async fn mark_running(
        &self,
        id: &SessionId,
        container: &ContainerId,
    ) -> Result<Session, StoreError> {
        self.with(StoreOp::MarkRunning, |rows| {
            let s = rows
                .iter_mut()
                .find(|s| &s.id == id && s.status == SessionStatus::Creating)
                .ok_or(StoreError::NotFound(*id))?;
            s.status = SessionStatus::Running;
            s.container_id = Some(container.clone());
            Ok(s.clone())
        })
    }

    async fn touch(&self, id: &SessionId, touch: Touch) -> Result<Option<Session>, StoreError> {
        self.with(StoreOp::Touch, |rows| {
            Ok(rows
                .iter_mut()
                .find(|s| &s.id == id && s.is_active())
                .map(|s| {
                    s.last_used_at = touch.last_used_at;
                    s.expires_at = touch.expires_at;
                    s.idle_ttl = touch.idle_ttl;
                    s.clone()
                }))
        })
    }

    async fn end(
        &self,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.with(StoreOp::End, |rows| {
            Ok(rows
                .iter_mut()
                .find(|s| &s.id == id && s.is_active())
                .map(|s| {
                    s.status = SessionStatus::Ended;
                    s.end_reason = Some(reason);
                    s.ended_at = Some(at);
                })
                .is_some())
        })
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.with(StoreOp::PurgeEnded, |rows| {
            let mut latest: HashMap<ChatId, u64> = HashMap::new();
            for s in rows.iter() {
                let g = latest.entry(s.chat_id.clone()).or_default();
                *g = (*g).max(s.generation);
            }
            let before_len = rows.len();
            rows.retain(|s| {
                let old = s.ended_at.is_some_and(|at| at < before);
                !(old && s.generation < latest[&s.chat_id])
            });
            Ok((before_len - rows.len()) as u64)
        })
    }

    async fn instance_id(&self) -> Result<String, StoreError> {
        self.with(StoreOp::InstanceId, |_| Ok(self.instance.clone()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(StoreOp::Ping, |_| Ok(()))
    }
}
