//! `/v1/chats/{chat_id}/sandbox` and `/exec`: get-or-create, read,
//! hibernate, stop, run.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use sandboxer_core::domain::{ExecRequest, SpecOverrides};
use sandboxer_core::trace::attr::ErrorClass;
use sandboxer_core::usecase::{CreateResult, CreateSandboxInput, SpecChoice};

use super::ApiStateRef;
use crate::dto::{
    ExecBody, ExecResponse, HibernatedView, PutSandboxBody, PutSandboxResponse, SandboxView,
    SessionView,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ChatPath, JsonBody, OptionalJson};
use crate::schema;

/// Get-or-create the chat's sandbox.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/sandbox", tag = "sandboxes",
    params(("chat_id" = schema::ChatId, Path)),
    request_body(content = Option<PutSandboxBody>, description = "optional: no body, or `null`, keeps the defaults"),
    responses(
        (status = 201, description = "created, resumed or replaced", body = PutSandboxResponse),
        (status = 200, description = "reused", body = PutSandboxResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn put_sandbox(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
    OptionalJson(body): OptionalJson<PutSandboxBody>,
) -> Result<Response, ApiError> {
    let body = body.unwrap_or_default();
    let input = CreateSandboxInput {
        chat_id: chat,
        spec: SpecChoice::Declared(SpecOverrides {
            image: body.image,
            env: body.env.unwrap_or_default(),
        }),
        ttl: body.ttl_seconds.map(Duration::from_secs),
    };
    let outcome = state.services.create.execute(input).await?;
    let status = match outcome.result {
        CreateResult::Reused => StatusCode::OK,
        CreateResult::Created | CreateResult::Resumed | CreateResult::Replaced(_) => {
            StatusCode::CREATED
        }
    };
    Ok((status, Json(PutSandboxResponse::from(&outcome))).into_response())
}

/// The chat's sandbox: the active one, or the hibernated chat (which
/// this does not resume).
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/sandbox", tag = "sandboxes",
    params(("chat_id" = schema::ChatId, Path)),
    responses(
        (status = 200, description = "`status` `creating` or `running` (a session), or `hibernated`", body = SandboxView),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub async fn get_sandbox(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
) -> Result<Json<SandboxView>, ApiError> {
    let query = &state.services.query;
    if let Some(session) = query.active_of(&chat).await? {
        return Ok(Json(SandboxView::Active(SessionView::from(&session))));
    }
    let hibernated = query.hibernated_of(&chat).await?;
    match hibernated.and_then(|(w, last)| HibernatedView::new(&w, last.as_ref())) {
        Some(view) => Ok(Json(SandboxView::Hibernated(view))),
        None => Err(ApiError::new(
            ErrorClass::NoSandbox,
            format!("chat {chat} has no sandbox"),
        )),
    }
}

/// Hibernate the chat's sandbox now: its container goes, its workspace is
/// kept until `retained_until`, and the next use resumes it. 204 also when
/// it was hibernated already.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/sandbox/hibernate", tag = "sandboxes",
    params(("chat_id" = schema::ChatId, Path)),
    responses(
        (status = 204, description = "hibernated"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "no_sandbox: the chat has neither a sandbox nor kept files", body = ErrorBody),
        (status = 409, description = "conflict: hibernation is off (retention 0)", body = ErrorBody),
        (status = 503, description = "busy (a command, a transfer or an attached stream holds the sandbox), or the runtime or store is unavailable", body = ErrorBody),
        (status = 504, body = ErrorBody),
    )
)]
pub async fn hibernate_sandbox(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
) -> Result<StatusCode, ApiError> {
    state.services.hibernate.execute(&chat).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop and remove the chat's sandbox with its workspace (a hibernated
/// chat's too); 204 also when there was none.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/sandbox", tag = "sandboxes",
    params(("chat_id" = schema::ChatId, Path)),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn delete_sandbox(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
) -> Result<StatusCode, ApiError> {
    state.services.stop.execute(&chat).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a command in the chat's sandbox (created if needed).
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/exec", tag = "sandboxes",
    params(("chat_id" = schema::ChatId, Path)),
    request_body = ExecBody,
    responses(
        (status = 200, description = "the result; with `\"stream\": true` NDJSON `OutputEvent` lines, then an `ExecStreamResult` line",
            content((ExecResponse = "application/json"), (crate::process_dto::ExecStreamResult = "application/x-ndjson"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 429, description = "too_many_processes (a streamed exec is a process)", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn exec(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
    JsonBody(body): JsonBody<ExecBody>,
) -> Result<Response, ApiError> {
    let mut request = ExecRequest::new(body.cmd)?
        .with_output_limit(state.config.exec_output_limit)
        .with_env(body.env.unwrap_or_default())?;
    if let Some(workdir) = body.workdir {
        request = request.with_workdir(workdir)?;
    }
    if let Some(ms) = body.timeout_ms {
        request = request.with_timeout(Duration::from_millis(ms))?;
    }
    if let Some(stdin) = body.stdin {
        request = request.with_stdin(stdin.into_bytes());
    }
    if body.stream == Some(true) {
        let follower = state.services.follow_output.exec(&chat, &request).await?;
        return Ok(crate::stream::exec_lines(follower));
    }
    let ran = state.services.exec.execute(&chat, &request).await?;
    Ok(Json(ExecResponse::new(&ran.outcome, &ran.session)).into_response())
}
