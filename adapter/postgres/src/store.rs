//! `PostgresSessionStore`: the `SessionStore` port on one PostgreSQL
//! database. Every call is one statement on a pooled connection, except
//! `begin_create`, `end` and `claim_pool_member` (`transactions.rs`).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, NewSession, PoolMember, Session, SessionId, SpecHash,
    Timestamp, Workspace, WorkspaceFate, WorkspaceId,
};
use sandboxer_core::port::{Replacing, SessionStore, StoreError, Touch, Tracer};
use sandboxer_sql::{millis, ttl_millis};
use sqlx::postgres::{PgPool, PgRow};

use crate::error::store_error;
use crate::open::{Opened, open};
use crate::options::PostgresStoreOptions;
use crate::row;
use crate::sql;
use crate::telemetry::{Ids, op, traced};

/// The session store on PostgreSQL. Cheap to share behind an `Arc`; every
/// call is a CLIENT span on the tracer it was opened with.
pub struct PostgresSessionStore {
    pub(crate) pool: PgPool,
    target: String,
    tracer: Arc<dyn Tracer>,
}

impl fmt::Debug for PostgresSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSessionStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PostgresSessionStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`;
    /// `sslmode`, `sslrootcert`, `sslcert`, `sslkey` as libpq reads them)
    /// and applies pending migrations.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached or refuses now;
    /// `Other` for a bad URL, bad credentials or a schema this build does
    /// not know.
    pub async fn open(
        url: &str,
        options: PostgresStoreOptions,
        tracer: Arc<dyn Tracer>,
    ) -> Result<Self, StoreError> {
        let Opened { pool, target } = open(url, &options).await?;
        Ok(Self {
            pool,
            target,
            tracer,
        })
    }

    /// `host:port/database` of the store (no credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes every connection; calls after this fail `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn tracer(&self) -> &dyn Tracer {
        self.tracer.as_ref()
    }

    pub(crate) fn error(&self, error: sqlx::Error) -> StoreError {
        store_error(error, &self.target)
    }

    /// One session row by `query`, whose only parameter is `key`.
    async fn one_session(
        &self,
        query: &'static str,
        key: String,
    ) -> Result<Option<Session>, StoreError> {
        let found = sqlx::query(query)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        found.as_ref().map(row::session_from_row).transpose()
    }

    /// Session rows by `query`, bound to `bind`'s parameters.
    async fn sessions(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<Session>, StoreError> {
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        rows.iter().map(row::session_from_row).collect()
    }

    /// A write whose only parameter is `key`: whether it touched a row.
    async fn write_one(&self, statement: &'static str, key: String) -> Result<bool, StoreError> {
        let done = sqlx::query(statement)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn count(&self, query: &'static str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(query)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn stored_instance_id(&self) -> Result<String, StoreError> {
        let stored: Option<String> = sqlx::query_scalar(sql::GET_INSTANCE_ID)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        if let Some(id) = stored {
            return Ok(id);
        }
        // A concurrent first use on another replica may win: keep its id.
        let id = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
        sqlx::query(sql::INSERT_INSTANCE_ID)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        sqlx::query_scalar(sql::GET_INSTANCE_ID)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.error(e))
    }
}

fn ids_of_chat(chat: &ChatId) -> Ids<'_> {
    Ids {
        chat: Some(chat),
        ..Ids::default()
    }
}

fn ids_of_session(session: &SessionId) -> Ids<'_> {
    Ids {
        session: Some(session),
        ..Ids::default()
    }
}

fn ids_of_workspace(workspace: &WorkspaceId) -> Ids<'_> {
    Ids {
        workspace: Some(workspace),
        ..Ids::default()
    }
}

/// The one row a `RETURNING` statement gave, if any.
pub(crate) fn returned(rows: Option<PgRow>) -> Result<Option<Session>, StoreError> {
    rows.as_ref().map(row::session_from_row).transpose()
}

#[async_trait]
impl SessionStore for PostgresSessionStore {
    async fn get_active(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        let call = self.one_session(sql::GET_ACTIVE, chat.to_string());
        traced(self.tracer(), op::GET_ACTIVE, ids_of_chat(chat), call).await
    }

    async fn get_latest(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        let call = self.one_session(sql::GET_LATEST, chat.to_string());
        traced(self.tracer(), op::GET_LATEST, ids_of_chat(chat), call).await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let call = self.one_session(sql::GET, id.to_string());
        traced(self.tracer(), op::GET, ids_of_session(id), call).await
    }

    async fn list_active(&self) -> Result<Vec<Session>, StoreError> {
        let call = self.sessions(sqlx::query(sql::LIST_ACTIVE));
        traced(self.tracer(), op::LIST_ACTIVE, Ids::default(), call).await
    }

    async fn list_expired(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        let call = self.sessions(sqlx::query(sql::LIST_EXPIRED).bind(millis(now)));
        traced(self.tracer(), op::LIST_EXPIRED, Ids::default(), call).await
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        let call = self.count(sql::COUNT_ACTIVE);
        traced(self.tracer(), op::COUNT_ACTIVE, Ids::default(), call).await
    }

    async fn begin_create(
        &self,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        let workspace = new.workspace.id();
        let ids = Ids {
            chat: Some(&new.chat_id),
            session: Some(&new.id),
            workspace: Some(&workspace),
        };
        let call = self.create_in_tx(new, replacing);
        traced(self.tracer(), op::BEGIN_CREATE, ids, call).await
    }

