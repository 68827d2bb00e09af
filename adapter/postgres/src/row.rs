//! PostgreSQL rows read through the shared decoders of `sandboxer-sql`
//! (BIGINT milliseconds, TEXT names).

use sandboxer_core::domain::{PoolMember, Session, Workspace};
use sandboxer_core::port::StoreError;
use sandboxer_sql::Columns;
use sqlx::Row;
use sqlx::postgres::{PgRow, Postgres};

struct ByName<'a>(&'a PgRow);

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

pub(crate) fn session(row: &PgRow) -> Result<Session, StoreError> {
    sandboxer_sql::session_from_row(&ByName(row))
}

pub(crate) fn workspace(row: &PgRow) -> Result<Workspace, StoreError> {
    sandboxer_sql::workspace_from_row(&ByName(row))
}

pub(crate) fn pool_member(row: &PgRow) -> Result<PoolMember, StoreError> {
    sandboxer_sql::pool_member_from_row(&ByName(row))
}

fn named<'r, T>(row: &'r PgRow, name: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name).map_err(|e| format!("{name}: {e}"))
}
