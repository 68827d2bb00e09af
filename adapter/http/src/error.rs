//! The one place where errors become HTTP answers: status code, `error.type`
//! code, message and `Retry-After`. Internal detail is logged, never returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use sandboxer_core::domain::{InvalidChatId, InvalidExecRequest, InvalidWorkspacePath};
use sandboxer_core::trace::attr::error_type as code;
use sandboxer_core::trace::{ErrorType, error_chain};

/// An answer that went wrong.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// Put on every error response so the request span can tell what failed.
#[derive(Debug, Clone)]
pub struct ErrorCode {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, documented code (`invalid_chat_id`, `docker_unavailable`, ...).
    pub code: String,
    pub message: String,
}

/// Status and `Retry-After` seconds for each `error.type`.
pub fn status_of(error_type: &str) -> (StatusCode, Option<u32>) {
    match error_type {
        code::INVALID_CHAT_ID
        | code::INVALID_PATH
        | code::INVALID_REQUEST
        | code::INVALID_JSON
        | code::IMAGE_NOT_FOUND
        | code::NOT_A_FILE => (StatusCode::BAD_REQUEST, None),
        code::UNAUTHORIZED => (StatusCode::UNAUTHORIZED, None),
        code::NO_SANDBOX | code::FILE_NOT_FOUND | code::ROUTE_NOT_FOUND => {
            (StatusCode::NOT_FOUND, None)
        }
        code::METHOD_NOT_ALLOWED => (StatusCode::METHOD_NOT_ALLOWED, None),
        code::CONFLICT => (StatusCode::CONFLICT, None),
        code::BODY_TOO_LARGE => (StatusCode::PAYLOAD_TOO_LARGE, None),
        code::DOCKER_UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, Some(5)),
        code::STORE_UNAVAILABLE | code::BUSY | code::CONTAINER_GONE | code::STORE_CONFLICT => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        }
        code::TIMEOUT => (StatusCode::GATEWAY_TIMEOUT, None),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code).0,
            code,
            message: message.into(),
        }
    }

    /// From any error that knows its class. 5xx detail is logged, and the
    /// caller gets a message that does not leak internals.
    pub fn from_error(err: &dyn ErrorType) -> Self {
        let code = err.error_type();
        let (status, _) = status_of(code);
        let message = match code {
            code::DOCKER_UNAVAILABLE => {
                "the container runtime (Docker) is unavailable; retry later".to_owned()
            }
            code::STORE_UNAVAILABLE => "the session store is unavailable; retry later".to_owned(),
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => {
                "internal error; the service log has the details".to_owned()
            }
            _ => err.to_string(),
        };
        if status.is_server_error() {
            tracing::error!(error.type = code, error = %error_chain(err), "request failed");
        }
        Self {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = status_of(self.code).1 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorCode {
            code: self.code,
            message: self.message,
        });
        response
    }
}

macro_rules! from_use_case_error {
    ($($ty:ty),+ $(,)?) => {
        $(impl From<$ty> for ApiError {
            fn from(err: $ty) -> Self {
                Self::from_error(&err)
            }
        })+
    };
}

from_use_case_error!(
    sandboxer_core::usecase::CreateSandboxError,
    sandboxer_core::usecase::ExecError,
    sandboxer_core::usecase::StopSandboxError,
    sandboxer_core::usecase::CleanupError,
    sandboxer_core::usecase::QueryError,
);

impl From<InvalidChatId> for ApiError {
    fn from(err: InvalidChatId) -> Self {
        Self::new(code::INVALID_CHAT_ID, err.to_string())
    }
}

impl From<InvalidWorkspacePath> for ApiError {
    fn from(err: InvalidWorkspacePath) -> Self {
        Self::new(code::INVALID_PATH, err.to_string())
    }
}

impl From<InvalidExecRequest> for ApiError {
    fn from(err: InvalidExecRequest) -> Self {
        Self::new(code::INVALID_REQUEST, err.to_string())
    }
}
