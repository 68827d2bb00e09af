//! The one place where errors become HTTP answers: status code, `error.type`
//! code, message and `Retry-After`. Internal detail is logged, never returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use sandboxer_core::domain::{InvalidChatId, InvalidExecRequest, InvalidWorkspacePath};
use sandboxer_core::port::RuntimeError;
use sandboxer_core::trace::attr::ErrorClass;
use sandboxer_core::trace::{ErrorType, error_chain};
use sandboxer_core::usecase::ExecError;

use crate::process_dto::Offsets;

/// An answer that went wrong.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorClass,
    pub message: String,
    /// With `cursor_expired`: the oldest offsets still buffered.
    pub oldest: Option<Offsets>,
}

/// Put on every error response so the request span can tell what failed.
#[derive(Debug, Clone)]
pub struct ErrorCode {
    pub code: ErrorClass,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, documented code (`invalid_chat_id`, `runtime_unavailable`, ...).
    pub code: String,
    pub message: String,
    /// With `cursor_expired`: the oldest offsets the process still buffers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<Offsets>,
}

/// Status and `Retry-After` seconds for each `error.type`: every class
/// named, so a new one cannot fall through to a default.
pub fn status_of(class: ErrorClass) -> (StatusCode, Option<u32>) {
    use ErrorClass as C;
    match class {
        C::InvalidChatId
        | C::InvalidPath
        | C::InvalidRequest
        | C::InvalidJson
        | C::InvalidOffset
        | C::ImageNotFound
        | C::NotAFile
        | C::NotADirectory => (StatusCode::BAD_REQUEST, None),
        C::Unauthorized => (StatusCode::UNAUTHORIZED, None),
        C::NoSandbox | C::FileNotFound | C::RouteNotFound => (StatusCode::NOT_FOUND, None),
        C::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, None),
        C::Conflict => (StatusCode::CONFLICT, None),
        C::ProcessNotFound | C::NodeNotFound => (StatusCode::NOT_FOUND, None),
        C::CursorExpired => (StatusCode::GONE, None),
        C::TooManyProcesses => (StatusCode::TOO_MANY_REQUESTS, Some(1)),
        C::UpgradeRequired => (StatusCode::UPGRADE_REQUIRED, None),
        C::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, None),
        C::RuntimeUnavailable => (StatusCode::SERVICE_UNAVAILABLE, Some(5)),
        C::StoreUnavailable | C::Busy | C::ContainerGone | C::StoreConflict => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(1))
        }
        C::Timeout => (StatusCode::GATEWAY_TIMEOUT, None),
        C::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, None),
        C::RuntimeError | C::StoreError | C::Internal => (StatusCode::INTERNAL_SERVER_ERROR, None),
    }
}

impl ApiError {
    pub fn new(code: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code).0,
            code,
            message: message.into(),
            oldest: None,
        }
    }

    /// From any error that knows its class. 5xx detail is logged, and the
    /// caller gets a message that does not leak internals.
    pub fn from_error(err: &dyn ErrorType) -> Self {
        let code = err.error_type();
        let (status, _) = status_of(code);
        let message = match code {
            ErrorClass::RuntimeUnavailable => {
                "the container runtime is unavailable; retry later".to_owned()
            }
            ErrorClass::StoreUnavailable => {
                "the session store is unavailable; retry later".to_owned()
            }
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => {
                "internal error; the service log has the details".to_owned()
            }
            _ => err.to_string(),
        };
        if status.is_server_error() {
            tracing::error!(error.type = code.as_str(), error = %error_chain(err), "request failed");
        }
        Self {
            status,
            code,
            message,
            oldest: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
                oldest: self.oldest,
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
    sandboxer_core::usecase::StopSandboxError,
    sandboxer_core::usecase::HibernateError,
    sandboxer_core::usecase::CleanupError,
    sandboxer_core::usecase::QueryError,
);

impl From<ExecError> for ApiError {
    fn from(err: ExecError) -> Self {
        let mut api = Self::from_error(&err);
        if let ExecError::Runtime(RuntimeError::CursorExpired { oldest }) = err {
            api.oldest = Some(oldest.into());
        }
        api
    }
}

impl From<InvalidChatId> for ApiError {
    fn from(err: InvalidChatId) -> Self {
        Self::new(ErrorClass::InvalidChatId, err.to_string())
    }
}

impl From<InvalidWorkspacePath> for ApiError {
    fn from(err: InvalidWorkspacePath) -> Self {
        Self::new(ErrorClass::InvalidPath, err.to_string())
    }
}

impl From<InvalidExecRequest> for ApiError {
    fn from(err: InvalidExecRequest) -> Self {
        Self::new(ErrorClass::InvalidRequest, err.to_string())
    }
}
