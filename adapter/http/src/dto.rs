//! Request and response bodies, and their translation to and from the
//! domain. Bodies are parsed strictly: unknown fields are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use chrono::DateTime;

use sandboxer_core::domain::{ExecOutcome, FileEntry, Session, Workspace, WorkspacePath, rfc3339};
use sandboxer_core::usecase::{CleanupReport, CreateOutcome, CreateResult};

use crate::schema;

/// Body of `PUT /v1/chats/{chat_id}/sandbox` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSandboxBody {
    /// Image to run instead of the configured default.
    #[schema(value_type = Option<schema::Image>)]
    pub image: Option<String>,
    /// Idle TTL of this chat's sandbox, in seconds. The maximum, the
    /// configured max lifetime, is set when the document is built.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "whole_number")]
    pub ttl_seconds: Option<u64>,
    /// Environment variables of the sandbox.
    #[schema(value_type = Option<schema::EnvVars>)]
    pub env: Option<BTreeMap<String, String>>,
}

/// An unsigned integer as JSON Schema reads `integer`: any number without a
/// fractional part, so `60.0` is 60 (serde alone refuses it, and the
/// document would then allow what the server refuses).
pub(crate) fn whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    // 2^64 as f64; `as` saturates, so the bound is checked before the cast.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    match number.as_f64() {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f) if f.fract() == 0.0 && (0.0..LIMIT).contains(&f) => Ok(Some(f as u64)),
        _ => Err(serde::de::Error::custom(format!(
            "invalid value: {number}, expected a whole number of at least 0"
        ))),
    }
}

/// One sandbox incarnation of a chat.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub session_id: String,
    pub chat_id: String,
    /// The chat's workspace (its files), kept across its sessions.
    pub workspace_id: String,
    pub container_id: Option<String>,
    pub image: String,
    /// `creating`, `running` or `ended`.
    pub status: String,
    pub generation: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self {
            session_id: s.id.to_string(),
            chat_id: s.chat_id.to_string(),
            workspace_id: s.workspace_id.to_string(),
            container_id: s.container_id.as_ref().map(ToString::to_string),
            image: s.image.clone(),
            status: s.status.to_string(),
            generation: s.generation,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
        }
    }
}

/// `status` of a hibernated chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HibernatedStatus {
    Hibernated,
}

/// A hibernated chat: no container, its workspace kept until
/// `retained_until`; the next use resumes it on the same files.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HibernatedView {
    pub chat_id: String,
    pub status: HibernatedStatus,
    pub workspace_id: String,
    /// When its last session ended. RFC 3339, UTC.
    pub hibernated_at: String,
    /// When its workspace is deleted unless the chat is used before.
    pub retained_until: String,
    /// The last session's id, when known.
    pub session_id: Option<String>,
    /// The last session's image, when known.
    pub image: Option<String>,
}

impl HibernatedView {
    /// `None` when the workspace is not hibernated (a session runs on it).
    /// `last` is shown only when it ran on this workspace.
    pub fn new(workspace: &Workspace, last: Option<&Session>) -> Option<Self> {
        let last = last.filter(|s| s.workspace_id == workspace.id);
        let (Some(hibernated_at), Some(retained_until)) =
            (workspace.hibernated_at, workspace.retained_until)
        else {
            return None;
        };
        if !workspace.is_hibernated() {
            return None;
        }
        Some(Self {
            chat_id: workspace.chat_id.to_string(),
            status: HibernatedStatus::Hibernated,
            workspace_id: workspace.id.to_string(),
            hibernated_at: rfc3339(hibernated_at),
            retained_until: rfc3339(retained_until),
            session_id: last.map(|s| s.id.to_string()),
            image: last.map(|s| s.image.clone()),
        })
    }
}

/// A chat's sandbox: active (a session, `status` `creating` or
/// `running`) or hibernated (`status` `hibernated`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SandboxView {
    Active(SessionView),
    Hibernated(HibernatedView),
}

/// Answer of `PUT /v1/chats/{chat_id}/sandbox`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PutSandboxResponse {
    #[serde(flatten)]
    pub session: SessionView,
    /// `created`, `resumed` (a new container on the hibernated chat's
    /// files), `reused` or `replaced`.
    pub result: String,
    /// `container_gone`, `spec_changed` or `max_lifetime`, when replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_reason: Option<String>,
    /// For a new chat (`created`): `hit` (a warm sandbox served it), `miss`
    /// (it was made cold) or `off` (no warm pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(hit|miss|off)$")]
    pub pool: Option<String>,
}

impl From<&CreateOutcome> for PutSandboxResponse {
    fn from(o: &CreateOutcome) -> Self {
        Self {
            session: SessionView::from(&o.session),
            result: o.result.as_str().to_owned(),
            replace_reason: match o.result {
                CreateResult::Replaced(r) => Some(r.as_str().to_owned()),
                _ => None,
            },
            pool: o.pool.map(|p| p.as_str().to_owned()),
        }
    }
}

