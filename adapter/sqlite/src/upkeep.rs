//! What the store keeps over time besides the sessions it serves: the
//! retention purge of ended rows, and the deployment's instance id, stored
//! on first use (sandboxes are labelled with it, so services with other
//! databases on the same engine never touch them).

use std::path::Path;

use sandboxer_core::domain::Timestamp;
use sandboxer_core::port::StoreError;

use crate::row::millis;
use crate::sql;
use crate::store::{SqliteSessionStore, settle};

impl SqliteSessionStore {
    /// Deletes rows ended before `before` but each chat's latest.
    pub(crate) async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(sql::PURGE_ENDED)
            .bind(millis(before))
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e));
        settle(&mut conn, &done);
        Ok(done?.rows_affected())
    }

    /// A database that already holds sessions (made before the id was
    /// stored) keeps the id its sandboxes were labelled with then, derived
    /// from the file's path; a new one gets a random id.
    pub(crate) async fn stored_instance_id(&self) -> Result<String, StoreError> {
        let stored = sqlx::query_scalar::<_, String>(sql::GET_INSTANCE_ID)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.error(e))?;
        if let Some(id) = stored {
            return Ok(id);
        }
        let mut conn = self.writer().await?;
        let chosen = async {
            let has_sessions = sqlx::query_scalar::<_, i64>(sql::ANY_SESSION)
                .fetch_one(&mut *conn)
                .await?
                > 0;
            let id = if has_sessions {
                legacy_instance_id(self.path())
            } else {
                uuid::Uuid::now_v7().simple().to_string()[20..].to_owned()
            };
            // A concurrent first use may have won: keep its id.
            sqlx::query(sql::INSERT_INSTANCE_ID)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query_scalar::<_, String>(sql::GET_INSTANCE_ID)
                .fetch_one(&mut *conn)
                .await
        }
        .await
        .map_err(|e| self.error(e));
        settle(&mut conn, &chosen);
        chosen
    }
}

/// The id sandboxes of a database were labelled with before it was stored:
/// a hash of the file's canonical path.
fn legacy_instance_id(database: &Path) -> String {
    use sha2::{Digest, Sha256};
    let path = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_path_buf());
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}
