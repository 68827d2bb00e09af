//! SQLite rows read through the shared decoders of `sandboxer-sql`: times
//! as unix milliseconds UTC, names as TEXT.

use sandboxer_core::domain::{PoolMember, Session, Workspace};
use sandboxer_core::port::StoreError;
use sandboxer_sql::Columns;
pub(crate) use sandboxer_sql::{env_json, millis, ttl_millis};
use sqlx::Row;
use sqlx::Sqlite;
use sqlx::sqlite::SqliteRow;

/// A SQLite row by column name.
struct ByName<'a>(&'a SqliteRow);

impl Columns for ByName<'_> {
    fn text(&self, name: &str) -> Result<String, String> {
        named(self.0, name)
    }
    fn text_or_null(&self, name: &str) -> Result<Option<String>, String> {
        named(self.0, name)
    }
    fn int(&self, name: &str) -> Result<i64, String> {
        named(self.0, name)
    }
    fn int_or_null(&self, name: &str) -> Result<Option<i64>, String> {
        named(self.0, name)
    }
}

pub(crate) fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    sandboxer_sql::session_from_row(&ByName(row))
}

pub(crate) fn workspace_from_row(row: &SqliteRow) -> Result<Workspace, StoreError> {
    sandboxer_sql::workspace_from_row(&ByName(row))
}

pub(crate) fn pool_member_from_row(row: &SqliteRow) -> Result<PoolMember, StoreError> {
    sandboxer_sql::pool_member_from_row(&ByName(row))
}

/// Column `name`, or what is wrong with it.
fn named<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(|e| format!("{name}: {e}"))
}
