//! `SqliteSessionStore`: the `SessionStore` port on one SQLite file.
//! Reads go to a small reader pool, writes to the single writer; each call
//! is one statement, except `begin_create`, which is one transaction. A
//! writer connection a write failed on is closed, not reused (`settle`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, NewSession, Session, SessionId, Timestamp,
};
use sandboxer_core::port::{Replacing, SessionStore, StoreError, Touch, Tracer};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Connection, Row};

use crate::checkpoint::Checkpointer;
use crate::error::store_error;
use crate::open::{Opened, open};
use crate::options::SqliteStoreOptions;
use crate::row::{env_json, millis, session_from_row, ttl_millis};
use crate::sql;
use crate::telemetry::{Ids, op, traced};

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

    /// The writer connection, for one write; hand it to `settle` after.
    pub(crate) async fn writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        self.writer.acquire().await.map_err(|e| self.error(e))
    }

    async fn create_in_tx(
        &self,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        let mut conn = self.writer().await?;
        let created = self.create_on(&mut conn, new, replacing).await;
        settle(&mut conn, &created);
        created
    }

    async fn create_on(
        &self,
        conn: &mut SqliteConnection,
        new: &NewSession,
        replacing: Option<&Replacing>,
    ) -> Result<Session, StoreError> {
        // IMMEDIATE takes the write lock now (waiting up to the busy timeout)
        // rather than at the first write: the replaced row's state and the
        // chat's max generation are then read under the lock, and no other
        // process can commit in between.
        let mut tx = conn
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.error(e))?;
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
                // Dropping `tx` rolls back: sqlx queues the ROLLBACK on the
                // connection before it goes back to the pool.
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
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| match self.error(e) {
                StoreError::Conflict(why) => {
                    StoreError::Conflict(format!("chat {}: {why}", new.chat_id))
                }
                other => other,
            })?;
        let session = returned(&rows)?
            .ok_or_else(|| StoreError::Other("the insert returned no row".into()))?;
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(session)
    }
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn get_active(&self, chat: &ChatId) -> Result<Option<Session>, StoreError> {
        let ids = Ids {
            chat: Some(chat),
            ..Ids::default()
        };
        traced(self.tracer(), op::GET_ACTIVE, ids, async {
            let row = sqlx::query(sql::GET_ACTIVE)
                .bind(chat.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(|e| self.error(e))?;
            row.as_ref().map(session_from_row).transpose()
        })
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
        let ids = Ids {
            chat: Some(&new.chat_id),
            session: Some(&new.id),
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
    ) -> Result<bool, StoreError> {
        let ids = Ids {
            session: Some(id),
            ..Ids::default()
        };
        traced(self.tracer(), op::END, ids, async {
            let mut conn = self.writer().await?;
            let done = sqlx::query(sql::END)
                .bind(id.to_string())
                .bind(reason.as_str())
                .bind(millis(at))
                .execute(&mut *conn)
                .await
                .map_err(|e| self.error(e));
            settle(&mut conn, &done);
            Ok(done?.rows_affected() > 0)
        })
        .await
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
fn returned(rows: &[SqliteRow]) -> Result<Option<Session>, StoreError> {
    rows.first().map(session_from_row).transpose()
}