    async fn mark_running(
        &self,
        id: &SessionId,
        container: &ContainerId,
    ) -> Result<Session, StoreError> {
        let call = async {
            let found = sqlx::query(sql::MARK_RUNNING)
                .bind(id.to_string())
                .bind(container.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            returned(found)?.ok_or(StoreError::NotFound(*id))
        };
        traced(self.tracer(), op::MARK_RUNNING, ids_of_session(id), call).await
    }

    async fn touch(&self, id: &SessionId, touch: Touch) -> Result<Option<Session>, StoreError> {
        let call = async {
            let found = sqlx::query(sql::TOUCH)
                .bind(id.to_string())
                .bind(millis(touch.last_used_at))
                .bind(millis(touch.expires_at))
                .bind(ttl_millis(touch.idle_ttl))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            returned(found)
        };
        traced(self.tracer(), op::TOUCH, ids_of_session(id), call).await
    }

    async fn end(
        &self,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError> {
        let call = self.end_in_tx(id, reason, at, fate);
        traced(self.tracer(), op::END, ids_of_session(id), call).await
    }

    async fn get_workspace(&self, chat: &ChatId) -> Result<Option<Workspace>, StoreError> {
        let call = async {
            let found = sqlx::query(sql::GET_WORKSPACE)
                .bind(chat.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            found.as_ref().map(row::workspace_from_row).transpose()
        };
        traced(self.tracer(), op::GET_WORKSPACE, ids_of_chat(chat), call).await
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        let call = async {
            let rows = sqlx::query(sql::LIST_WORKSPACES)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            rows.iter().map(row::workspace_from_row).collect()
        };
        traced(self.tracer(), op::LIST_WORKSPACES, Ids::default(), call).await
    }

    async fn count_hibernated(&self) -> Result<u64, StoreError> {
        let call = self.count(sql::COUNT_HIBERNATED);
        traced(self.tracer(), op::COUNT_HIBERNATED, Ids::default(), call).await
    }

    async fn retire_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        let call = self.write_one(sql::RETIRE_WORKSPACE, id.to_string());
        traced(
            self.tracer(),
            op::RETIRE_WORKSPACE,
            ids_of_workspace(id),
            call,
        )
        .await
    }

    async fn forget_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        let call = self.write_one(sql::FORGET_WORKSPACE, id.to_string());
        traced(
            self.tracer(),
            op::FORGET_WORKSPACE,
            ids_of_workspace(id),
            call,
        )
        .await
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        let call = async {
            let done = sqlx::query(sql::PURGE_ENDED)
                .bind(millis(before))
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            Ok(done.rows_affected())
        };
        traced(self.tracer(), op::PURGE_ENDED, Ids::default(), call).await
    }

    async fn add_pool_member(&self, member: &PoolMember) -> Result<(), StoreError> {
        let ids = Ids {
            session: Some(&member.session_id),
            workspace: Some(&member.workspace_id),
            ..Ids::default()
        };
        let call = async {
            sqlx::query(sql::INSERT_POOL_MEMBER)
                .bind(member.session_id.to_string())
                .bind(member.workspace_id.to_string())
                .bind(member.container_id.as_ref().map(ContainerId::as_str))
                .bind(member.image.as_str())
                .bind(member.spec_hash.as_str())
                .bind(member.fingerprint.as_str())
                .bind(millis(member.created_at))
                .bind(member.status.as_str())
                .execute(&self.pool)
                .await
                .map(drop)
                .map_err(|e| self.error(e))
        };
        traced(self.tracer(), op::ADD_POOL_MEMBER, ids, call).await
    }

    async fn mark_pool_ready(
        &self,
        session: &SessionId,
        container: &ContainerId,
    ) -> Result<bool, StoreError> {
        let call = async {
            let done = sqlx::query(sql::MARK_POOL_READY)
                .bind(session.to_string())
                .bind(container.as_str())
                .execute(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            Ok(done.rows_affected() > 0)
        };
        traced(
            self.tracer(),
            op::MARK_POOL_READY,
            ids_of_session(session),
            call,
        )
        .await
    }

    async fn list_pool(&self) -> Result<Vec<PoolMember>, StoreError> {
        let call = async {
            let rows = sqlx::query(sql::LIST_POOL)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            rows.iter().map(row::pool_member_from_row).collect()
        };
        traced(self.tracer(), op::LIST_POOL, Ids::default(), call).await
    }

    async fn remove_pool_member(&self, session: &SessionId) -> Result<bool, StoreError> {
        let call = self.write_one(sql::REMOVE_POOL_MEMBER, session.to_string());
        traced(
            self.tracer(),
            op::REMOVE_POOL_MEMBER,
            ids_of_session(session),
            call,
        )
        .await
    }

    async fn claim_pool_member(
        &self,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        let call = self.claim_in_tx(spec_hash, fingerprint, new);
        traced(
            self.tracer(),
            op::CLAIM_POOL_MEMBER,
            ids_of_chat(&new.chat_id),
            call,
        )
        .await
    }

    async fn instance_id(&self) -> Result<String, StoreError> {
        let call = self.stored_instance_id();
        traced(self.tracer(), op::INSTANCE_ID, Ids::default(), call).await
    }

    async fn close(&self) {
        PostgresSessionStore::close(self).await;
    }

    /// Ready means a connection to a primary: a standby (or a failover
    /// under way) takes no writes and is not ready.
    async fn ping(&self) -> Result<(), StoreError> {
        let call = async {
            let primary: bool = sqlx::query_scalar(sql::PING)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            if primary {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL {} is a standby (read-only)",
                    self.target
                )))
            }
        };
        traced(self.tracer(), op::PING, Ids::default(), call).await
    }
}
