//! The workspace calls beside `begin_create` and `end`: the chat's live
//! workspace, the listing and count cleanup reads, and the two steps of
//! deleting a hibernated workspace (`retire`, then `forget` once its volume
//! is gone). Each is one statement.

use sandboxer_core::domain::{ChatId, Workspace, WorkspaceId};
use sandboxer_core::port::StoreError;

use crate::row::workspace_from_row;
use crate::sql;
use crate::store::{SqliteSessionStore, settle};

impl SqliteSessionStore {
    pub(crate) async fn live_workspace(
        &self,
        chat: &ChatId,
    ) -> Result<Option<Workspace>, StoreError> {
        let row = sqlx::query(sql::GET_WORKSPACE)
            .bind(chat.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.error(e))?;
        row.as_ref().map(workspace_from_row).transpose()
    }

    pub(crate) async fn all_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        let rows = sqlx::query(sql::LIST_WORKSPACES)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(workspace_from_row).collect()
    }

    pub(crate) async fn hibernated(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(sql::COUNT_HIBERNATED)
            .fetch_one(&self.reader)
            .await
            .map_err(|e| self.error(e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// `true` when the workspace is (now) `deleting`.
    pub(crate) async fn retire(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        self.write_one(sql::RETIRE_WORKSPACE, id).await
    }

    /// `true` when a `deleting` row went.
    pub(crate) async fn forget(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        self.write_one(sql::FORGET_WORKSPACE, id).await
    }

    /// Runs a write bound to a workspace id: whether it touched a row.
    async fn write_one(
        &self,
        statement: &'static str,
        id: &WorkspaceId,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer().await?;
        let done = sqlx::query(statement)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(|e| self.error(e));
        settle(&mut conn, &done);
        Ok(done?.rows_affected() > 0)
    }
}
