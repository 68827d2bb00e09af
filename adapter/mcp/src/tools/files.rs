//! `write_file`, `read_file` and `list_files`: PutFile, GetFile, ListFiles.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmcp::model::CallToolResult;
use serde_json::json;

use sandboxer_core::domain::{ChatId, FileEntry, WORKSPACE_ROOT, WorkspacePath, rfc3339};

use crate::error::ToolError;
use crate::params::{Encoding, ListParams, PathParams, WriteFileParams};
use crate::reply;
use crate::server::SandboxerMcp;

/// Models often write the absolute path they saw in a command's output;
/// `/workspace/x` is `x`, and anything else goes to the core's check.
fn workspace_path(raw: &str) -> Result<WorkspacePath, ToolError> {
    let relative = raw
        .strip_prefix(WORKSPACE_ROOT)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(raw);
    Ok(WorkspacePath::parse(relative)?)
}

pub(super) async fn write(
    server: &SandboxerMcp,
    args: WriteFileParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let path = workspace_path(&args.path)?;
    let bytes = match args.encoding {
        Encoding::Text => args.content.into_bytes(),
        Encoding::Base64 => BASE64
            .decode(args.content.trim())
            .map_err(|e| ToolError::Input(format!("content is not valid base64: {e}")))?,
    };
    let size = bytes.len();
    let session = server
        .services
        .put_file
        .execute(&chat, &path, bytes)
        .await?;
    Ok(reply::success(
        format!("wrote {size} bytes to {}", path.absolute()),
        json!({"path": path.as_str(), "size": size, "session_id": session.id.to_string()}),
    ))
}

pub(super) async fn read(
    server: &SandboxerMcp,
    args: PathParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let path = workspace_path(&args.path)?;
    let (mut bytes, _) = server.services.get_file.execute(&chat, &path).await?;
    let size = bytes.len();
    let limit = server.settings.read_limit;
    let truncated = size > limit;
    bytes.truncate(limit);
    let (encoding, content) = match String::from_utf8(bytes) {
        Ok(text) => ("text", text),
        // A cut can split the last character; what precedes it is still text.
        Err(e) if truncated && e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            ("text", String::from_utf8(bytes).unwrap_or_default())
        }
        Err(e) => ("base64", BASE64.encode(e.into_bytes())),
    };
    let mut note = format!("{} ({size} bytes", path.absolute());
    if encoding == "base64" {
        note.push_str(", not UTF-8: base64");
    }
    if truncated {
        note.push_str(&format!(", cut to the first {limit}"));
    }
    note.push_str("):\n");
    Ok(reply::success(
        format!("{note}{content}"),
        json!({
            "path": path.as_str(),
            "size": size,
            "encoding": encoding,
            "content": content,
            "truncated": truncated,
        }),
    ))
}

pub(super) async fn list(
    server: &SandboxerMcp,
    args: ListParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let dir = match args.path.as_deref().map(str::trim) {
        None | Some("" | "." | "/" | WORKSPACE_ROOT) => None,
        Some(raw) => Some(workspace_path(raw.trim_end_matches('/'))?),
    };
    let (entries, _) = server
        .services
        .list_files
        .execute(&chat, dir.as_ref())
        .await?;
    let shown = dir
        .as_ref()
        .map_or_else(|| WORKSPACE_ROOT.to_owned(), WorkspacePath::absolute);
    let mut text = format!("{shown}: {} entries", entries.len());
    for e in &entries {
        text.push_str(&format!(
            "\n{:<7} {:>10}  {}",
            e.kind.as_str(),
            e.size,
            e.name
        ));
    }
    Ok(reply::success(
        text,
        json!({
            "path": dir.as_ref().map(WorkspacePath::as_str).unwrap_or_default(),
            "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        }),
    ))
}

fn entry_json(e: &FileEntry) -> serde_json::Value {
    json!({
        "name": e.name,
        "type": e.kind.as_str(),
        "size": e.size,
        "modified_at": modified_at(e.modified_ms),
    })
}

/// RFC 3339, as the HTTP API shows it; a time outside what it can write
/// (a file's mtime can be anything) is left out.
fn modified_at(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .filter(|t| (0..=9999).contains(&chrono::Datelike::year(t)))
        .map(rfc3339)
}
