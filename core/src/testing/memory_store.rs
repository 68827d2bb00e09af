//! An in-memory `SessionStore` with the same guarantees as the real one
//! (one active session and one live workspace per chat, generation
//! compare-and-swap, a warm pool member claimed once) and scriptable
//! failures.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::{
    ChatId, ContainerId, EndReason, NewSession, PoolMember, PoolStatus, Session, SessionId,
    SessionStatus, SpecHash, Timestamp, Workspace, WorkspaceFate, WorkspaceId, WorkspaceStatus,
    WorkspaceUse,
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
    GetWorkspace,
    ListWorkspaces,
    RetireWorkspace,
    ForgetWorkspace,
    AddPoolMember,
    MarkPoolReady,
    ListPool,
    RemovePoolMember,
    ClaimPoolMember,
    InstanceId,
    Ping,
}

#[derive(Debug)]
pub struct MemoryStore {
    /// The deployment this store stands for, fixed at construction.
    instance: String,
    tables: Mutex<Tables>,
    failures: Mutex<HashMap<StoreOp, Vec<StoreError>>>,
    calls: Mutex<HashMap<StoreOp, usize>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            instance: SessionId::new().to_string().replace('-', "")[20..].to_owned(),
            tables: Mutex::default(),
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
        self.tables.lock().unwrap().sessions.clone()
    }

    /// Every workspace row, in insertion order.
    pub fn workspaces(&self) -> Vec<Workspace> {
        self.tables.lock().unwrap().workspaces.clone()
    }

    /// Puts a row in as is (test setup).
    pub fn insert(&self, session: Session) {
        self.tables.lock().unwrap().sessions.push(session);
    }

    /// Puts a workspace row in as is (test setup).
    pub fn insert_workspace(&self, workspace: Workspace) {
        self.tables.lock().unwrap().workspaces.push(workspace);
    }

    /// Every warm pool member, in insertion order.
    pub fn pool(&self) -> Vec<PoolMember> {
        self.tables.lock().unwrap().pool.clone()
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
        self.with_tables(op, |t| f(&mut t.sessions))
    }

    fn with_tables<T>(
        &self,
        op: StoreOp,
        f: impl FnOnce(&mut Tables) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.injected(op)?;
        let mut tables = self.tables.lock().unwrap();
        // All or nothing, like a transaction.
        let mut draft = tables.clone();
        let out = f(&mut draft)?;
        *tables = draft;
        Ok(out)
    }
}

#[derive(Debug, Clone, Default)]
struct Tables {
    sessions: Vec<Session>,
    workspaces: Vec<Workspace>,
    pool: Vec<PoolMember>,
}

impl Tables {
    fn live_workspace(&mut self, chat: &ChatId) -> Option<&mut Workspace> {
        self.workspaces
            .iter_mut()
            .find(|w| w.status == WorkspaceStatus::Live && &w.chat_id == chat)
    }

    /// Takes `use_` for `new`'s chat, or says why not.
    fn take_workspace(&mut self, new: &NewSession) -> Result<(), StoreError> {
        match new.workspace {
            WorkspaceUse::Fresh(id) => {
                if self.live_workspace(&new.chat_id).is_some() {
                    return Err(StoreError::Conflict(format!(
                        "chat {} already has a live workspace",
                        new.chat_id
                    )));
                }
                self.workspaces.push(Workspace {
                    id,
                    chat_id: new.chat_id.clone(),
                    created_at: new.created_at,
                    created_by: new.id,
                    status: WorkspaceStatus::Live,
                    hibernated_at: None,
                    retained_until: None,
                });
            }
            WorkspaceUse::Kept(id) => {
                let Some(kept) = self.live_workspace(&new.chat_id).filter(|w| w.id == id) else {
                    return Err(StoreError::Conflict(format!(
                        "workspace {id} is not chat {}'s live workspace",
                        new.chat_id
                    )));
                };
                kept.hibernated_at = None;
                kept.retained_until = None;
            }
        }
        Ok(())
    }

    fn settle_workspace(&mut self, id: WorkspaceId, fate: WorkspaceFate, at: Timestamp) {
        let Some(w) = self
            .workspaces
            .iter_mut()
            .find(|w| w.id == id && w.status == WorkspaceStatus::Live)
        else {
            return;
        };
        match fate {
            WorkspaceFate::Keep { until } => {
                w.hibernated_at = Some(at);
                w.retained_until = Some(until);
            }
            WorkspaceFate::Delete => w.status = WorkspaceStatus::Deleting,
        }
    }

    fn has_active_session(&self, workspace: WorkspaceId) -> bool {
        self.sessions
            .iter()
            .any(|s| s.is_active() && s.workspace_id == workspace)
    }

    fn next_generation(&self, chat: &ChatId) -> u64 {
        self.sessions
            .iter()
            .filter(|s| &s.chat_id == chat)
            .map(|s| s.generation)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// Where the oldest `ready` member of `spec_hash` and `fingerprint` is.
    fn oldest_ready(&self, spec_hash: &SpecHash, fingerprint: &str) -> Option<usize> {
        self.pool
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m.status == PoolStatus::Ready
                    && &m.spec_hash == spec_hash
                    && m.fingerprint == fingerprint
            })
            .min_by_key(|(_, m)| (m.created_at, m.session_id))
            .map(|(i, _)| i)
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

