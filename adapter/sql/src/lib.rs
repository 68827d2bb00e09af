//! What the SQL session stores (SQLite, PostgreSQL) share: the same
//! columns decoded into the same domain values (`row`), and the same CLIENT
//! span around every store call (`telemetry`). No database driver here:
//! each store reads its rows through the small `Columns` trait, which
//! `columns_by_name!` implements for the store's own row type.

pub mod row;
pub mod telemetry;

pub use row::{
    Columns, env_json, millis, pool_member_from_row, session_from_row, ttl_millis,
    workspace_from_row,
};
pub use telemetry::{Ids, Op, Record, traced};
