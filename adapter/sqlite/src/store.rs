//! `SqliteSessionStore`: the `SessionStore` port on one SQLite file.
//! Reads go to a small reader pool, writes to the single writer; each call
//! is one statement, except `begin_create`, `end` (`transactions.rs`) and
//! `claim_pool_member` (`pool.rs`), which are one transaction each. A writer connection a write failed
//! on is closed, not reused (`settle`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, NewSession, PoolMember, Session, SessionId, SpecHash,
    Timestamp, Workspace, WorkspaceFate, WorkspaceId,
};
use sandboxer_core::port::{Replacing, SessionStore, StoreError, Touch, Tracer};
use sqlx::Row;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqlitePool, SqliteRow};

use crate::checkpoint::Checkpointer;
use crate::error::store_error;
use crate::open::{Opened, open};
use crate::options::SqliteStoreOptions;
use crate::row::{millis, session_from_row, ttl_millis};
use crate::sql;
use crate::telemetry::{Ids, Op, op, traced};

/// The session store on one SQLite file. Cheap to share behind an `Arc`;
/// every call is a CLIENT span on the tracer it was opened with.
pub struct SqliteSessionStore {
    pub(crate) reader: SqlitePool,
    writer: SqlitePool,
    path: PathBuf,
    tracer: Arc<dyn Tracer>,
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl fmt::Debug for SqliteSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSessionStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteSessionStore {
    /// Opens (and on first start creates, with its directory) the database
    /// at `location`: a path (`sandboxer.db`, `/var/lib/sandboxer/s.db`) or a
    /// `sqlite:` URL (`sqlite:///var/lib/s.db`; `?mode=ro` opens read-only,
    /// `?mode=rw` refuses to create). Applies pending migrations.
    ///
    /// # Errors
    /// `Unavailable` when the file or its directory cannot be created or
    /// opened, or the database stays locked; `Other` for a bad location or a
    /// schema this build does not know.
    pub async fn open(
        location: &str,
        options: SqliteStoreOptions,
        tracer: Arc<dyn Tracer>,
    ) -> Result<Self, StoreError> {
        let Opened {
            reader,
            writer,
            path,
            checkpointer,
        } = open(location, &options).await?;
        Ok(Self {
            reader,
            writer,
            path,
            tracer,
            checkpointer: Mutex::new(checkpointer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the background checkpoints and closes every connection (the
    /// last connection to the file folds the WAL back into it). Calls after
    /// this fail with `Unavailable`.
    pub async fn close(&self) {
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut checkpointer) = checkpointer {
            checkpointer.stop().await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    pub(crate) fn tracer(&self) -> &dyn Tracer {
        self.tracer.as_ref()
    }

    pub(crate) fn error(&self, error: sqlx::Error) -> StoreError {
        store_error(error, &self.path)
    }

    /// One session row of `chat` by `query` (its only parameter), traced as `operation`.
    async fn session_of_chat(
        &self,
        operation: Op,
        query: &'static str,
        chat: &ChatId,
    ) -> Result<Option<Session>, StoreError> {
        let ids = Ids {
            chat: Some(chat),
            ..Ids::default()
        };
        traced(self.tracer(), operation, ids, async {
            let row = sqlx::query(query)
                .bind(chat.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(|e| self.error(e))?;
            row.as_ref().map(session_from_row).transpose()
        })
        .await
    }

    /// The writer connection, for one write; hand it to `settle` after.
    pub(crate) async fn writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.writer.acquire().await.map_err(|e| self.error(e))
    }
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn get_active(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        self.session_of_chat(op::GET_ACTIVE, sql::GET_ACTIVE, chat)
            .await
    }

    async fn get_latest(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        self.session_of_chat(op::GET_LATEST, sql::GET_LATEST, chat)
            .await
    }

    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let ids = Ids {
            session: Some(id),
            ..Ids::default()
        };
        traced(self.tracer(), op::GET, ids, async {
            let row = sqlx::query(sql::GET)
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(|e| self.error(e))?;
            row.as_ref().map(session_from_row).transpose()
        })
        .await
    }

    async fn list_active(&self) -> Result<Vec<Session>, StoreError> {
        traced(self.tracer(), op::LIST_ACTIVE, Ids::default(), async {
            let rows = sqlx::query(sql::LIST_ACTIVE)
                .fetch_all(&self.reader)
                .await
                .map_err(|e| self.error(e))?;
            sessions(&rows)
        })
        .await
    }

    async fn list_expired(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        traced(self.tracer(), op::LIST_EXPIRED, Ids::default(), async {
            let rows = sqlx::query(sql::LIST_EXPIRED)
                .bind(millis(now))
                .fetch_all(&self.reader)
                .await
                .map_err(|e| self.error(e))?;
            sessions(&rows)
        })
        .await
    }

    async fn count_active(&self) -> Result<u64, StoreError> {
        traced(self.tracer(), op::COUNT_ACTIVE, Ids::default(), async {
            let row = sqlx::query(sql::COUNT_ACTIVE)
                .fetch_one(&self.reader)
                .await
                .map_err(|e| self.error(e))?;
            let count: i64 = row.try_get(0).map_err(|e| self.error(e))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
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
        traced(
            self.tracer(),
            op::BEGIN_CREATE,
            ids,
            self.create_in_tx(new, replacing),
        )
        .await
    }

    async fn mark_running(
        &self,
        id: &SessionId,
        container: &ContainerId,
    ) -> Result<Session, StoreError> {
        let ids = Ids {
            session: Some(id),
            ..Ids::default()
        };
        traced(self.tracer(), op::MARK_RUNNING, ids, async {
            let mut conn = self.writer().await?;
            let rows = sqlx::query(sql::MARK_RUNNING)
                .bind(id.to_string())
                .bind(container.as_str())
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| self.error(e));
            settle(&mut conn, &rows);
            returned(&rows?)?.ok_or(StoreError::NotFound(*id))
        })
        .await
    }

    async fn touch(&self, id: &SessionId, touch: Touch) -> Result<Option<Session>, StoreError> {
        let ids = Ids {
            session: Some(id),
            ..Ids::default()
        };
        traced(self.tracer(), op::TOUCH, ids, async {
            let mut conn = self.writer().await?;
            let rows = sqlx::query(sql::TOUCH)
                .bind(id.to_string())
                .bind(millis(touch.last_used_at))
                .bind(millis(touch.expires_at))
                .bind(ttl_millis(touch.idle_ttl))
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| self.error(e));
            settle(&mut conn, &rows);
            returned(&rows?)
        })
        .await
    }

    async fn end(
        &self,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
        fate: WorkspaceFate,
    ) -> Result<bool, StoreError> {
        let ids = Ids {
            session: Some(id),
            ..Ids::default()
        };
        traced(
            self.tracer(),
            op::END,
            ids,
            self.end_in_tx(id, reason, at, fate),
        )
        .await
    }

    async fn get_workspace(&self, chat: &ChatId) -> Result<Option<Workspace>, StoreError> {
        let ids = Ids {
            chat: Some(chat),
            ..Ids::default()
        };
        traced(
            self.tracer(),
            op::GET_WORKSPACE,
            ids,
            self.live_workspace(chat),
        )
        .await
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        traced(
            self.tracer(),
            op::LIST_WORKSPACES,
            Ids::default(),
            self.all_workspaces(),
        )
        .await
    }

    async fn count_hibernated(&self) -> Result<u64, StoreError> {
        traced(
            self.tracer(),
            op::COUNT_HIBERNATED,
            Ids::default(),
            self.hibernated(),
        )
        .await
    }

    async fn retire_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        let ids = Ids {
            workspace: Some(id),
            ..Ids::default()
        };
        traced(self.tracer(), op::RETIRE_WORKSPACE, ids, self.retire(id)).await
    }

    async fn forget_workspace(&self, id: &WorkspaceId) -> Result<bool, StoreError> {
        let ids = Ids {
            workspace: Some(id),
            ..Ids::default()
        };
        traced(self.tracer(), op::FORGET_WORKSPACE, ids, self.forget(id)).await
    }

    async fn purge_ended(&self, before: Timestamp) -> Result<u64, StoreError> {
        traced(
            self.tracer(),
            op::PURGE_ENDED,
            Ids::default(),
            self.purge(before),
        )
        .await
    }

    async fn add_pool_member(&self, member: &PoolMember) -> Result<(), StoreError> {
        let ids = Ids {
            session: Some(&member.session_id),
            workspace: Some(&member.workspace_id),
            ..Ids::default()
        };
        traced(
            self.tracer(),
            op::ADD_POOL_MEMBER,
            ids,
            self.add_member(member),
        )
        .await
    }

    async fn mark_pool_ready(
        &self,
        session: &SessionId,
        container: &ContainerId,
    ) -> Result<bool, StoreError> {
        let ids = Ids {
            session: Some(session),
            ..Ids::default()
        };
        traced(
            self.tracer(),
            op::MARK_POOL_READY,
            ids,
            self.member_ready(session, container),
        )
        .await
    }

    async fn list_pool(&self) -> Result<Vec<PoolMember>, StoreError> {
        traced(self.tracer(), op::LIST_POOL, Ids::default(), self.members()).await
    }

    async fn remove_pool_member(&self, session: &SessionId) -> Result<bool, StoreError> {
        let ids = Ids {
            session: Some(session),
            ..Ids::default()
        };
        traced(
            self.tracer(),
            op::REMOVE_POOL_MEMBER,
            ids,
            self.remove_member(session),
        )
        .await
    }

    async fn claim_pool_member(
        &self,
        spec_hash: &SpecHash,
        fingerprint: &str,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        let ids = Ids {
            chat: Some(&new.chat_id),
            ..Ids::default()
        };
        traced(
            self.tracer(),
            op::CLAIM_POOL_MEMBER,
            ids,
            self.claim_in_tx(spec_hash, fingerprint, new),
        )
        .await
    }

    async fn instance_id(&self) -> Result<String, StoreError> {
        traced(
            self.tracer(),
            op::INSTANCE_ID,
            Ids::default(),
            self.stored_instance_id(),
        )
        .await
    }

    async fn close(&self) {
        SqliteSessionStore::close(self).await;
    }

    /// Ready means reads and writes: a read, then a committed write of a
    /// header field with its own value. A write that changes no row would
    /// pass on an open connection to a file that takes no writes (SQLite
    /// writes nothing until a commit), so the probe commits one page. A lock
    /// held elsewhere, a file only readable or a full disk fails it.
    async fn ping(&self) -> Result<(), StoreError> {
        traced(self.tracer(), op::PING, Ids::default(), async {
            sqlx::query(sql::PING)
                .fetch_one(&self.reader)
                .await
                .map(drop)
                .map_err(|e| self.error(e))?;
            let mut conn = self.writer().await?;
            let probed = async {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let wrote = async {
                    let value: i64 = sqlx::query_scalar(sql::READ_PROBE_FIELD)
                        .fetch_one(&mut *conn)
                        .await?;
                    // A pragma takes no bound parameter; the value is an integer.
                    let write = format!("{} = {value}", sql::READ_PROBE_FIELD);
                    sqlx::query(sqlx::AssertSqlSafe(write))
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("COMMIT").execute(&mut *conn).await
                }
                .await;
                if wrote.is_err() {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                }
                wrote.map(drop)
            }
            .await
            .map_err(|e| self.error(e));
            settle(&mut conn, &probed);
            probed
        })
        .await
    }
}

/// Gives the writer connection back to the pool unless the write failed on
/// the file (`Unavailable`: read-only, I/O error, disk full, locked; or
/// `Other`). Such a connection may be useless for good: SQLite opens a
/// write-protected file read-only without a word, and after a COMMIT the
/// file refused, SQLite has rolled back while sqlx still counts the
/// transaction open, so every later `BEGIN` on it is refused. Closed, it is
/// replaced by a fresh one at the next write, which works as soon as the
/// file takes writes again.
pub(crate) fn settle<T>(conn: &mut PoolConnection<Sqlite>, result: &Result<T, StoreError>) {
    if matches!(
        result,
        Err(StoreError::Unavailable(_) | StoreError::Other(_))
    ) {
        conn.close_on_drop();
    }
}

fn sessions(rows: &[SqliteRow]) -> Result<Vec<Session>, StoreError> {
    rows.iter().map(session_from_row).collect()
}

/// The one row a `RETURNING` statement gave, if any. Such statements are
/// read with `fetch_all`: SQLite commits (and may fail with BUSY) only when
/// the statement runs to completion, which `fetch_optional` would cut short,
/// and sqlx ignores the error of the reset that then finishes it.
pub(crate) fn returned(rows: &[SqliteRow]) -> Result<Option<Session>, StoreError> {
    rows.first().map(session_from_row).transpose()
}