    async fn get_latest(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        self.with(StoreOp::Get, |rows| {
            Ok(rows
                .iter()
                .filter(|s| &s.chat_id == chat)
                .max_by_key(|s| s.generation)
                .cloned())
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
        self.with_tables(StoreOp::BeginCreate, |tables| {
            let rows = &mut tables.sessions;
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
            let generation = tables.next_generation(&new.chat_id);
            let rows = &mut tables.sessions;
            let session = Session {
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
            };
            rows.push(session.clone());
            tables.take_workspace(new)?;
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
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError> {
        self.with_tables(StoreOp::End, |tables| {
            let ended = tables
                .sessions
                .iter_mut()
                .find(|s| &s.id == id && s.is_active())
                .map(|s| {
                    s.status = SessionStatus::Ended;
                    s.end_reason = Some(reason);
                    s.ended_at = Some(at);
                    s.workspace_id
                });
            if let Some(workspace) = ended {
                tables.settle_workspace(workspace, fate, at);
            }
            Ok(ended.is_some())
        })
    }

    async fn get_workspace(&self, chat: &ChatId) -> Result<Option<Workspace>, StoreError> {
        self.with_tables(StoreOp::GetWorkspace, |t| {
            Ok(t.live_workspace(chat).map(|w| w.clone()))
        })
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.with_tables(StoreOp::ListWorkspaces, |t| {
            let mut all = t.workspaces.clone();
            all.sort_by_key(|w| w.created_at);
            Ok(all)
        })
    }

    async fn count_hibernated(&self) -> Result<u64, StoreError> {
        self.with_tables(StoreOp::ListWorkspaces, |t| {
            Ok(t.workspaces.iter().filter(|w| w.is_hibernated()).count() as u64)
        })
    }

    async fn retire_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        self.with_tables(StoreOp::RetireWorkspace, |t| {
            let busy = t.has_active_session(*id);
            let Some(w) = t.workspaces.iter_mut().find(|w| &w.id == id) else {
                return Ok(false);
            };
            match w.status {
                WorkspaceStatus::Deleting => Ok(true),
                WorkspaceStatus::Live if busy || w.retained_until.is_none() => Ok(false),
                WorkspaceStatus::Live => {
                    w.status = WorkspaceStatus::Deleting;
                    Ok(true)
                }
            }
        })
    }

    async fn forget_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        self.with_tables(StoreOp::ForgetWorkspace, |t| {
            let before = t.workspaces.len();
            t.workspaces
                .retain(|w| !(&w.id == id && w.status == WorkspaceStatus::Deleting));
            Ok(t.workspaces.len() < before)
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

    async fn add_pool_member(&self, member: &PoolMember) -> Result<(), StoreError> {
        self.with_tables(StoreOp::AddPoolMember, |t| {
            if member.status == PoolStatus::Ready && member.container_id.is_none() {
                return Err(StoreError::Other(format!(
                    "pool member {} is ready without a container",
                    member.session_id
                )));
            }
            if let Some(taken) = t.pool.iter().find(|m| {
                m.session_id == member.session_id || m.workspace_id == member.workspace_id
            }) {
                return Err(StoreError::Conflict(format!(
                    "pool member {} or its workspace is taken (by {})",
                    member.session_id, taken.session_id
                )));
            }
            t.pool.push(member.clone());
            Ok(())
        })
    }

    async fn mark_pool_ready(
        &self,
        session: &SessionId,
        container: &ContainerId,
    ) -> Result<bool, StoreError> {
        self.with_tables(StoreOp::MarkPoolReady, |t| {
            let Some(m) = t
                .pool
                .iter_mut()
                .find(|m| &m.session_id == session && m.status == PoolStatus::Warming)
            else {
                return Ok(false);
            };
            m.status = PoolStatus::Ready;
            m.container_id = Some(container.clone());
            Ok(true)
        })
    }

    async fn list_pool(&self) -> Result<Vec<PoolMember>, StoreError> {
        self.with_tables(StoreOp::ListPool, |t| {
            let mut all = t.pool.clone();
            all.sort_by_key(|m| (m.created_at, m.session_id));
            Ok(all)
        })
    }

    async fn remove_pool_member(&self, session: &SessionId) -> Result<bool, StoreError> {
        self.with_tables(StoreOp::RemovePoolMember, |t| {
            let before = t.pool.len();
            t.pool.retain(|m| &m.session_id != session);
            Ok(t.pool.len() < before)
        })
    }

    async fn claim_pool_member(
        &self,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        self.with_tables(StoreOp::ClaimPoolMember, |t| {
            let Some(at) = t.oldest_ready(spec_hash, fingerprint) else {
                return Ok(None);
            };
            let chat = &new.chat_id;
            if active_of(&mut t.sessions, chat).is_some() {
                return Err(StoreError::Conflict(format!(
                    "chat {chat} already has an active session"
                )));
            }
            if t.live_workspace(chat).is_some() {
                return Err(StoreError::Conflict(format!(
                    "chat {chat} already has a live workspace"
                )));
            }
            let member = t.pool.remove(at);
            t.workspaces.push(Workspace {
                id: member.workspace_id,
                chat_id: chat.clone(),
                created_at: new.created_at,
                created_by: member.session_id,
                status: WorkspaceStatus::Live,
                hibernated_at: None,
                retained_until: None,
            });
            let session = Session {
                id: member.session_id,
                chat_id: chat.clone(),
                workspace_id: member.workspace_id,
                container_id: member.container_id,
                image: new.image.clone(),
                spec_hash: new.spec_hash.clone(),
                overrides: new.overrides.clone(),
                generation: t.next_generation(chat),
                idle_ttl: new.idle_ttl,
                created_at: new.created_at,
                last_used_at: new.created_at,
                expires_at: new.expires_at,
                status: SessionStatus::Running,
                end_reason: None,
                ended_at: None,
            };
            t.sessions.push(session.clone());
            Ok(Some(session))
        })
    }

    async fn instance_id(&self) -> Result<String, StoreError> {
        self.with(StoreOp::InstanceId, |_| Ok(self.instance.clone()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.with(StoreOp::Ping, |_| Ok(()))
    }
}
