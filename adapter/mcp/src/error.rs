//! The MCP edge's errors: bad arguments refused before any use case runs,
//! and the use cases' own errors, each with its `error.type` class (the
//! same codes the HTTP API answers with) and a hint the model can act on.

use thiserror::Error;

use sandboxer_core::domain::{InvalidChatId, InvalidExecRequest, InvalidWorkspacePath};
use sandboxer_core::trace::ErrorType;
use sandboxer_core::trace::attr::ErrorClass;
use sandboxer_core::usecase::{ExecError, HibernateError, QueryError, StopSandboxError};

#[derive(Debug, Error)]
pub enum ToolError {
    /// The arguments do not match the tool's input schema.
    #[error("invalid arguments: {0}")]
    Arguments(String),
    #[error(transparent)]
    ChatId(#[from] InvalidChatId),
    #[error(transparent)]
    Path(#[from] InvalidWorkspacePath),
    #[error(transparent)]
    ExecRequest(#[from] InvalidExecRequest),
    /// Arguments that parse but do not go together (argv and command, bad base64).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Stop(#[from] StopSandboxError),
    #[error(transparent)]
    Hibernate(#[from] HibernateError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl ErrorType for ToolError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Arguments(_) | Self::ExecRequest(_) | Self::Input(_) => {
                ErrorClass::InvalidRequest
            }
            Self::ChatId(_) => ErrorClass::InvalidChatId,
            Self::Path(_) => ErrorClass::InvalidPath,
            Self::Exec(e) => e.error_type(),
            Self::Stop(e) => e.error_type(),
            Self::Hibernate(e) => e.error_type(),
            Self::Query(e) => e.error_type(),
        }
    }
}

/// A fault of the service rather than of the call: the span is marked
/// failed and the detail logged, as the HTTP API does for a 5xx.
pub fn is_fault(class: ErrorClass) -> bool {
    use ErrorClass as C;
    matches!(
        class,
        C::RuntimeUnavailable
            | C::StoreUnavailable
            | C::Busy
            | C::ContainerGone
            | C::StoreConflict
            | C::Timeout
            | C::RuntimeError
            | C::StoreError
            | C::Internal
    )
}

/// What the caller is told: the error's own message, except for internal
/// faults, whose detail stays in the service log.
pub fn public_message(error: &ToolError) -> String {
    match error.error_type() {
        ErrorClass::RuntimeUnavailable => {
            "the container runtime is unavailable; retry later".to_owned()
        }
        ErrorClass::StoreUnavailable => "the session store is unavailable; retry later".to_owned(),
        ErrorClass::RuntimeError | ErrorClass::StoreError | ErrorClass::Internal => {
            "internal error; the service log has the details".to_owned()
        }
        _ => error.to_string(),
    }
}

/// What to do about it, for the model reading the tool's answer.
pub fn hint(class: ErrorClass) -> &'static str {
    use ErrorClass as C;
    match class {
        C::InvalidChatId => {
            "chat_id is the conversation's id: 1 to 128 characters of A-Z a-z 0-9 _ . : @ -"
        }
        C::InvalidPath => {
            "paths are relative to /workspace (a leading /workspace/ is accepted); \
             `..`, `.` and empty segments are refused"
        }
        C::InvalidRequest | C::InvalidJson => "check the arguments against the tool's input schema",
        C::NoSandbox => {
            "this chat has no sandbox; exec, write_file, read_file or list_files create one"
        }
        C::FileNotFound => "no such file; list_files shows what the workspace holds",
        C::NotAFile => "that is a directory; list_files lists it",
        C::NotADirectory => "that is a file; read_file reads it",
        C::ImageNotFound => "the sandbox image is missing on the service; tell its operator",
        C::BodyTooLarge => "the content is over the service's size limit; write it in parts",
        C::Timeout => "the container runtime did not answer in time; retry",
        C::RuntimeUnavailable
        | C::StoreUnavailable
        | C::Busy
        | C::ContainerGone
        | C::StoreConflict => "a passing condition; retry in a few seconds",
        C::Conflict => {
            "the name is taken or the state does not allow it (a process id used for another \
             command; hibernation when the service keeps no files); pick another name or skip it"
        }
        C::ProcessNotFound => "no such process in this chat's sandbox; it may have ended long ago",
        C::NodeNotFound => "no such Docker node; the operator's GET /v1/nodes lists them",
        C::TooManyProcesses => "the sandbox runs its limit of processes; kill one first",
        C::CursorExpired => "that output is no longer buffered; read from the oldest offset",
        C::InvalidOffset => "the offset is past what the stream holds; read its status first",
        C::NoSpace => "the service's disk is full; tell the operator, do not retry at once",
        C::UpgradeRequired => "that route is a WebSocket",
        C::Unauthorized => "the service needs its bearer token",
        C::RuntimeError | C::StoreError | C::Internal | C::RouteNotFound | C::MethodNotAllowed => {
            "the service failed; retrying may help, the service log has the details"
        }
    }
}
