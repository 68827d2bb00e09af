//! The calls that change several rows together, each one transaction (READ
//! COMMITTED): `begin_create` (end the replaced session, insert the new
//! one, make or take its workspace), `end` (end the session, settle its
//! workspace) and the warm pool's claim (take a member, insert its session
//! and workspace for the chat). Any failure rolls the whole call back: a
//! transaction dropped uncommitted, or cut by a lost connection, leaves
//! nothing behind. Concurrent writers to one chat meet on row locks and the
//! unique indexes, never both succeed.

use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, NewSession, Session, SessionId, SpecHash, Timestamp,
    WorkspaceFate, WorkspaceUse,
};
use sandboxer_core::port::{Replacing, StoreError};
use sandboxer_sql::{env_json, millis, ttl_millis};
use sqlx::postgres::PgConnection;

use crate::row;
use crate::sql;
use crate::store::{PostgresSessionStore, returned};

impl PostgresSessionStore {
    pub(crate) async fn create_in_tx(
        &self,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
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
        let inserted = sqlx::query(sql::INSERT_CREATING)
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
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| of_chat(self.error(e), &new.chat_id))?;
        let session = returned(inserted)?
            .ok_or_else(|| StoreError::Other("the insert returned no row".into()))?;
        self.take_workspace(&mut tx, new).await?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(session)
    }

    /// Makes a `Fresh` workspace live for the chat, or takes the chat's
    /// `Kept` one out of hibernation.
    async fn take_workspace(
        &self,
        tx: &mut PgConnection,
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

    pub(crate) async fn end_in_tx(
        &self,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let workspace: Option<String> = sqlx::query_scalar(sql::END)
            .bind(id.to_string())
            .bind(reason.as_str())
            .bind(millis(at))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let Some(workspace) = workspace else {
            // Not active: nothing changed, and its workspace is left alone.
            return Ok(false);
        };
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

    /// The member is deleted under its row lock (`SKIP LOCKED`: another
    /// claim takes the next one); the session's insert and the workspace's
    /// refuse a chat that has a sandbox, and the rollback puts the member
    /// back.
    pub(crate) async fn claim_in_tx(
        &self,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let taken = sqlx::query(sql::TAKE_POOL_MEMBER)
            .bind(spec_hash.as_str())
            .bind(fingerprint)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let Some(member) = taken.as_ref().map(row::pool_member_from_row).transpose()? else {
            return Ok(None);
        };
        let inserted = sqlx::query(sql::INSERT_CLAIMED)
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
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| of_chat(self.error(e), &new.chat_id))?;
        let session = returned(inserted)?
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

/// Names the chat in a conflict's message.
fn of_chat(error: StoreError, chat: &ChatId) -> StoreError {
    match error {
        StoreError::Conflict(why) => StoreError::Conflict(format!("chat {chat}: {why}")),
        other => other,
    }
}
