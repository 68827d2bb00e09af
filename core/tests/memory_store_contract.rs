//! The session store contract, run against the in-memory fake the use-case
//! tests rely on: the fake must keep the promises the real stores keep.

use std::sync::Arc;

use sandboxer_core::port::SessionStore;
use sandboxer_core::testing::MemoryStore;

fn fresh() -> (Arc<dyn SessionStore>, ()) {
    (Arc::new(MemoryStore::new()), ())
}

sandboxer_core::store_contract_tests!(fresh());
