//! The core's session store contract, run against `PostgresSessionStore`:
//! each property on a database of its own, and all of them in turn on one.

use std::sync::Arc;

use sandboxer_core::port::SessionStore;
use sandboxer_core::trace::NoopTracer;
use sandboxer_postgres::testing::TestDatabase;
use sandboxer_postgres::{PostgresSessionStore, PostgresStoreOptions};

async fn fresh() -> (Arc<dyn SessionStore>, TestDatabase) {
    let db = TestDatabase::create().await;
    let store = PostgresSessionStore::open(
        db.url(),
        PostgresStoreOptions::default(),
        Arc::new(NoopTracer),
    )
    .await
    .unwrap();
    (Arc::new(store), db)
}

sandboxer_core::store_contract_tests!(fresh().await);
