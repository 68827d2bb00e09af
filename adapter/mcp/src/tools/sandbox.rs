//! `sandbox_status`, `hibernate_sandbox` and `delete_sandbox`:
//! QuerySandboxes, HibernateSandbox and StopSandbox.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use sandboxer_core::domain::{ChatId, Session, Workspace, rfc3339};
use sandboxer_core::usecase::{HibernateResult, StopResult};

use crate::error::ToolError;
use crate::params::ChatParams;
use crate::reply;
use crate::server::SandboxerMcp;

pub(super) async fn status(
    server: &SandboxerMcp,
    args: ChatParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let query = &server.services.query;
    if let Some(session) = query.active_of(&chat).await? {
        let view = session_json(&session);
        return Ok(reply::success(
            format!(
                "chat {chat}: sandbox {} is {} (image {}), created {}, last used {}, expires if idle past {}",
                session.id,
                session.status.as_str(),
                session.image,
                view["created_at"].as_str().unwrap_or_default(),
                view["last_used_at"].as_str().unwrap_or_default(),
                view["expires_at"].as_str().unwrap_or_default(),
            ),
            view,
        ));
    }
    if let Some((workspace, last)) = query.hibernated_of(&chat).await?
        && let Some(view) = hibernated_json(&workspace, last.as_ref())
    {
        return Ok(reply::success(
            format!(
                "chat {chat}: the sandbox is hibernated since {}: no processes run, the files \
                 under /workspace are kept until {}; the next exec or file call resumes it",
                view["hibernated_at"].as_str().unwrap_or_default(),
                view["retained_until"].as_str().unwrap_or_default(),
            ),
            view,
        ));
    }
    Ok(reply::success(
        format!("chat {chat} has no sandbox (none); the next exec or file call creates one"),
        json!({"chat_id": chat.as_str(), "status": "none"}),
    ))
}

pub(super) async fn hibernate(
    server: &SandboxerMcp,
    args: ChatParams,
) -> Result<CallToolResult, ToolError> {
    let chat = ChatId::parse(&args.chat_id)?;
    let (result, text) = match server.services.hibernate.execute(&chat).await? {
        HibernateResult::Hibernated(_) => (
            "hibernated",
            format!(
                "the sandbox of chat {chat} is hibernated: its processes ended, its files are \
                 kept; the next call resumes it"
            ),
        ),
        HibernateResult::AlreadyHibernated => (
            "already_hibernated",
            format!("the sandbox of chat {chat} was hibernated already"),
        ),
    };
    Ok(reply::success(
        text,
        json!({"chat_id": chat.as_str(), "result": result}),
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
        StopResult::WorkspaceDeleted(_) => (
            "stopped",
            format!("the hibernated sandbox of chat {chat} and its workspace are removed"),
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
        "workspace_id": s.workspace_id.to_string(),
        "container_id": s.container_id.as_ref().map(ToString::to_string),
        "image": s.image,
        "status": s.status.as_str(),
        "generation": s.generation,
        "created_at": rfc3339(s.created_at),
        "last_used_at": rfc3339(s.last_used_at),
        "expires_at": rfc3339(s.expires_at),
    })
}

/// A hibernated chat as the HTTP API shows it; `None` when the workspace
/// is not hibernated. `last` is shown only when it ran on this workspace.
fn hibernated_json(w: &Workspace, last: Option<&Session>) -> Option<Value> {
    let last = last.filter(|s| s.workspace_id == w.id);
    let (Some(hibernated_at), Some(retained_until)) = (w.hibernated_at, w.retained_until) else {
        return None;
    };
    w.is_hibernated().then(|| {
        json!({
            "chat_id": w.chat_id.as_str(),
            "status": "hibernated",
            "workspace_id": w.id.to_string(),
            "hibernated_at": rfc3339(hibernated_at),
            "retained_until": rfc3339(retained_until),
            "session_id": last.map(|s| s.id.to_string()),
            "image": last.map(|s| s.image.clone()),
        })
    })
}
