//! `GET .../processes/{process_id}/pty`: a process's terminal over a
//! WebSocket. Binary frames carry terminal bytes both ways; text frames
//! carry JSON control messages (`resize` from the client, `exit` or `error`
//! from the server before it closes). Closing the socket detaches: the
//! process runs on, and another socket can attach again.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sandboxer_core::domain::{ChatId, OutputCursor, ProcessId, PtySize, StdinWrite};
use sandboxer_core::port::RuntimeError;
use sandboxer_core::usecase::{ExecError, FollowEvent, FollowMode, OutputFollower};

use super::ApiStateRef;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ProcessPath, QueryPairs};
use crate::schema;
use crate::state::ApiState;
use crate::stream::{api_error_view, error_view};

/// Between two tries of a write the process is not reading.
const STALLED_WRITE_PAUSE: Duration = Duration::from_millis(100);

/// A control message of the terminal's WebSocket (a text frame).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PtyControl {
    /// From the client: the terminal's new size.
    Resize { cols: u16, rows: u16 },
    /// From the server: the process ended (then the socket closes).
    Exit { exit_code: Option<i64> },
}

/// Attach to a process's terminal over a WebSocket: binary frames are the
/// terminal's bytes both ways (output from `offset`, default the oldest
/// still buffered); text frames are JSON `PtyControl` messages. A process
/// without a terminal can be attached too (stdout and stderr both come as
/// output; a resize is refused with an `error` message).
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/processes/{process_id}/pty", tag = "processes",
    params(
        ("chat_id" = schema::ChatId, Path), ("process_id" = schema::ProcessId, Path),
        ("offset" = Option<schema::Offset>, Query, description = "where the terminal output starts (default: the oldest buffered)"),
    ),
    responses(
        (status = 101, description = "switching to the WebSocket", body = PtyControl),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, description = "process_not_found", body = ErrorBody),
        (status = 426, description = "upgrade_required: not a WebSocket upgrade request", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn pty(
    state: ApiStateRef,
    ProcessPath(chat, id): ProcessPath,
    query: QueryPairs,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let offset = query.offset("offset")?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            sandboxer_core::trace::attr::ErrorClass::UpgradeRequired,
            format!("this is a WebSocket: {}", rejection.body_text()),
        )
    })?;
    let (info, _) = state.services.process_io.status(&chat, &id).await?;
    let from = OutputCursor {
        stdout: offset
            .unwrap_or(info.stdout.start)
            .clamp(info.stdout.start, info.stdout.end),
        stderr: info.stderr.start,
    };
    let follower = state
        .services
        .follow_output
        .open(&chat, &id, from, FollowMode::Follow)
        .await?;
    let state = Arc::clone(&state.0);
    let stdin_at = info.stdin.offset;
    Ok(upgrade.on_upgrade(move |socket| async move {
        terminal(socket, follower, state, (chat, id), stdin_at).await;
    }))
}

async fn terminal(
    socket: WebSocket,
    mut follower: OutputFollower,
    state: Arc<ApiState>,
    (chat, id): (ChatId, ProcessId),
    stdin_at: u64,
) {
    let (mut sink, mut incoming) = socket.split();
    let (notes, mut to_client) = tokio::sync::mpsc::channel::<Message>(8);
    let output = async {
        loop {
            let message = tokio::select! {
                note = to_client.recv() => match note {
                    Some(note) => note,
                    None => continue,
                },
                event = follower.next() => match event {
                    Some(Ok(FollowEvent::Output { data, .. })) => Message::Binary(data.into()),
                    // A quiet spell: a ping finds a client that vanished.
                    Some(Ok(FollowEvent::Position { .. })) => Message::Ping(Vec::new().into()),
                    Some(Ok(FollowEvent::Exited(info))) => {
                        let exit = PtyControl::Exit { exit_code: info.state.exit_code() };
                        let _ = sink.send(text(&exit)).await;
                        break;
                    }
                    Some(Err(err)) => {
                        let _ = sink.send(text(&error_view(err))).await;
                        break;
                    }
                    None => break,
                },
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "the process ended".into(),
            })))
            .await;
    };
    let input = async {
        let mut written = stdin_at;
        while let Some(Ok(message)) = incoming.next().await {
            match message {
                Message::Binary(bytes) => {
                    // A refused write is told; the process's end closes the socket.
                    if let Err(err) = send_stdin(&state, &chat, &id, &bytes, &mut written).await {
                        let _ = notes.send(text(&error_view(err))).await;
                    }
                }
                Message::Text(raw) => {
                    let reply = control(&state, &chat, &id, raw.as_str()).await;
                    if let Some(reply) = reply {
                        let _ = notes.send(reply).await;
                    }
                }
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    };
    // Either side ending ends the attachment; the process runs on.
    tokio::select! {
        () = output => {}
        () = input => {}
    }
}

/// Writes all of `bytes`, waiting for a process that reads slowly.
async fn send_stdin(
    state: &ApiState,
    chat: &ChatId,
    id: &ProcessId,
    bytes: &[u8],
    written: &mut u64,
) -> Result<(), ExecError> {
    let mut sent = 0usize;
    while sent < bytes.len() {
        let write = StdinWrite {
            offset: None,
            data: bytes[sent..].to_vec(),
            close: false,
        };
        let (stdin, _) = state
            .services
            .process_io
            .write_stdin(chat, id, &write)
            .await?;
        let took = usize::try_from(stdin.offset.saturating_sub(*written)).unwrap_or(usize::MAX);
        *written = stdin.offset;
        if !stdin.open {
            return Err(ExecError::Runtime(RuntimeError::Conflict(
                "stdin is closed".into(),
            )));
        }
        if took == 0 {
            tokio::time::sleep(STALLED_WRITE_PAUSE).await;
        }
        sent = sent.saturating_add(took);
    }
    Ok(())
}

/// A control message from the client; the answer to send back, if any.
async fn control(state: &ApiState, chat: &ChatId, id: &ProcessId, raw: &str) -> Option<Message> {
    let refuse = |message: String| {
        let api = ApiError::new(
            sandboxer_core::trace::attr::ErrorClass::InvalidRequest,
            message,
        );
        Some(text(&api_error_view(api)))
    };
    match serde_json::from_str::<PtyControl>(raw) {
        Ok(PtyControl::Resize { cols, rows }) => {
            let size = match PtySize::new(cols, rows) {
                Ok(size) => size,
                Err(e) => return refuse(e.to_string()),
            };
            match state.services.process_io.resize(chat, id, size).await {
                Ok(_) => None,
                Err(err) => Some(text(&error_view(err))),
            }
        }
        Ok(PtyControl::Exit { .. }) => refuse("`exit` is the server's message".into()),
        Err(e) => refuse(format!(
            "a control message is JSON `{{\"type\":\"resize\",\"cols\":N,\"rows\":N}}`: {e}"
        )),
    }
}

fn text(value: &impl Serialize) -> Message {
    Message::Text(serde_json::to_string(value).unwrap_or_default().into())
}
