//! `/v1/chats/{chat_id}/files/{*path}`: move bytes in and out of the workspace.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiStateRef;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, FilePath};
use crate::schema;

/// Answer of a file upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileWritten {
    /// Relative to `/workspace`.
    pub path: String,
    pub size: u64,
    pub session_id: String,
}

/// Write a file in the chat's workspace (parent directories are created).
///
/// The body is optional in the document because the server takes a missing
/// body as an empty file, and an empty file is a legitimate file to write.
#[utoipa::path(
    put, path = "/v1/chats/{chat_id}/files/{*path}", tag = "files",
    params(("chat_id" = schema::ChatId, Path), ("path" = schema::WorkspacePath, Path)),
    request_body(
        content = Option<schema::FileBytes>, content_type = "application/octet-stream",
        description = "the file's bytes; none writes an empty file",
    ),
    responses(
        (status = 200, body = FileWritten),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn put_file(
    state: ApiStateRef,
    FilePath(chat, path): FilePath,
    Body(bytes): Body,
) -> Result<Json<FileWritten>, ApiError> {
    let size = bytes.len() as u64;
    let session = state
        .services
        .put_file
        .execute(&chat, &path, bytes.to_vec())
        .await?;
    Ok(Json(FileWritten {
        path: path.to_string(),
        size,
        session_id: session.id.to_string(),
    }))
}

/// Read a file from the chat's workspace.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/files/{*path}", tag = "files",
    params(("chat_id" = schema::ChatId, Path), ("path" = schema::WorkspacePath, Path)),
    responses(
        (status = 200, content_type = "application/octet-stream", body = schema::FileBytes),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn get_file(
    state: ApiStateRef,
    FilePath(chat, path): FilePath,
) -> Result<Response, ApiError> {
    let (bytes, _) = state.services.get_file.execute(&chat, &path).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
