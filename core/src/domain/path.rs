//! Paths inside a sandbox's workspace, refused when they could leave it.

use std::fmt;

use thiserror::Error;

/// Where a sandbox's files live.
pub const WORKSPACE_ROOT: &str = "/workspace";
const MAX_PATH_LEN: usize = 1024;

/// A relative path below `/workspace`: no `..`, no `.`, no empty segment,
/// not absolute, no NUL, at most 1024 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspacePath(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidWorkspacePath {
    #[error("file path is empty")]
    Empty,
    #[error("file path must be relative to the workspace, got {0:?}")]
    Absolute(String),
    #[error("file path must not contain `..`, `.` or empty segments, got {0:?}")]
    Traversal(String),
    #[error("file path holds a NUL byte or a backslash")]
    ForbiddenCharacter,
    #[error("file path is {0} bytes long; at most 1024 are allowed")]
    TooLong(usize),
}

impl WorkspacePath {
    /// # Errors
    /// `InvalidWorkspacePath` for anything that is not a plain relative path.
    pub fn parse(raw: &str) -> Result<Self, InvalidWorkspacePath> {
        if raw.is_empty() {
            return Err(InvalidWorkspacePath::Empty);
        }
        if raw.len() > MAX_PATH_LEN {
            return Err(InvalidWorkspacePath::TooLong(raw.len()));
        }
        if raw.contains('\0') || raw.contains('\\') {
            return Err(InvalidWorkspacePath::ForbiddenCharacter);
        }
        if raw.starts_with('/') {
            return Err(InvalidWorkspacePath::Absolute(raw.to_owned()));
        }
        if raw
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(InvalidWorkspacePath::Traversal(raw.to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Relative to the workspace.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Absolute, inside the sandbox.
    pub fn absolute(&self) -> String {
        format!("{WORKSPACE_ROOT}/{}", self.0)
    }

    /// The parent directory, relative; `None` at the workspace's top.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(dir, _)| dir)
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_paths_inside_the_workspace() {
        let p = WorkspacePath::parse("src/main.py").unwrap();
        assert_eq!(p.absolute(), "/workspace/src/main.py");
        assert_eq!(p.parent(), Some("src"));
        assert_eq!(WorkspacePath::parse("a").unwrap().parent(), None);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            "a\0b",
            "a\\b",
        ] {
            assert!(WorkspacePath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(WorkspacePath::parse(&"a".repeat(1025)).is_err());
        assert!(WorkspacePath::parse("..hidden/x..y").is_ok());
    }
}
