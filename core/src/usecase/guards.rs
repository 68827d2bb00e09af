//! In-process coordination shared by the use cases: a lock per chat (single
//! flight: one lifecycle change per chat at a time) and leases (a sandbox in
//! use by an exec or file transfer is never reaped).
//!
//! Across processes the store's unique index and generation compare-and-swap
//! keep the same promises; these guards make the common case cheap and exact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::domain::{ChatId, SessionId};

#[derive(Debug, Default)]
pub struct SessionGuards {
    chats: Mutex<HashMap<ChatId, Arc<AsyncMutex<()>>>>,
    leases: Arc<Mutex<HashMap<SessionId, usize>>>,
}

/// Held while a chat's sandbox is being decided on, created, replaced or reaped.
pub struct ChatLock<'a> {
    guards: &'a SessionGuards,
    chat: ChatId,
    guard: Option<OwnedMutexGuard<()>>,
}

/// Held while an exec or file transfer uses a session's sandbox.
#[derive(Debug)]
pub struct Lease {
    leases: Arc<Mutex<HashMap<SessionId, usize>>>,
    session: SessionId,
}

impl SessionGuards {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for the chat's lock.
    pub async fn lock_chat(&self, chat: &ChatId) -> ChatLock<'_> {
        let mutex = {
            let mut chats = self.chats.lock().unwrap();
            Arc::clone(chats.entry(chat.clone()).or_default())
        };
        let guard = mutex.lock_owned().await;
        ChatLock {
            guards: self,
            chat: chat.clone(),
            guard: Some(guard),
        }
    }

    /// Takes a lease on the session's sandbox. Take it under the chat lock so
    /// that cleanup, which checks leases under the same lock, cannot slip in
    /// between the decision and the lease.
    pub fn lease(&self, session: SessionId, _held: &ChatLock<'_>) -> Lease {
        *self.leases.lock().unwrap().entry(session).or_default() += 1;
        Lease {
            leases: Arc::clone(&self.leases),
            session,
        }
    }

    pub fn is_leased(&self, session: &SessionId) -> bool {
        self.leases.lock().unwrap().contains_key(session)
    }

    /// Chats with a lock entry (held or awaited); entries go when unused.
    pub fn locked_chats(&self) -> usize {
        self.chats.lock().unwrap().len()
    }
}

impl Drop for ChatLock<'_> {
    fn drop(&mut self) {
        let mut chats = self.guards.chats.lock().unwrap();
        self.guard.take();
        // Only the map still holds the mutex: nobody holds or awaits it.
        if chats
            .get(&self.chat)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            chats.remove(&self.chat);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut leases = self.leases.lock().unwrap();
        if let Some(count) = leases.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                leases.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lock_entries_and_leases_go_away_when_unused() {
        let guards = SessionGuards::new();
        let chat = ChatId::parse("c1").unwrap();
        let session = SessionId::new();
        {
            let lock = guards.lock_chat(&chat).await;
            let a = guards.lease(session, &lock);
            let b = guards.lease(session, &lock);
            assert!(guards.is_leased(&session));
            drop(a);
            assert!(guards.is_leased(&session));
            drop(b);
            assert!(!guards.is_leased(&session));
            assert_eq!(guards.locked_chats(), 1);
        }
        assert_eq!(guards.locked_chats(), 0);
    }

    #[tokio::test]
    async fn one_holder_per_chat() {
        let guards = Arc::new(SessionGuards::new());
        let chat = ChatId::parse("c1").unwrap();
        let first = guards.lock_chat(&chat).await;
        let g = Arc::clone(&guards);
        let c = chat.clone();
        let waiter = tokio::spawn(async move {
            let _second = g.lock_chat(&c).await;
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        waiter.await.unwrap();
        assert_eq!(guards.locked_chats(), 0);
    }
}
