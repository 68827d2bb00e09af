//! The store's SQL, one statement per operation; `$n` parameters. Filters on
//! active rows repeat `status IN ('creating', 'running')`, the WHERE of the
//! partial indexes.

use sandboxer_sql::{pool_columns, session_columns, workspace_columns};

pub(crate) const GET_ACTIVE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE chat_id = $1 AND status IN ('creating', 'running')"
);

pub(crate) const GET_LATEST: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE chat_id = $1 ORDER BY generation DESC LIMIT 1"
);

pub(crate) const GET: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE id = $1"
);

pub(crate) const LIST_ACTIVE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE status IN ('creating', 'running') ORDER BY created_at, id"
);

pub(crate) const LIST_EXPIRED: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE status IN ('creating', 'running') AND expires_at <= $1",
    " ORDER BY expires_at, id"
);

pub(crate) const COUNT_ACTIVE: &str =
    "SELECT count(*) FROM sessions WHERE status IN ('creating', 'running')";

/// The compare-and-swap half of `begin_create`. A concurrent replace waits
/// on the row's lock, then finds it ended and changes nothing.
pub(crate) const END_REPLACED: &str = "UPDATE sessions \
     SET status = 'ended', end_reason = $1, ended_at = $2 \
     WHERE id = $3 AND chat_id = $4 AND generation = $5 \
     AND status IN ('creating', 'running')";

/// Two inserts that computed the same generation collide on the unique
/// indexes (the second waits for the first to commit, then fails): one wins.
pub(crate) const INSERT_CREATING: &str = concat!(
    "INSERT INTO sessions (id, chat_id, image, spec_hash, generation, idle_ttl_ms, ",
    "created_at, last_used_at, expires_at, status, image_override, env_json, workspace_id) ",
    "VALUES ($1, $2, $3, $4, ",
    "(SELECT coalesce(max(generation), 0) + 1 FROM sessions WHERE chat_id = $2), ",
    "$5, $6, $6, $7, 'creating', $8, $9, $10) RETURNING ",
    session_columns!()
);

pub(crate) const MARK_RUNNING: &str = concat!(
    "UPDATE sessions SET status = 'running', container_id = $2 ",
    "WHERE id = $1 AND status = 'creating' RETURNING ",
    session_columns!()
);

pub(crate) const TOUCH: &str = concat!(
    "UPDATE sessions SET last_used_at = $2, expires_at = $3, idle_ttl_ms = $4 ",
    "WHERE id = $1 AND status IN ('creating', 'running') RETURNING ",
    session_columns!()
);

pub(crate) const INSERT_WORKSPACE: &str = "INSERT INTO workspaces \
     (id, chat_id, created_at, created_by, status) VALUES ($1, $2, $3, $4, 'live')";

pub(crate) const TAKE_WORKSPACE: &str = "UPDATE workspaces \
     SET hibernated_at = NULL, retained_until = NULL \
     WHERE id = $1 AND chat_id = $2 AND status = 'live'";

pub(crate) const END: &str = "UPDATE sessions \
     SET status = 'ended', end_reason = $2, ended_at = $3 \
     WHERE id = $1 AND status IN ('creating', 'running') RETURNING workspace_id";

pub(crate) const HIBERNATE_WORKSPACE: &str = "UPDATE workspaces \
     SET hibernated_at = $2, retained_until = $3 WHERE id = $1 AND status = 'live'";

pub(crate) const DELETE_WORKSPACE: &str =
    "UPDATE workspaces SET status = 'deleting' WHERE id = $1 AND status = 'live'";

pub(crate) const GET_WORKSPACE: &str = concat!(
    "SELECT ",
    workspace_columns!(),
    " FROM workspaces WHERE chat_id = $1 AND status = 'live'"
);

pub(crate) const LIST_WORKSPACES: &str = concat!(
    "SELECT ",
    workspace_columns!(),
    " FROM workspaces ORDER BY created_at, id"
);

pub(crate) const COUNT_HIBERNATED: &str = "SELECT count(*) FROM workspaces \
     WHERE status = 'live' AND retained_until IS NOT NULL";

/// One statement on the workspace's row: a resume that took the row first
/// leaves it not hibernated (re-checked after its lock), one that comes
/// second finds it `deleting` and fails.
pub(crate) const RETIRE_WORKSPACE: &str = "UPDATE workspaces SET status = 'deleting' \
     WHERE id = $1 AND (status = 'deleting' OR (status = 'live' AND retained_until IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM sessions \
     WHERE workspace_id = $1 AND status IN ('creating', 'running'))))";

pub(crate) const FORGET_WORKSPACE: &str =
    "DELETE FROM workspaces WHERE id = $1 AND status = 'deleting'";

/// Keeps each chat's latest row, so its generation keeps counting up.
pub(crate) const PURGE_ENDED: &str = "DELETE FROM sessions \
     WHERE status = 'ended' AND ended_at < $1 \
     AND generation < (SELECT max(s.generation) FROM sessions AS s WHERE s.chat_id = sessions.chat_id)";

pub(crate) const INSERT_POOL_MEMBER: &str = "INSERT INTO pool_members \
     (session_id, workspace_id, container_id, image, spec_hash, fingerprint, created_at, status) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(crate) const MARK_POOL_READY: &str = "UPDATE pool_members \
     SET status = 'ready', container_id = $2 WHERE session_id = $1 AND status = 'warming'";

pub(crate) const LIST_POOL: &str = concat!(
    "SELECT ",
    pool_columns!(),
    " FROM pool_members ORDER BY created_at, session_id"
);

pub(crate) const REMOVE_POOL_MEMBER: &str = "DELETE FROM pool_members WHERE session_id = $1";

/// The first step of a claim: the oldest ready member nobody else is
/// claiming right now (`SKIP LOCKED`: concurrent claims take the next one
/// instead of waiting), deleted in the claim's transaction.
pub(crate) const TAKE_POOL_MEMBER: &str = concat!(
    "DELETE FROM pool_members WHERE session_id = (SELECT session_id FROM pool_members ",
    "WHERE spec_hash = $1 AND fingerprint = $2 AND status = 'ready' ",
    "ORDER BY created_at, session_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING ",
    pool_columns!()
);

pub(crate) const INSERT_CLAIMED: &str = concat!(
    "INSERT INTO sessions (id, chat_id, container_id, image, spec_hash, generation, ",
    "idle_ttl_ms, created_at, last_used_at, expires_at, status, image_override, env_json, ",
    "workspace_id) VALUES ($1, $2, $3, $4, $5, ",
    "(SELECT coalesce(max(generation), 0) + 1 FROM sessions WHERE chat_id = $2), ",
    "$6, $7, $7, $8, 'running', $9, $10, $11) RETURNING ",
    session_columns!()
);

/// The first replica to ask stores a random id; every other one reads it.
pub(crate) const INSERT_INSTANCE_ID: &str = "INSERT INTO deployment (singleton, instance_id) \
     VALUES (1, $1) ON CONFLICT DO NOTHING";

pub(crate) const GET_INSTANCE_ID: &str = "SELECT instance_id FROM deployment WHERE singleton = 1";

/// Ready means a primary that takes writes, not a standby.
pub(crate) const PING: &str = "SELECT NOT pg_is_in_recovery()";
