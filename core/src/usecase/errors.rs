//! One error enum per use case, each with its `error.type` class.

use thiserror::Error;

use crate::domain::{ChatId, InvalidPolicy, InvalidSpec};
use crate::port::{RuntimeError, StoreError};
use crate::trace::{ErrorType, attr::ErrorClass};

#[derive(Debug, Error)]
pub enum CreateSandboxError {
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(#[from] InvalidSpec),
    #[error("invalid ttl: {0}")]
    InvalidTtl(#[from] InvalidPolicy),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the sandbox of chat {0} is being changed by another process; try again")]
    Busy(ChatId),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ErrorType for CreateSandboxError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::InvalidSpec(_) | Self::InvalidTtl(_) => ErrorClass::InvalidRequest,
            Self::Runtime(e) => e.error_type(),
            Self::Store(e) => e.error_type(),
            Self::Busy(_) => ErrorClass::Busy,
            Self::Internal(_) => ErrorClass::Internal,
        }
    }
}

/// Errors of the use cases that run something in a chat's sandbox.
#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Sandbox(#[from] CreateSandboxError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl ErrorType for ExecError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Sandbox(e) => e.error_type(),
            Self::Runtime(e) => e.error_type(),
        }
    }
}

/// File transfers fail the same ways an exec does.
pub type FileError = ExecError;

#[derive(Debug, Error)]
pub enum StopSandboxError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorType for StopSandboxError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Runtime(e) => e.error_type(),
            Self::Store(e) => e.error_type(),
        }
    }
}

#[derive(Debug, Error)]
pub enum CleanupError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorType for CleanupError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Runtime(e) => e.error_type(),
            Self::Store(e) => e.error_type(),
        }
    }
}

#[derive(Debug, Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorType for QueryError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::Store(e) => e.error_type(),
        }
    }
}

#[derive(Debug, Error)]
pub enum HibernateError {
    #[error("chat {0} has no sandbox")]
    NoSandbox(ChatId),
    #[error("hibernation is off (retention 0): an idle sandbox is deleted instead")]
    Disabled,
    #[error(
        "the sandbox of chat {0} is in use (a command, a transfer or an attached stream); try again when it ends"
    )]
    Busy(ChatId),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErrorType for HibernateError {
    fn error_type(&self) -> ErrorClass {
        match self {
            Self::NoSandbox(_) => ErrorClass::NoSandbox,
            Self::Disabled => ErrorClass::Conflict,
            Self::Busy(_) => ErrorClass::Busy,
            Self::Runtime(e) => e.error_type(),
            Self::Store(e) => e.error_type(),
        }
    }
}
