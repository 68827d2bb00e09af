//! The core's session store contract, run against `SqliteSessionStore` on a
//! real file: each property on a fresh database, and all of them in turn on
//! one database.

mod common;

use std::sync::Arc;

use sandboxer_core::port::SessionStore;
use tempfile::TempDir;

async fn fresh() -> (Arc<dyn SessionStore>, TempDir) {
    let (store, dir) = common::fresh().await;
    (Arc::new(store), dir)
}

sandboxer_core::store_contract_tests!(fresh().await);
