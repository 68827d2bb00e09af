//! Rows of `sessions`, `workspaces` and `pool_members` to `Session`,
//! `Workspace` and `PoolMember` values and back: times as unix milliseconds UTC, the TTL in milliseconds, names
//! as TEXT. A row that does not parse is reported by its id, never skipped.

use std::time::Duration;

use chrono::DateTime;
use sandboxer_core::domain::{
    ChatId, ContainerId, PoolMember, PoolStatus, Session, SessionId, SessionStatus, SpecHash,
    SpecOverrides, Timestamp, Workspace, WorkspaceId, WorkspaceStatus,
};
use sandboxer_core::port::StoreError;
use sqlx::Row;
use sqlx::Sqlite;
use sqlx::sqlite::SqliteRow;

/// The columns every query selects, in the order `session_from_row` reads.
macro_rules! session_columns {
    () => {
        "id, chat_id, container_id, image, spec_hash, generation, idle_ttl_ms, \
         created_at, last_used_at, expires_at, status, end_reason, ended_at, \
         image_override, env_json, workspace_id"
    };
}
pub(crate) use session_columns;

const COLUMNS: [&str; 16] = [
    "id",
    "chat_id",
    "container_id",
    "image",
    "spec_hash",
    "generation",
    "idle_ttl_ms",
    "created_at",
    "last_used_at",
    "expires_at",
    "status",
    "end_reason",
    "ended_at",
    "image_override",
    "env_json",
    "workspace_id",
];

/// The caller's env overrides as stored (a JSON object of strings).
pub(crate) fn env_json(overrides: &SpecOverrides) -> String {
    serde_json::to_string(&overrides.env).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    let id_raw: String = get(row, 0)
        .map_err(|e| StoreError::Other(format!("corrupt session row (unreadable {e})")))?;
    let corrupt =
        |what: String| StoreError::Other(format!("corrupt session row {id_raw:?}: {what}"));
    let time = |i: usize| -> Result<Timestamp, StoreError> {
        let ms: i64 = get(row, i).map_err(corrupt)?;
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| corrupt(format!("{} {ms} is out of range", COLUMNS[i])))
    };

    let id = SessionId::parse(&id_raw).map_err(|e| corrupt(e.to_string()))?;
    let chat_id = ChatId::parse(&get::<String>(row, 1).map_err(corrupt)?)
        .map_err(|e| corrupt(e.to_string()))?;
    let workspace_id = WorkspaceId::parse(&get::<String>(row, 15).map_err(corrupt)?)
        .map_err(|e| corrupt(e.to_string()))?;
    let generation = u64::try_from(get::<i64>(row, 5).map_err(corrupt)?)
        .map_err(|_| corrupt("negative generation".into()))?;
    let idle_ttl = u64::try_from(get::<i64>(row, 6).map_err(corrupt)?)
        .map(Duration::from_millis)
        .map_err(|_| corrupt("negative idle_ttl_ms".into()))?;
    let status: SessionStatus = get::<String>(row, 10)
        .map_err(corrupt)?
        .parse()
        .map_err(corrupt)?;
    let end_reason = get::<Option<String>>(row, 11)
        .map_err(corrupt)?
        .map(|r| r.parse())
        .transpose()
        .map_err(corrupt)?;
    let ended_at = match get::<Option<i64>>(row, 12).map_err(corrupt)? {
        Some(_) => Some(time(12)?),
        None => None,
    };

    let env_json: String = get(row, 14).map_err(corrupt)?;
    let overrides = SpecOverrides {
        image: get::<Option<String>>(row, 13).map_err(corrupt)?,
        env: serde_json::from_str(&env_json).map_err(|e| corrupt(format!("env_json: {e}")))?,
    };

    Ok(Session {
        id,
        chat_id,
        workspace_id,
        container_id: get::<Option<String>>(row, 2)
            .map_err(corrupt)?
            .map(ContainerId::new),
        image: get(row, 3).map_err(corrupt)?,
        spec_hash: SpecHash::from_stored(get::<String>(row, 4).map_err(corrupt)?),
        overrides,
        generation,
        idle_ttl,
        created_at: time(7)?,
        last_used_at: time(8)?,
        expires_at: time(9)?,
        status,
        end_reason,
        ended_at,
    })
}

