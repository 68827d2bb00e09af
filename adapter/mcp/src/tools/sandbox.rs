//! `sandbox_status` and `delete_sandbox`: QuerySandboxes and StopSandbox.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use sandboxer_core::domain::{ChatId, Session, rfc3339};
use sandboxer_core::usecase::StopResult;

use crate::error::ToolError;
use crate::params::ChatParams;
use crate::reply;
use crate::server::SandboxerMcp;

pub(super) async fn status(
    server: &SandboxerMcp,
    args: ChatParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let Some(session) = server.services.query.active_of(&chat).await? else {
        return Ok(reply::success(
            format!("chat {chat} has no sandbox (none); the next exec or file call creates one"),
            json!({"chat_id": chat.as_str(), "status": "none"}),
        ));
    };
    let view = session_json(&session);
    Ok(reply::success(
        format!(
            "chat {chat}: sandbox {} is {} (image {}), created {}, last used {}, removed if idle past {}",
            session.id,
            session.status.as_str(),
            session.image,
            view["created_at"].as_str().unwrap_or_default(),
            view["last_used_at"].as_str().unwrap_or_default(),
            view["expires_at"].as_str().unwrap_or_default(),
        ),
        view,
    ))
}

pub(super) async fn delete(
    server: &SandboxerMcp,
    args: ChatParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let (result, text) = match server.services.stop.execute(&chat).await? {
        StopResult::Stopped(_) => (
            "stopped",
            format!("the sandbox of chat {chat} and its workspace are removed"),
        ),
        StopResult::AlreadyGone => ("already_gone", format!("chat {chat} had no sandbox")),
    };
    Ok(reply::success(
        text,
        json!({"chat_id": chat.as_str(), "result": result}),
    ))
}

/// The session as the HTTP API shows it.
fn session_json(s: &Session) -> Value {
    json!({
        "session_id": s.id.to_string(),
        "chat_id": s.chat_id.as_str(),
        "container_id": s.container_id.as_ref().map(ToString::to_string),
        "image": s.image,
        "status": s.status.as_str(),
        "generation": s.generation,
        "created_at": rfc3339(s.created_at),
        "last_used_at": rfc3339(s.last_used_at),
        "expires_at": rfc3339(s.expires_at),
    })
}
