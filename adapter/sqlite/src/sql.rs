//! The store's SQL, one statement per operation. Every filter on active rows
//! repeats `status IN ('creating', 'running')` word for word: that is the
//! WHERE of the partial indexes, and SQLite only uses a partial index when
//! the query implies it.

use crate::row::session_columns;

pub(crate) const GET_ACTIVE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE chat_id = ?1 AND status IN ('creating', 'running')"
);

pub(crate) const GET: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id = ?1"
);

pub(crate) const LIST_ACTIVE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE status IN ('creating', 'running') ORDER BY created_at, id"
);

pub(crate) const LIST_EXPIRED: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE status IN ('creating', 'running') AND expires_at <= ?1",
    " ORDER BY expires_at, id"
);

pub(crate) const COUNT_ACTIVE: &str =
    "SELECT count(*) FROM sessions WHERE status IN ('creating', 'running')";

/// The compare-and-swap half of `begin_create`: ends the replaced session
/// only while it is still active at the generation the caller read.
pub(crate) const END_REPLACED: &str = "UPDATE sessions \
     SET status = 'ended', end_reason = ?1, ended_at = ?2 \
     WHERE id = ?3 AND chat_id = ?4 AND generation = ?5 \
     AND status IN ('creating', 'running')";

/// The chat's next generation is computed inside the insert, under the
/// write lock `BEGIN IMMEDIATE` took, so no other writer can slip between.
pub(crate) const INSERT_CREATING: &str = concat!(
    "INSERT INTO sessions (id, chat_id, image, spec_hash, generation, idle_ttl_ms, ",
    "created_at, last_used_at, expires_at, status, image_override, env_json) ",
    "VALUES (?1, ?2, ?3, ?4, ",
    "(SELECT coalesce(max(generation), 0) + 1 FROM sessions WHERE chat_id = ?2), ",
    "?5, ?6, ?6, ?7, 'creating', ?8, ?9) RETURNING ",
    session_columns!()
);

pub(crate) const MARK_RUNNING: &str = concat!(
    "UPDATE sessions SET status = 'running', container_id = ?2 ",
    "WHERE id = ?1 AND status = 'creating' RETURNING ",
    session_columns!()
);

pub(crate) const TOUCH: &str = concat!(
    "UPDATE sessions SET last_used_at = ?2, expires_at = ?3, idle_ttl_ms = ?4 ",
    "WHERE id = ?1 AND status IN ('creating', 'running') RETURNING ",
    session_columns!()
);

pub(crate) const END: &str = "UPDATE sessions \
     SET status = 'ended', end_reason = ?2, ended_at = ?3 \
     WHERE id = ?1 AND status IN ('creating', 'running')";

/// Keeps each chat's latest row even when it ended long ago, so the chat's
/// generation keeps counting up instead of restarting at 1.
pub(crate) const PURGE_ENDED: &str = "DELETE FROM sessions \
     WHERE status = 'ended' AND ended_at < ?1 \
     AND generation < (SELECT max(s.generation) FROM sessions AS s WHERE s.chat_id = sessions.chat_id)";

pub(crate) const GET_INSTANCE_ID: &str = "SELECT instance_id FROM deployment WHERE singleton = 1";

pub(crate) const INSERT_INSTANCE_ID: &str =
    "INSERT INTO deployment (singleton, instance_id) VALUES (1, ?1) ON CONFLICT DO NOTHING";

pub(crate) const ANY_SESSION: &str = "SELECT count(*) FROM (SELECT 1 FROM sessions LIMIT 1)";

/// Reads the schema, so it fails when the file is gone or unreadable.
pub(crate) const PING: &str = "SELECT count(*) FROM sqlite_schema";

/// The header field the readiness probe writes back unchanged: a committed
/// write (a page in the WAL), which a write that changes no row is not.
pub(crate) const READ_PROBE_FIELD: &str = "PRAGMA user_version";
