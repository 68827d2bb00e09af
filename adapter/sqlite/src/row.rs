//! SQLite rows read through the shared decoders of `sandboxer-sql`: times
//! as unix milliseconds UTC, names as TEXT.

pub(crate) use sandboxer_sql::{env_json, millis, ttl_millis};
use sqlx::Sqlite;
use sqlx::sqlite::SqliteRow;

sandboxer_sql::columns_by_name!(SqliteRow, Sqlite);
