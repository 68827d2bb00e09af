//! The warm pool's calls: members are added, made ready, listed and removed
//! one statement each; a claim is one `BEGIN IMMEDIATE` transaction that
//! takes the oldest ready member and inserts its session and workspace
//! rows for the chat, or rolls back and leaves the member in the pool.

use sandboxer_core::domain::{ContainerId, NewSession, PoolMember, Session, SessionId, SpecHash};
use sandboxer_core::port::StoreError;
use sqlx::sqlite::SqliteConnection;

use crate::row::{env_json, millis, pool_member_from_row, ttl_millis};
use crate::sql;
use crate::store::{SqliteSessionStore, returned, settle};
use crate::transactions::of_chat;

impl SqliteSessionStore {
    pub(crate) async fn add_member(&self, member: &PoolMember) -> Result<(), StoreError> {
        let mut conn = self.writer().await?;
        let added = sqlx::query(sql::INSERT_POOL_MEMBER)
            .bind(member.session_id.to_string())
            .bind(member.workspace_id.to_string())
            .bind(member.container_id.as_ref().map(ContainerId::as_str))
            .bind(member.image.as_str())
            .bind(member.spec_hash.as_str())
            .bind(member.fingerprint.as_str())
            .bind(millis(member.created_at))
            .bind(member.status.as_str())
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(|e| self.error(e));
        settle(&mut conn, &added);
        added
    }

    /// `true` when a `warming` member became `ready`.
    pub(crate) async fn member_ready(
        &self,
        session: &SessionId,
        container: &ContainerId,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(sql::MARK_POOL_READY)
            .bind(session.to_string())
            .bind(container.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e));
        settle(&mut conn, &done);
        Ok(done?.rows_affected() > 0)
    }

    pub(crate) async fn members(&self) -> Result<Vec<PoolMember>, StoreError> {
        let rows = sqlx::query(sql::LIST_POOL)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(pool_member_from_row).collect()
    }

    /// `true` when the member's row went.
    pub(crate) async fn remove_member(&self, session: &SessionId) -> Result<bool, StoreError> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(sql::REMOVE_POOL_MEMBER)
            .bind(session.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e));
        settle(&mut conn, &done);
        Ok(done?.rows_affected() > 0)
    }

    pub(crate) async fn claim_in_tx(
        &self,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        let mut conn = self.writer().await?;
        let claimed = self.claim_on(&mut conn, spec_hash, fingerprint, new).await;
        settle(&mut conn, &claimed);
        claimed
    }

    /// The member is picked and deleted under the write lock, so two claims
    /// never take one; the session's insert (the one-active-per-chat index)
    /// and the workspace's (one live per chat) refuse a chat that has a
    /// sandbox, and the rollback puts the member back.
    async fn claim_on(
        &self,
        conn: &mut SqliteConnection,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.begin_immediate(conn).await?;
        let taken = sqlx::query(sql::TAKE_POOL_MEMBER)
            .bind(spec_hash.as_str())
            .bind(fingerprint)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let Some(member) = taken.first().map(pool_member_from_row).transpose()? else {
            // Nothing deleted: the transaction rolls back when dropped.
            return Ok(None);
        };
        let rows = sqlx::query(sql::INSERT_CLAIMED)
            .bind(member.session_id.to_string())
            .bind(new.chat_id.as_str())
            .bind(member.container_id.as_ref().map(ContainerId::as_str))
            .bind(new.image.as_str())
            .bind(new.spec_hash.as_str())
            .bind(ttl_millis(new.idle_ttl))
            .bind(millis(new.created_at))
            .bind(millis(new.expires_at))
            .bind(new.overrides.image.as_deref())
            .bind(env_json(&new.overrides))
            .bind(member.workspace_id.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| of_chat(self.error(e), &new.chat_id))?;
        let session = returned(&rows)?
            .ok_or_else(|| StoreError::Other("the insert returned no row".into()))?;
        sqlx::query(sql::INSERT_WORKSPACE)
            .bind(member.workspace_id.to_string())
            .bind(new.chat_id.as_str())
            .bind(millis(new.created_at))
            .bind(member.session_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| of_chat(self.error(e), &new.chat_id))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(Some(session))
    }
}
