//! PostgreSQL rows read through the shared decoders of `sandboxer-sql`
//! (BIGINT milliseconds, TEXT names).

use sqlx::postgres::{PgRow, Postgres};

sandboxer_sql::columns_by_name!(PgRow, Postgres);
