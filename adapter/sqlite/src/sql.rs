//! The store's SQL, one statement per operation. Every filter on active rows
//! repeats `status IN ('creating', 'running')` word for word: that is the
//! WHERE of the partial indexes, and SQLite only uses a partial index when
//! the query implies it.

use sandboxer_sql::{pool_columns, session_columns, workspace_columns};

pub(crate) const GET_ACTIVE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE chat_id = ?1 AND status IN ('creating', 'running')"
);

/// The chat's highest generation, in any status (the unique index on
/// `(chat_id, generation)` serves it).
pub(crate) const GET_LATEST: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE chat_id = ?1 ORDER BY generation DESC LIMIT 1"
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
    "created_at, last_used_at, expires_at, status, image_override, env_json, workspace_id) ",
    "VALUES (?1, ?2, ?3, ?4, ",
    "(SELECT coalesce(max(generation), 0) + 1 FROM sessions WHERE chat_id = ?2), ",
    "?5, ?6, ?6, ?7, 'creating', ?8, ?9, ?10) RETURNING ",
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

/// A `Fresh` workspace of `begin_create`; the partial unique index refuses
/// a second live one for the chat.
pub(crate) const INSERT_WORKSPACE: &str = "INSERT INTO workspaces \
     (id, chat_id, created_at, created_by, status) VALUES (?1, ?2, ?3, ?4, 'live')";

/// A `Kept` workspace of `begin_create`: only the chat's live one, which
/// stops being hibernated.
pub(crate) const TAKE_WORKSPACE: &str = "UPDATE workspaces \
     SET hibernated_at = NULL, retained_until = NULL \
     WHERE id = ?1 AND chat_id = ?2 AND status = 'live'";

/// Returns the workspace, whose fate is settled in the same transaction.
pub(crate) const END: &str = "UPDATE sessions \
     SET status = 'ended', end_reason = ?2, ended_at = ?3 \
     WHERE id = ?1 AND status IN ('creating', 'running') RETURNING workspace_id";

pub(crate) const HIBERNATE_WORKSPACE: &str = "UPDATE workspaces \
     SET hibernated_at = ?2, retained_until = ?3 WHERE id = ?1 AND status = 'live'";

pub(crate) const DELETE_WORKSPACE: &str =
    "UPDATE workspaces SET status = 'deleting' WHERE id = ?1 AND status = 'live'";

pub(crate) const GET_WORKSPACE: &str = concat!(
    "SELECT ",
    workspace_columns!(),
    " FROM workspaces WHERE chat_id = ?1 AND status = 'live'"
);

pub(crate) const LIST_WORKSPACES: &str = concat!(
    "SELECT ",
    workspace_columns!(),
    " FROM workspaces ORDER BY created_at, id"
);

pub(crate) const COUNT_HIBERNATED: &str = "SELECT count(*) FROM workspaces \
     WHERE status = 'live' AND retained_until IS NOT NULL";

/// One statement, so nothing can take the workspace over in between: a
/// hibernated workspace no session runs on becomes `deleting`; one that is
/// `deleting` already counts as done (rewritten unchanged).
pub(crate) const RETIRE_WORKSPACE: &str = "UPDATE workspaces SET status = 'deleting' \
     WHERE id = ?1 AND (status = 'deleting' OR (status = 'live' AND retained_until IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM sessions \
     WHERE workspace_id = ?1 AND status IN ('creating', 'running'))))";

pub(crate) const FORGET_WORKSPACE: &str =
    "DELETE FROM workspaces WHERE id = ?1 AND status = 'deleting'";

/// Keeps each chat's latest row even when it ended long ago, so the chat's
/// generation keeps counting up instead of restarting at 1.
pub(crate) const PURGE_ENDED: &str = "DELETE FROM sessions \
     WHERE status = 'ended' AND ended_at < ?1 \
     AND generation < (SELECT max(s.generation) FROM sessions AS s WHERE s.chat_id = sessions.chat_id)";

pub(crate) const INSERT_POOL_MEMBER: &str = "INSERT INTO pool_members \
     (session_id, workspace_id, container_id, image, spec_hash, fingerprint, created_at, status) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

pub(crate) const MARK_POOL_READY: &str = "UPDATE pool_members \
     SET status = 'ready', container_id = ?2 WHERE session_id = ?1 AND status = 'warming'";

pub(crate) const LIST_POOL: &str = concat!(
    "SELECT ",
    pool_columns!(),
    " FROM pool_members ORDER BY created_at, session_id"
);

pub(crate) const REMOVE_POOL_MEMBER: &str = "DELETE FROM pool_members WHERE session_id = ?1";

/// The first step of a claim: picks and deletes the oldest ready member of
/// a spec hash and fingerprint in one statement (under the claim's write
/// lock), so no other claim can take it.
pub(crate) const TAKE_POOL_MEMBER: &str = concat!(
    "DELETE FROM pool_members WHERE session_id = (SELECT session_id FROM pool_members ",
    "WHERE spec_hash = ?1 AND fingerprint = ?2 AND status = 'ready' ",
    "ORDER BY created_at, session_id LIMIT 1) RETURNING ",
    pool_columns!()
);

/// A claimed member's session: `running` on its container from the start,
/// at the chat's next generation (computed under the write lock, as in
/// `INSERT_CREATING`); the unique index refuses it beside an active one.
pub(crate) const INSERT_CLAIMED: &str = concat!(
    "INSERT INTO sessions (id, chat_id, container_id, image, spec_hash, generation, ",
    "idle_ttl_ms, created_at, last_used_at, expires_at, status, image_override, env_json, ",
    "workspace_id) VALUES (?1, ?2, ?3, ?4, ?5, ",
    "(SELECT coalesce(max(generation), 0) + 1 FROM sessions WHERE chat_id = ?2), ",
    "?6, ?7, ?7, ?8, 'running', ?9, ?10, ?11) RETURNING ",
    session_columns!()
);

pub(crate) const GET_INSTANCE_ID: &str = "SELECT instance_id FROM deployment WHERE singleton = 1";

pub(crate) const INSERT_INSTANCE_ID: &str =
    "INSERT INTO deployment (singleton, instance_id) VALUES (1, ?1) ON CONFLICT DO NOTHING";

pub(crate) const ANY_SESSION: &str = "SELECT count(*) FROM (SELECT 1 FROM sessions LIMIT 1)";

/// Reads the schema, so it fails when the file is gone or unreadable.
pub(crate) const PING: &str = "SELECT count(*) FROM sqlite_schema";

/// The header field the readiness probe writes back unchanged: a committed
/// write (a page in the WAL), which a write that changes no row is not.
pub(crate) const READ_PROBE_FIELD: &str = "PRAGMA user_version";
