//! The store's span vocabulary: the shared database span of `sandboxer-sql`
//! named `SqliteSessionStore.<operation>`, `db.system.name = sqlite`.

pub(crate) use sandboxer_sql::telemetry::{Ids, traced};
pub use sandboxer_sql::telemetry::{Op, attr};

sandboxer_sql::store_ops!("SqliteSessionStore", "sqlite");
