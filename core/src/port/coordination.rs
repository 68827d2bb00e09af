//! The coordination port: replicas of one deployment on one store agree on
//! who runs the background work (cleanup, reconciliation, warm pool
//! refills: one replica at a time) and tell each other they are alive, so
//! a starting replica never takes another's in-flight creates for
//! abandoned ones. A deployment of one process needs neither: `Solo`.

use async_trait::async_trait;

use super::store::StoreError;

#[async_trait]
pub trait Coordination: Send + Sync {
    /// Whether this replica runs the background work now: it keeps the
    /// lead while it lives and takes it when it is free (its holder died or
    /// lost the store). Asked before every run.
    async fn lead(&self) -> Result<bool, StoreError>;

    /// Says this replica is alive; called every few seconds.
    async fn heartbeat(&self) -> Result<(), StoreError>;

    /// How many other replicas said they were alive within the grace.
    async fn others_alive(&self) -> Result<u64, StoreError>;

    /// Gives the lead up (at shutdown) so another replica takes it at once.
    async fn resign(&self);
}

/// One process on its own store: always the leader, never anyone else.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

#[async_trait]
impl Coordination for Solo {
    async fn lead(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn others_alive(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn resign(&self) {}
}
