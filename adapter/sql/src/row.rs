//! Rows of `sessions`, `workspaces` and `pool_members` to `Session`,
//! `Workspace` and `PoolMember` values and back: times as unix milliseconds
//! UTC, the TTL in milliseconds, names as text. Both stores lay their
//! tables out this way. A row that does not parse is reported by its id,
//! never skipped.

use std::time::Duration;

use chrono::DateTime;
use sandboxer_core::domain::{
    ChatId, ContainerId, PoolMember, PoolStatus, Session, SessionId, SessionStatus, SpecHash,
    SpecOverrides, Timestamp, Workspace, WorkspaceId, WorkspaceStatus,
};
use sandboxer_core::port::StoreError;

/// A row's columns by name, as the store's driver decodes them; the error
/// says what is wrong with the column.
pub trait Columns {
    fn text(&self, name: &str) -> Result<String, String>;
    fn text_or_null(&self, name: &str) -> Result<Option<String>, String>;
    fn int(&self, name: &str) -> Result<i64, String>;
    fn int_or_null(&self, name: &str) -> Result<Option<i64>, String>;
}

/// The columns every session query selects.
#[macro_export]
macro_rules! session_columns {
    () => {
        "id, chat_id, container_id, image, spec_hash, generation, idle_ttl_ms, \
         created_at, last_used_at, expires_at, status, end_reason, ended_at, \
         image_override, env_json, workspace_id"
    };
}

/// The columns every workspace query selects.
#[macro_export]
macro_rules! workspace_columns {
    () => {
        "id, chat_id, created_at, created_by, status, hibernated_at, retained_until"
    };
}

/// The columns every pool query selects.
#[macro_export]
macro_rules! pool_columns {
    () => {
        "session_id, workspace_id, container_id, image, spec_hash, fingerprint, created_at, status"
    };
}

/// The caller's env overrides as stored (a JSON object of strings).
pub fn env_json(overrides: &SpecOverrides) -> String {
    serde_json::to_string(&overrides.env).unwrap_or_else(|_| "{}".to_owned())
}

pub fn millis(at: Timestamp) -> i64 {
    at.timestamp_millis()
}

pub fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// Reads a row of one table, naming the row by its id in every error.
struct Reader<'a> {
    row: &'a dyn Columns,
    table: &'static str,
    id: String,
}

impl<'a> Reader<'a> {
    fn new(row: &'a dyn Columns, table: &'static str, id: &str) -> Result<Self, StoreError> {
        let id = row
            .text(id)
            .map_err(|e| StoreError::Other(format!("corrupt {table} row (unreadable {e})")))?;
        Ok(Self { row, table, id })
    }

    fn corrupt(&self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Other(format!("corrupt {} row {:?}: {what}", self.table, self.id))
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.row.text(name).map_err(|e| self.corrupt(e))
    }

    fn text_or_null(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.row.text_or_null(name).map_err(|e| self.corrupt(e))
    }

    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.row.int(name).map_err(|e| self.corrupt(e))
    }

    fn count(&self, name: &str) -> Result<u64, StoreError> {
        u64::try_from(self.int(name)?).map_err(|_| self.corrupt(format!("negative {name}")))
    }

    fn time_or_null(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        self.row
            .int_or_null(name)
            .map_err(|e| self.corrupt(e))?
            .map(|ms| {
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| self.corrupt(format!("{name} {ms} is out of range")))
            })
            .transpose()
    }

    fn time(&self, name: &str) -> Result<Timestamp, StoreError> {
        self.time_or_null(name)?
            .ok_or_else(|| self.corrupt(format!("{name} is NULL")))
    }

    fn parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        parse(&self.text(name)?).map_err(|e| self.corrupt(format!("{name}: {e}")))
    }
}

