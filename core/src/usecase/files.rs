//! `PutFile` / `GetFile`: move a file into or out of the chat's workspace
//! (the sandbox is created if needed, and leased while the transfer runs).

use std::sync::Arc;

use crate::domain::{ChatId, Session, WorkspacePath};
use crate::port::tracer::{self, Span, SpanKind};
use crate::port::{SandboxRuntime, Tracer};
use crate::trace::{self, attr::key, attr::op, attr::result, attr::span, mark_failed};

use super::create_sandbox::CreateSandbox;
use super::errors::FileError;
use super::in_sandbox::SandboxAccess;

#[derive(Clone)]
pub struct PutFile(SandboxAccess);

#[derive(Clone)]
pub struct GetFile(SandboxAccess);

fn file_span(
    access: &SandboxAccess,
    name: &'static str,
    operation: &'static str,
    chat: &ChatId,
    path: &WorkspacePath,
) -> Box<dyn Span> {
    let mut span = tracer::start(access.tracer.as_ref(), name, SpanKind::Internal);
    span.set_attribute(key::CHAT_ID, chat.to_string().into());
    span.set_attribute(key::OPERATION, operation.into());
    span.set_attribute(key::FILE_PATH, path.to_string().into());
    span
}

fn finish<T>(
    mut span: Box<dyn Span>,
    ran: Result<T, FileError>,
    size: impl FnOnce(&T) -> usize,
) -> Result<T, FileError> {
    match &ran {
        Ok(value) => {
            span.set_attribute(key::FILE_SIZE, size(value).into());
            span.set_attribute(key::RESULT, result::OK.into());
        }
        Err(err) => mark_failed(span.as_mut(), err),
    }
    span.end();
    ran
}

impl PutFile {
    pub fn new(
        sandboxes: CreateSandbox,
        runtime: Arc<dyn SandboxRuntime>,
        tracer: Arc<dyn Tracer>,
    ) -> Self {
        Self(SandboxAccess::new(sandboxes, runtime, tracer))
    }

    /// Writes `contents` to `path` in the chat's workspace.
    ///
    /// # Errors
    /// `FileError`: no sandbox could be had, or the runtime refused the write.
    pub async fn execute(
        &self,
        chat: &ChatId,
        path: &WorkspacePath,
        contents: Vec<u8>,
    ) -> Result<Session, FileError> {
        let mut span = file_span(&self.0, span::PUT_FILE, op::PUT_FILE, chat, path);
        let size = contents.len();
        let ran = trace::in_context(
            trace::context_of(span.as_ref()),
            self.0.sandboxes.in_sandbox(chat, span.as_mut(), |sandbox| {
                let runtime = Arc::clone(&self.0.runtime);
                let contents = contents.clone();
                async move { runtime.put_file(&sandbox, path, contents).await }
            }),
        )
        .await;
        finish(span, ran.map(|((), session)| session), |_| size)
    }
}

impl GetFile {
    pub fn new(
        sandboxes: CreateSandbox,
        runtime: Arc<dyn SandboxRuntime>,
        tracer: Arc<dyn Tracer>,
    ) -> Self {
        Self(SandboxAccess::new(sandboxes, runtime, tracer))
    }

    /// Reads `path` from the chat's workspace.
    ///
    /// # Errors
    /// `FileError`: `FileNotFound` / `NotAFile` from the runtime, or no sandbox.
    pub async fn execute(
        &self,
        chat: &ChatId,
        path: &WorkspacePath,
    ) -> Result<(Vec<u8>, Session), FileError> {
        let mut span = file_span(&self.0, span::GET_FILE, op::GET_FILE, chat, path);
        let ran = trace::in_context(
            trace::context_of(span.as_ref()),
            self.0.sandboxes.in_sandbox(chat, span.as_mut(), |sandbox| {
                let runtime = Arc::clone(&self.0.runtime);
                async move { runtime.get_file(&sandbox, path).await }
            }),
        )
        .await;
        finish(span, ran, |(bytes, _)| bytes.len())
    }
}
