//! `PutFile` / `GetFile`: move a file into or out of the chat's workspace;
//! `ListFiles`: a directory's entries (the sandbox is created if needed, and
//! leased while the call runs).

use crate::domain::{ChatId, FileEntry, Session, WorkspacePath};
use crate::port::tracer::Span;
use crate::trace::attr::{key, op, span};

use super::create_sandbox::CreateSandbox;
use super::errors::FileError;
use super::in_sandbox::SandboxAccess;

#[derive(Clone)]
pub struct PutFile(SandboxAccess);

#[derive(Clone)]
pub struct GetFile(SandboxAccess);

#[derive(Clone)]
pub struct ListFiles(SandboxAccess);

fn path_attribute(path: &WorkspacePath) -> impl FnOnce(&mut dyn Span) {
    let path = path.to_string();
    move |span| span.set_attribute(key::FILE_PATH, path.into())
}

impl PutFile {
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
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
        let size = contents.len();
        let ((), session) = self
            .0
            .run(
                (span::PUT_FILE, op::PUT_FILE),
                chat,
                path_attribute(path),
                |runtime, sandbox| {
                    let contents = &contents;
                    async move { runtime.put_file(&sandbox, path, contents).await }
                },
                |(), span| span.set_attribute(key::FILE_SIZE, size.into()),
            )
            .await?;
        Ok(session)
    }
}

impl GetFile {
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
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
        self.0
            .run(
                (span::GET_FILE, op::GET_FILE),
                chat,
                path_attribute(path),
                |runtime, sandbox| async move { runtime.get_file(&sandbox, path).await },
                |bytes: &Vec<u8>, span| span.set_attribute(key::FILE_SIZE, bytes.len().into()),
            )
            .await
    }
}

impl ListFiles {
    pub fn new(sandboxes: CreateSandbox) -> Self {
        Self(SandboxAccess::new(sandboxes))
    }

    /// Lists `dir` of the chat's workspace (`None`: the workspace itself),
    /// one level, sorted by name.
    ///
    /// # Errors
    /// `FileError`: `FileNotFound` / `NotADirectory` from the runtime, or no sandbox.
    pub async fn execute(
        &self,
        chat: &ChatId,
        dir: Option<&WorkspacePath>,
    ) -> Result<(Vec<FileEntry>, Session), FileError> {
        self.0
            .run(
                (span::LIST_FILES, op::LIST_FILES),
                chat,
                |span| {
                    if let Some(dir) = dir {
                        path_attribute(dir)(span);
                    }
                },
                |runtime, sandbox| async move { runtime.list_files(&sandbox, dir).await },
                |entries: &Vec<FileEntry>, span| {
                    span.set_attribute(key::FILES_COUNT, entries.len().into());
                },
            )
            .await
    }
}