pub fn session_from_row(row: &dyn Columns) -> Result<Session, StoreError> {
    let r = Reader::new(row, "session", "id")?;
    let env_json = r.text("env_json")?;
    let overrides = SpecOverrides {
        image: r.text_or_null("image_override")?,
        env: serde_json::from_str(&env_json).map_err(|e| r.corrupt(format!("env_json: {e}")))?,
    };
    let status: SessionStatus = r.parsed("status", str::parse)?;
    let end_reason = r
        .text_or_null("end_reason")?
        .map(|reason| reason.parse())
        .transpose()
        .map_err(|e| r.corrupt(e))?;
    Ok(Session {
        id: r.parsed("id", SessionId::parse)?,
        chat_id: r.parsed("chat_id", ChatId::parse)?,
        workspace_id: r.parsed("workspace_id", WorkspaceId::parse)?,
        container_id: r.text_or_null("container_id")?.map(ContainerId::new),
        image: r.text("image")?,
        spec_hash: SpecHash::from_stored(r.text("spec_hash")?),
        overrides,
        generation: r.count("generation")?,
        idle_ttl: Duration::from_millis(r.count("idle_ttl_ms")?),
        created_at: r.time("created_at")?,
        last_used_at: r.time("last_used_at")?,
        expires_at: r.time("expires_at")?,
        status,
        end_reason,
        ended_at: r.time_or_null("ended_at")?,
    })
}

pub fn workspace_from_row(row: &dyn Columns) -> Result<Workspace, StoreError> {
    let r = Reader::new(row, "workspace", "id")?;
    Ok(Workspace {
        id: r.parsed("id", WorkspaceId::parse)?,
        chat_id: r.parsed("chat_id", ChatId::parse)?,
        created_at: r.time("created_at")?,
        created_by: r.parsed("created_by", SessionId::parse)?,
        status: r.parsed("status", str::parse::<WorkspaceStatus>)?,
        hibernated_at: r.time_or_null("hibernated_at")?,
        retained_until: r.time_or_null("retained_until")?,
    })
}

pub fn pool_member_from_row(row: &dyn Columns) -> Result<PoolMember, StoreError> {
    let r = Reader::new(row, "pool member", "session_id")?;
    Ok(PoolMember {
        session_id: r.parsed("session_id", SessionId::parse)?,
        workspace_id: r.parsed("workspace_id", WorkspaceId::parse)?,
        container_id: r.text_or_null("container_id")?.map(ContainerId::new),
        image: r.text("image")?,
        spec_hash: SpecHash::from_stored(r.text("spec_hash")?),
        fingerprint: r.text("fingerprint")?,
        created_at: r.time("created_at")?,
        status: r.parsed("status", str::parse::<PoolStatus>)?,
    })
}

/// Declares, in a store crate, the decoders of its driver's rows:
/// `session_from_row`, `workspace_from_row` and `pool_member_from_row`
/// taking `&$row`, each reading columns by name (`sqlx::Row::try_get`)
/// through the shared decoders above. `columns_by_name!(SqliteRow, Sqlite)`.
#[macro_export]
macro_rules! columns_by_name {
    ($row:ty, $db:ty) => {
        /// A row by column name.
        struct ByName<'a>(&'a $row);

        impl $crate::Columns for ByName<'_> {
            fn text(&self, name: &str) -> Result<String, String> {
                named(self.0, name)
            }
            fn text_or_null(&self, name: &str) -> Result<Option<String>, String> {
                named(self.0, name)
            }
            fn int(&self, name: &str) -> Result<i64, String> {
                named(self.0, name)
            }
            fn int_or_null(&self, name: &str) -> Result<Option<i64>, String> {
                named(self.0, name)
            }
        }

        /// Column `name`, or what is wrong with it.
        fn named<'r, T>(row: &'r $row, name: &str) -> Result<T, String>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            sqlx::Row::try_get(row, name).map_err(|e| format!("{name}: {e}"))
        }

        pub(crate) fn session_from_row(
            row: &$row,
        ) -> Result<sandboxer_core::domain::Session, sandboxer_core::port::StoreError> {
            $crate::session_from_row(&ByName(row))
        }

        pub(crate) fn workspace_from_row(
            row: &$row,
        ) -> Result<sandboxer_core::domain::Workspace, sandboxer_core::port::StoreError> {
            $crate::workspace_from_row(&ByName(row))
        }

        pub(crate) fn pool_member_from_row(
            row: &$row,
        ) -> Result<sandboxer_core::domain::PoolMember, sandboxer_core::port::StoreError> {
            $crate::pool_member_from_row(&ByName(row))
        }
    };
}
