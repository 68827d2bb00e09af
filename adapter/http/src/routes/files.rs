//! `/v1/chats/{chat_id}/files/{*path}`: move bytes in and out of the
//! workspace, or (`?list=true`) list a directory; `/v1/chats/{chat_id}/files`
//! lists the workspace itself.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sandboxer_core::trace::attr::ErrorClass;

use super::ApiStateRef;
use crate::dto::FileListing;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Body, ChatPath, FilePath, ListQuery};
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

/// Read a file from the chat's workspace, or with `list=true` list a
/// directory (one level, sorted by name).
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/files/{*path}", tag = "files",
    params(
        ("chat_id" = schema::ChatId, Path), ("path" = schema::WorkspacePath, Path),
        ("list" = Option<bool>, Query, description = "true: the directory's entries (JSON) instead of the file's bytes"),
    ),
    responses(
        (status = 200, description = "the file's bytes, or with `list=true` the directory's entries", content(
            (schema::FileBytes = "application/octet-stream"),
            (FileListing = "application/json"),
        )),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn get_file(
    state: ApiStateRef,
    FilePath(chat, path): FilePath,
    ListQuery(list): ListQuery,
) -> Result<Response, ApiError> {
    if list {
        let (entries, _) = state
            .services
            .list_files
            .execute(&chat, Some(&path))
            .await?;
        return Ok(Json(FileListing::new(Some(&path), &entries)).into_response());
    }
    let (bytes, _) = state.services.get_file.execute(&chat, &path).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// List the chat's workspace itself (one level, sorted by name); a file is
/// read at `/files/{path}`.
#[utoipa::path(
    get, path = "/v1/chats/{chat_id}/files", tag = "files",
    params(
        ("chat_id" = schema::ChatId, Path),
        ("list" = schema::ListTrue, Query, description = "must be true: this route only lists"),
    ),
    responses(
        (status = 200, body = FileListing),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody),
    )
)]
pub async fn list_workspace(
    state: ApiStateRef,
    ChatPath(chat): ChatPath,
    ListQuery(list): ListQuery,
) -> Result<Json<FileListing>, ApiError> {
    if !list {
        return Err(ApiError::new(
            ErrorClass::InvalidRequest,
            "GET /v1/chats/{chat_id}/files lists the workspace and needs `?list=true`; \
             a file is read at /v1/chats/{chat_id}/files/{path}",
        ));
    }
    let (entries, _) = state.services.list_files.execute(&chat, None).await?;
    Ok(Json(FileListing::new(None, &entries)))
}