/// The columns every workspace query selects; read by name.
macro_rules! workspace_columns {
    () => {
        "id, chat_id, created_at, created_by, status, hibernated_at, retained_until"
    };
}
pub(crate) use workspace_columns;

pub(crate) fn workspace_from_row(row: &SqliteRow) -> Result<Workspace, StoreError> {
    let id_raw: String = named(row, "id")
        .map_err(|e| StoreError::Other(format!("corrupt workspace row (unreadable {e})")))?;
    let corrupt =
        |what: String| StoreError::Other(format!("corrupt workspace row {id_raw:?}: {what}"));
    let time = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        named::<Option<i64>>(row, name)
            .map_err(corrupt)?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| corrupt(format!("{name} {ms} is out of range")))
            })
            .transpose()
    };
    let required = |name: &str| time(name)?.ok_or_else(|| corrupt(format!("{name} is NULL")));

    Ok(Workspace {
        id: WorkspaceId::parse(&id_raw).map_err(|e| corrupt(e.to_string()))?,
        chat_id: ChatId::parse(&named::<String>(row, "chat_id").map_err(corrupt)?)
            .map_err(|e| corrupt(e.to_string()))?,
        created_at: required("created_at")?,
        created_by: SessionId::parse(&named::<String>(row, "created_by").map_err(corrupt)?)
            .map_err(|e| corrupt(e.to_string()))?,
        status: named::<String>(row, "status")
            .map_err(corrupt)?
            .parse::<WorkspaceStatus>()
            .map_err(corrupt)?,
        hibernated_at: time("hibernated_at")?,
        retained_until: time("retained_until")?,
    })
}

/// The columns every pool query selects; read by name.
macro_rules! pool_columns {
    () => {
        "session_id, workspace_id, container_id, image, spec_hash, fingerprint, created_at, status"
    };
}
pub(crate) use pool_columns;

pub(crate) fn pool_member_from_row(row: &SqliteRow) -> Result<PoolMember, StoreError> {
    let id_raw: String = named(row, "session_id")
        .map_err(|e| StoreError::Other(format!("corrupt pool member row (unreadable {e})")))?;
    let corrupt =
        |what: String| StoreError::Other(format!("corrupt pool member row {id_raw:?}: {what}"));
    let created_ms: i64 = named(row, "created_at").map_err(corrupt)?;

    Ok(PoolMember {
        session_id: SessionId::parse(&id_raw).map_err(|e| corrupt(e.to_string()))?,
        workspace_id: WorkspaceId::parse(&named::<String>(row, "workspace_id").map_err(corrupt)?)
            .map_err(|e| corrupt(e.to_string()))?,
        container_id: named::<Option<String>>(row, "container_id")
            .map_err(corrupt)?
            .map(ContainerId::new),
        image: named(row, "image").map_err(corrupt)?,
        spec_hash: SpecHash::from_stored(named::<String>(row, "spec_hash").map_err(corrupt)?),
        fingerprint: named(row, "fingerprint").map_err(corrupt)?,
        created_at: DateTime::from_timestamp_millis(created_ms)
            .ok_or_else(|| corrupt(format!("created_at {created_ms} is out of range")))?,
        status: named::<String>(row, "status")
            .map_err(corrupt)?
            .parse::<PoolStatus>()
            .map_err(corrupt)?,
    })
}

/// Column `name`, or what is wrong with it.
fn named<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(|e| format!("{name}: {e}"))
}

/// Column `i`, or what is wrong with it.
fn get<'r, T>(row: &'r SqliteRow, i: usize) -> Result<T, String>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(i).map_err(|e| format!("{}: {e}", COLUMNS[i]))
}
