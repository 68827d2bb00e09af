//! `/v1/chats/{chat_id}/processes...`: live processes (DESIGN section 10):
//! start, list, status, output (a snapshot, or a follow stream as NDJSON or
//! SSE), stdin, signals and kill. The terminal's WebSocket is in `pty`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use sandboxer_core::domain::{
    ExecRequest, OutputCursor, ProcessId, ProcessRequest, PtySize, Signal, StdinWrite,
};
use sandboxer_core::trace::attr::ErrorClass;
use sandboxer_core::usecase::FollowMode;

use super::ApiStateRef;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, ChatPath, JsonBody, ProcessPath, QueryPairs};
use crate::process_dto::{
    OutputEvent, ProcessList, ProcessView, SignalBody, StartProcessBody, StartedView, StdinWritten,
};
use crate::schema;
use crate::stream::{self, Encoding};

/// Start a live process in the chat's sandbox (created if needed).
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/processes", tag = "processes",
    params(("chat_id" = schema::ChatId, Path)),
    request_body = StartProcessBody,
    responses(
        (status = 201, description = "started", body = StartedView),
        (status = 200, description = "the same process was there (a repeated start)", body = StartedView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "the process id is taken by another body", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 429, description = "too_many_processes: the sandbox runs its limit", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn start_process(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
    JsonBody(body): JsonBody<StartProcessBody>,
) -> Result<Response, ApiError> {
    let request = process_request(body)?;
    let (started, session) = state
        .services
        .start_process
        .execute(&chat, &request)
        .await?;
    let status = if started.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = StartedView {
        process: ProcessView::new(&started.info, &session),
        created: started.created,
    };
    Ok((status, Json(view)).into_response())
}

fn process_request(body: StartProcessBody) -> Result<ProcessRequest, ApiError> {
    let invalid =
        |e: &dyn std::error::Error| ApiError::new(ErrorClass::InvalidRequest, e.to_string());
    let id = match body.process_id {
        Some(raw) => ProcessId::parse(&raw).map_err(|e| invalid(&e))?,
        None => ProcessId::generate(),
    };
    let mut exec = ExecRequest::new(body.cmd)?.with_env(body.env.unwrap_or_default())?;
    if let Some(workdir) = body.workdir {
        exec = exec.with_workdir(workdir)?;
    }
    if let Some(stdin) = body.stdin {
        exec = exec.with_stdin(stdin.into_bytes());
    }
    let mut request =
        ProcessRequest::new(id, exec).keep_stdin_open(body.keep_stdin_open.unwrap_or(false));
    if let Some(ms) = body.timeout_ms {
        request = request
            .with_timeout(Duration::from_millis(ms))
            .map_err(|e| invalid(&e))?;
    }
    if let Some(pty) = body.pty {
        let side = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
        let size = PtySize::new(side(pty.cols), side(pty.rows)).map_err(|e| invalid(&e))?;
        request = request.with_pty(size);
    }
    Ok(request)
}

/// The chat's processes, running and recently ended.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/processes", tag = "processes",
    params(("chat_id" = schema::ChatId, Path)),
    responses(
        (status = 200, body = ProcessList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn list_processes(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
) -> Result<Json<ProcessList>, ApiError> {
    let (all, session) = state.services.process_io.list(&chat).await?;
    Ok(Json(ProcessList {
        processes: all.iter().map(|p| ProcessView::new(p, &session)).collect(),
    }))
}

/// One process: status, exit code, the offsets of its streams and stdin.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/processes/{process_id}", tag = "processes",
    params(("chat_id" = schema::ChatId, Path), ("process_id" = schema::ProcessId, Path)),
    responses(
        (status = 200, body = ProcessView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "process_not_found", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn get_process(
    state: ApiStateRef,
    ProcessPath(chat, id): ProcessPath,
) -> Result<Json<ProcessView>, ApiError> {
    let (info, session) = state.services.process_io.status(&chat, &id).await?;
    Ok(Json(ProcessView::new(&info, &session)))
}

/// The process's output from the given offsets (default 0): what is
/// buffered, or with `follow=true` a stream until the process ends. NDJSON
/// lines (`OutputEvent`), or Server-Sent Events with
/// `Accept: text/event-stream` (events `output`, `position`, `exit`,
/// `error`; `Last-Event-ID` resumes). An offset older than the buffer is
/// 410 `cursor_expired` with the oldest offsets.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/processes/{process_id}/output", tag = "processes",
    params(
        ("chat_id" = schema::ChatId, Path), ("process_id" = schema::ProcessId, Path),
        ("stdout_offset" = Option<schema::Offset>, Query, description = "where stdout starts (default 0)"),
        ("stderr_offset" = Option<schema::Offset>, Query, description = "where stderr starts (default 0)"),
        ("follow" = Option<bool>, Query, description = "stream until the process ends"),
        ("encoding" = Option<schema::OutputEncoding>, Query, description = "`auto` (default: text when UTF-8, else base64) or `base64`"),
    ),
    responses(
        (status = 200, description = "NDJSON output events, the last an `exit` or `position` line",
            content(
                (OutputEvent = "application/x-ndjson"),
                (String = "text/event-stream"),
            )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "process_not_found", body = ErrorBody),
        (status = 410, description = "cursor_expired, with the oldest offsets", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn process_output(
    state: ApiStateRef,
    ProcessPath(chat, id): ProcessPath,
    query: QueryPairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut from = OutputCursor {
        stdout: query.offset("stdout_offset")?.unwrap_or(0),
        stderr: query.offset("stderr_offset")?.unwrap_or(0),
    };
    if let Some(resume) = last_event_id(&headers) {
        from = resume;
    }
    let mode = if query.bool("follow")?.unwrap_or(false) {
        FollowMode::Follow
    } else {
        FollowMode::Snapshot
    };
    let encoding = match query.one("encoding")? {
        None | Some("auto") => Encoding::Auto,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            return Err(ApiError::new(
                ErrorClass::InvalidRequest,
                format!("the query parameter `encoding` is `auto` or `base64`, got {other:?}"),
            ));
        }
    };
    let follower = state
        .services
        .follow_output
        .open(&chat, &id, from, mode)
        .await?;
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    Ok(if wants_sse {
        stream::sse(follower, from, encoding)
    } else {
        stream::ndjson(follower, encoding)
    })
}

/// `Last-Event-ID: <stdout>.<stderr>`, as the SSE events' ids are.
fn last_event_id(headers: &HeaderMap) -> Option<OutputCursor> {
    let raw = headers.get("last-event-id")?.to_str().ok()?;
    let (out, err) = raw.split_once('.')?;
    Some(OutputCursor {
        stdout: out.parse().ok()?,
        stderr: err.parse().ok()?,
    })
}

/// Bytes for the process's stdin. `?offset=N` says where they start in the
/// stdin stream, so a retried write is not doubled; `?close=true` closes
/// stdin after them (on a terminal: end-of-file).
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/processes/{process_id}/stdin", tag = "processes",
    params(
        ("chat_id" = schema::ChatId, Path), ("process_id" = schema::ProcessId, Path),
        ("offset" = Option<schema::Offset>, Query, description = "where the body starts in stdin; bytes already written are skipped"),
        ("close" = Option<bool>, Query, description = "close stdin after the body"),
    ),
    request_body(content = Option<schema::FileBytes>, content_type = "application/octet-stream"),
    responses(
        (status = 200, body = StdinWritten), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "process_not_found", body = ErrorBody),
        (status = 409, description = "stdin is closed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn write_stdin(
    state: ApiStateRef,
    ProcessPath(chat, id): ProcessPath,
    query: QueryPairs,
    Body(bytes): Body,
) -> Result<Json<StdinWritten>, ApiError> {
    let write = StdinWrite {
        offset: query.offset("offset")?,
        close: query.bool("close")?.unwrap_or(false),
        data: bytes.to_vec(),
    };
    let (stdin, _) = state
        .services
        .process_io
        .write_stdin(&chat, &id, &write)
        .await?;
    Ok(Json(StdinWritten {
        offset: stdin.offset,
        open: stdin.open,
    }))
}

/// Send a signal to the process's group.
#[utoipa::path(
    post, path = "/v1/chats/{chat_id}/processes/{process_id}/signal", tag = "processes",
    params(("chat_id" = schema::ChatId, Path), ("process_id" = schema::ProcessId, Path)),
    request_body = SignalBody,
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "process_not_found", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn signal_process(
    state: ApiStateRef,
    ProcessPath(chat, id): ProcessPath,
    JsonBody(body): JsonBody<SignalBody>,
) -> Result<StatusCode, ApiError> {
    let signal = Signal::parse(&body.signal)
        .map_err(|e| ApiError::new(ErrorClass::InvalidRequest, e.to_string()))?;
    state
        .services
        .signal_process
        .execute(&chat, &id, signal)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Kill the process's whole tree; answers once it is gone. The ended
/// process stays listed (with its output) for a while.
#[utoipa::path(
    delete, path = "/v1/chats/{chat_id}/processes/{process_id}", tag = "processes",
    params(("chat_id" = schema::ChatId, Path), ("process_id" = schema::ProcessId, Path)),
    responses(
        (status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "process_not_found", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn kill_process(
    state: ApiStateRef,
    ProcessPath(chat, id): ProcessPath,
) -> Result<StatusCode, ApiError> {
    state.services.kill_process.execute(&chat, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