/// Body of `POST /v1/chats/{chat_id}/exec`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// The program and its arguments; no shell unless you run one.
    #[schema(value_type = schema::Argv)]
    pub cmd: Vec<String>,
    /// Text fed to the command's standard input.
    pub stdin: Option<String>,
    #[schema(value_type = Option<schema::EnvVars>)]
    pub env: Option<BTreeMap<String, String>>,
    /// Absolute; defaults to `/workspace`.
    #[schema(value_type = Option<schema::Workdir>)]
    pub workdir: Option<String>,
    /// Defaults to 60000; at most 3600000 (`MAX_EXEC_TIMEOUT`, checked by a test).
    #[schema(minimum = 1, maximum = 3_600_000)]
    #[serde(default, deserialize_with = "whole_number")]
    pub timeout_ms: Option<u64>,
    /// Answer NDJSON: output events as they come (`OutputEvent`), then an
    /// `ExecStreamResult` line. The command is killed if the reader leaves.
    pub stream: Option<bool>,
}

/// Answer of `POST /v1/chats/{chat_id}/exec`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecResponse {
    pub exit_code: i64,
    /// UTF-8, invalid sequences replaced.
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    /// Output went over the per-stream cap and was cut.
    pub truncated: bool,
    pub duration_ms: u64,
    pub session_id: String,
}

impl ExecResponse {
    pub fn new(outcome: &ExecOutcome, session: &Session) -> Self {
        Self {
            exit_code: outcome.exit_code,
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            timed_out: outcome.timed_out,
            truncated: outcome.truncated,
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            session_id: session.id.to_string(),
        }
    }
}

/// Answer of `GET .../files?list=true` and `GET .../files/{path}?list=true`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileListing {
    /// The directory listed, relative to `/workspace`; empty for the workspace itself.
    pub path: String,
    /// One level, sorted by name.
    pub entries: Vec<FileListingEntry>,
}

/// One entry of a directory.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileListingEntry {
    /// The entry's own name, not its path.
    pub name: String,
    #[serde(rename = "type")]
    #[schema(value_type = schema::FileType)]
    pub kind: String,
    /// In bytes; what the file system says for anything but a file.
    pub size: u64,
    /// Last modification, RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub modified_at: String,
}

impl FileListing {
    pub fn new(dir: Option<&WorkspacePath>, entries: &[FileEntry]) -> Self {
        Self {
            path: dir.map(ToString::to_string).unwrap_or_default(),
            entries: entries
                .iter()
                .map(|e| FileListingEntry {
                    name: e.name.clone(),
                    kind: e.kind.as_str().to_owned(),
                    size: e.size,
                    modified_at: modified_at(e.modified_ms),
                })
                .collect(),
        }
    }
}

/// RFC 3339 has four-digit years, and a file's mtime can be set to any
/// time: one outside them is shown at the nearer end.
fn modified_at(ms: i64) -> String {
    const FIRST: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
    const LAST: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    DateTime::from_timestamp_millis(ms.clamp(FIRST, LAST))
        .map(rfc3339)
        .unwrap_or_default()
}

/// Answer of `GET /v1/sandboxes`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SandboxList {
    /// The active sandboxes, then the hibernated chats (most recently
    /// hibernated first).
    pub sandboxes: Vec<SandboxView>,
}

/// Answer of `POST /v1/cleanup`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CleanupCounts {
    /// Idle sandboxes found.
    pub expired: u64,
    /// Idle sandboxes hibernated: container removed, workspace kept.
    pub hibernated: u64,
    /// Idle sandboxes removed with their workspace (retention 0).
    pub removed: u64,
    /// Workspaces deleted: past their retention, past the cap, or left half deleted.
    pub workspaces_deleted: u64,
    pub failed: u64,
    pub orphans_removed: u64,
    /// Active sessions ended because their container was gone.
    pub containers_gone: u64,
    /// Expired sandboxes left alone because they were in use.
    pub skipped: u64,
}

impl From<CleanupReport> for CleanupCounts {
    fn from(r: CleanupReport) -> Self {
        Self {
            expired: r.expired,
            hibernated: r.hibernated,
            removed: r.removed,
            workspaces_deleted: r.workspaces_deleted,
            failed: r.failed,
            orphans_removed: r.orphans_removed,
            containers_gone: r.containers_gone,
            skipped: r.skipped,
        }
    }
}

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    /// Each Docker node, when the service has several (a node that is
    /// away fails only its own chats; the service stays ready while any
    /// node answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeView>>,
}

/// A Docker Engine the service places sandboxes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeView {
    pub name: String,
    /// It answered its latest health check (every 2 s).
    pub up: bool,
    /// No new chats are placed on it; its chats stay.
    pub draining: bool,
    /// Live sandboxes on it.
    pub sandboxes: u64,
    pub capacity_sandboxes: u64,
    /// Memory limits of its live sandboxes together.
    pub memory_bytes: u64,
    pub capacity_memory_bytes: u64,
}

/// Answer of `GET /v1/nodes`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeList {
    pub nodes: Vec<NodeView>,
}

#[cfg(test)]
mod tests {
    use super::modified_at;

    #[test]
    fn modification_times_stay_rfc_3339() {
        assert_eq!(modified_at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(modified_at(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(modified_at(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(modified_at(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(modified_at(i64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
