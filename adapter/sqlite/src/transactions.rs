//! The calls that change sessions and workspaces together, each one
//! `BEGIN IMMEDIATE` transaction: `begin_create` (end the replaced session,
//! insert the new one, make or take its workspace) and `end` (end the
//! session, settle its workspace); the warm pool's claim is the third
//! (`pool.rs`). Any failure rolls the whole call back.

use sandboxer_core::domain::{
    ChatId, EndReason, NewSession, Session, SessionId, Timestamp, WorkspaceFate, WorkspaceUse,
};
use sandboxer_core::port::{Replacing, StoreError};
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{Connection, Row, Transaction};

use crate::row::{env_json, millis, ttl_millis};
use crate::sql;
use crate::store::{SqliteSessionStore, returned, settle};

impl SqliteSessionStore {
    pub(crate) async fn create_in_tx(
        &self,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        let mut conn = self.writer().await?;
        let created = self.create_on(&mut conn, new, replacing).await;
        settle(&mut conn, &created);
        created
    }

    pub(crate) async fn end_in_tx(
        &self,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer().await?;
        let ended = self.end_on(&mut conn, id, reason, at, fate).await;
        settle(&mut conn, &ended);
        ended
    }

    /// IMMEDIATE takes the write lock now (waiting up to the busy timeout)
    /// rather than at the first write: what the transaction reads (the
    /// replaced row, the chat's max generation, its live workspace) is then
    /// read under the lock, and no other process can commit in between.
    /// Dropping the transaction uncommitted rolls it back: sqlx queues the
    /// ROLLBACK on the connection before it goes back to the pool.
    pub(crate) async fn begin_immediate<'c>(
        &self,
        conn: &'c mut SqliteConnection,
    ) -> Result<Transaction<'c, Sqlite>, StoreError> {
        conn.begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.error(e))
    }

    async fn create_on(
        &self,
        conn: &mut SqliteConnection,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        let mut tx = self.begin_immediate(conn).await?;
        if let Some(old) = replacing {
            let ended = sqlx::query(sql::END_REPLACED)
                .bind(old.reason.as_str())
                .bind(millis(new.created_at))
                .bind(old.session_id.to_string())
                .bind(new.chat_id.as_str())
                .bind(i64::try_from(old.generation).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.error(e))?;
            if ended.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "session {} of chat {} is no longer active at generation {}",
                    old.session_id, new.chat_id, old.generation
                )));
            }
        }
        let rows = sqlx::query(sql::INSERT_CREATING)
            .bind(new.id.to_string())
            .bind(new.chat_id.as_str())
            .bind(new.image.as_str())
            .bind(new.spec_hash.as_str())
            .bind(ttl_millis(new.idle_ttl))
            .bind(millis(new.created_at))
            .bind(millis(new.expires_at))
            .bind(new.overrides.image.as_deref())
            .bind(env_json(&new.overrides))
            .bind(new.workspace.id().to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| of_chat(self.error(e), &new.chat_id))?;
        let session = returned(&rows)?
            .ok_or_else(|| StoreError::Other("the insert returned no row".into()))?;
        self.take_workspace(&mut tx, new).await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(session)
    }

    /// Makes a `Fresh` workspace live for the chat, or takes the chat's
    /// `Kept` one out of hibernation.
    async fn take_workspace(
        &self,
        tx: &mut SqliteConnection,
        new: &NewSession,
    ) -> Result<(), StoreError> {
        match new.workspace {
            WorkspaceUse::Fresh(id) => {
                sqlx::query(sql::INSERT_WORKSPACE)
                    .bind(id.to_string())
                    .bind(new.chat_id.as_str())
                    .bind(millis(new.created_at))
                    .bind(new.id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| of_chat(self.error(e), &new.chat_id))?;
            }
            WorkspaceUse::Kept(id) => {
                let taken = sqlx::query(sql::TAKE_WORKSPACE)
                    .bind(id.to_string())
                    .bind(new.chat_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.error(e))?;
                if taken.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!(
                        "workspace {id} is not chat {}'s live workspace",
                        new.chat_id
                    )));
                }
            }
        }
        Ok(())
    }

    async fn end_on(
        &self,
        conn: &mut SqliteConnection,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_immediate(conn).await?;
        let rows = sqlx::query(sql::END)
            .bind(id.to_string())
            .bind(reason.as_str())
            .bind(millis(at))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let Some(row) = rows.first() else {
            // Not active: nothing changed, and its workspace is left alone.
            return Ok(false);
        };
        let workspace: String = row.try_get(0).map_err(|e| self.error(e))?;
        let settling = match fate {
            WorkspaceFate::Keep { until } => sqlx::query(sql::HIBERNATE_WORKSPACE)
                .bind(workspace)
                .bind(millis(at))
                .bind(millis(until)),
            WorkspaceFate::Delete => sqlx::query(sql::DELETE_WORKSPACE).bind(workspace),
        };
        settling
            .execute(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }
}

/// Names the chat in a conflict's message.
pub(crate) fn of_chat(error: StoreError, chat: &ChatId) -> StoreError {
    match error {
        StoreError::Conflict(why) => StoreError::Conflict(format!("chat {chat}: {why}")),
        other => other,
    }
}
