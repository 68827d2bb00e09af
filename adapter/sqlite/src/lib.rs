//! The `SessionStore` port on SQLite (sqlx): the embedded default store.
//!
//! One database file in WAL mode; a single write connection (writes
//! serialize in SQLite anyway) beside a few read connections. The schema
//! itself enforces one active session and one live workspace per chat;
//! `begin_create`, `end` and `claim_pool_member` are one `BEGIN IMMEDIATE`
//! transaction each; WAL
//! checkpoints run in the background.
//! sqlx types never leave this crate.

mod checkpoint;
mod error;
mod open;
mod options;
mod pool;
mod row;
mod sql;
mod store;
pub mod telemetry;
mod transactions;
mod upkeep;
mod workspaces;

pub use options::SqliteStoreOptions;
pub use store::SqliteSessionStore;
