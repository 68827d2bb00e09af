//! The `SessionStore` port on PostgreSQL (sqlx): the store of a deployment
//! that runs several replicas on one database.
//!
//! The schema enforces one active session and one live workspace per chat
//! with partial unique indexes, whichever replica writes; `begin_create`,
//! `end` and `claim_pool_member` are one transaction each, and a claim
//! takes its member `FOR UPDATE SKIP LOCKED`, so concurrent claims never
//! take one member twice. A database that is away, restarting, out of
//! connections or past the statement timeout is `Unavailable`; the pool
//! reconnects by itself. Replicas coordinate through the same database
//! (`PostgresCoordination`: an advisory lock for the lead, heartbeats).
//! sqlx types never leave this crate.

mod coordination;
mod error;
mod open;
mod options;
mod row;
mod sql;
mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod transactions;

pub use coordination::PostgresCoordination;
pub use options::PostgresStoreOptions;
pub use store::PostgresSessionStore;
