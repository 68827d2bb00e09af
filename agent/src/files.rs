//! File operations under the workspace root. Request paths are relative to
//! the root; `..`, absolute and empty paths are refused outright, and a path
//! whose resolution (through symlinks) leaves the root is refused as
//! outside the workspace. The check guards against mistakes, not against
//! the sandbox user, who runs as the agent's own uid anyway.
//!
//! Every function here blocks: the caller runs it on a blocking thread.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::Errno;
use sandboxer_agent_proto::{AgentError, Entry, EntryKind, ErrorKind, Reply};
use serde_bytes::ByteBuf;

pub const DEFAULT_ROOT: &str = "/workspace";
/// The most a read returns, whatever the request's limit: a file moves in
/// one frame.
const READ_CAP: u64 = 64 * 1024 * 1024;

type Outcome = Result<Reply, AgentError>;

#[derive(Debug, Clone)]
pub struct Workspace {
    /// Canonical, so resolved paths compare against it component-wise.
    root: PathBuf,
}

impl Workspace {
    pub fn new(root: PathBuf) -> Self {
        // A missing root stays as given: every operation then says so.
        let root = fs::canonicalize(&root).unwrap_or(root);
        Self { root }
    }

    /// Writes the whole file through a temporary file in the same directory
    /// renamed over the target, so readers see the old or the new content.
    pub fn write(&self, path: &str, data: &[u8]) -> Outcome {
        let parts = relative(path)?;
        let Some((name, dirs)) = parts.split_last() else {
            return Err(AgentError::new(
                ErrorKind::NotAFile,
                "the workspace root is a directory",
            ));
        };
        let dir = self.make_dirs(&join(&self.root, dirs), path)?;
        let target = self.creation_target(&dir, name, path)?;
        replace(&target, data).map_err(|e| io_error(&e, path))?;
        Ok(Reply::Done)
    }

    pub fn read(&self, path: &str, limit: u64) -> Outcome {
        let real = self.resolve(&join(&self.root, &relative(path)?), path)?;
        let limit = limit.min(READ_CAP);
        // Checked before opening: opening a FIFO would block.
        let meta = fs::metadata(&real).map_err(|e| io_error(&e, path))?;
        if !meta.is_file() {
            return Err(not_a_file(path));
        }
        let too_large = || {
            AgentError::new(
                ErrorKind::TooLarge,
                format!("{path:?} is over {limit} bytes"),
            )
        };
        if meta.len() > limit {
            return Err(too_large());
        }
        let file = File::open(&real).map_err(|e| io_error(&e, path))?;
        let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        // It may grow meanwhile: read one byte past the limit to know.
        file.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| io_error(&e, path))?;
        if data.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(Reply::File(ByteBuf::from(data)))
    }

    /// The path itself (a symlink is reported as one), its parent resolved.
    pub fn stat(&self, path: &str) -> Outcome {
        let parts = relative(path)?;
        let Some((name, dirs)) = parts.split_last() else {
            let meta = fs::metadata(&self.root).map_err(|e| io_error(&e, path))?;
            return Ok(Reply::Stat(entry(OsStr::new("."), &meta)));
        };
        let dir = self.resolve(&join(&self.root, dirs), path)?;
        let meta = fs::symlink_metadata(dir.join(name)).map_err(|e| io_error(&e, path))?;
        Ok(Reply::Stat(entry(name, &meta)))
    }

    /// A directory's entries, sorted by name; symlinks are not followed.
    pub fn list(&self, path: &str) -> Outcome {
        let real = self.resolve(&join(&self.root, &relative(path)?), path)?;
        let meta = fs::metadata(&real).map_err(|e| io_error(&e, path))?;
        if !meta.is_dir() {
            return Err(AgentError::new(
                ErrorKind::NotADirectory,
                format!("{path:?} is not a directory"),
            ));
        }
        let mut entries = Vec::new();
        for dirent in fs::read_dir(&real).map_err(|e| io_error(&e, path))? {
            let dirent = dirent.map_err(|e| io_error(&e, path))?;
            match fs::symlink_metadata(dirent.path()) {
                Ok(meta) => entries.push(entry(&dirent.file_name(), &meta)),
                // Removed since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&e, path)),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Reply::List(entries))
    }

    pub fn mkdir(&self, path: &str) -> Outcome {
        self.make_dirs(&join(&self.root, &relative(path)?), path)?;
        Ok(Reply::Done)
    }

    /// A file or symlink is unlinked; a directory goes with all below it.
    pub fn remove(&self, path: &str) -> Outcome {
        let parts = relative(path)?;
        let Some((name, dirs)) = parts.split_last() else {
            return Err(AgentError::new(
                ErrorKind::BadRequest,
                "the workspace root cannot be removed",
            ));
        };
        let target = self.resolve(&join(&self.root, dirs), path)?.join(name);
        let meta = fs::symlink_metadata(&target).map_err(|e| io_error(&e, path))?;
        // remove_dir_all does not follow symlinks below the directory.
        let removed = if meta.is_dir() {
            fs::remove_dir_all(&target)
        } else {
            fs::remove_file(&target)
        };
        removed.map_err(|e| io_error(&e, path))?;
        Ok(Reply::Done)
    }

    /// Canonicalizes `path` and refuses a result outside the root.
    fn resolve(&self, path: &Path, request: &str) -> Result<PathBuf, AgentError> {
        let real = fs::canonicalize(path).map_err(|e| io_error(&e, request))?;
        self.inside(&real, request)?;
        Ok(real)
    }

    fn inside(&self, real: &Path, request: &str) -> Result<(), AgentError> {
        if real.starts_with(&self.root) {
            Ok(())
        } else {
            Err(AgentError::new(
                ErrorKind::OutsideWorkspace,
                format!("{request:?} resolves outside the workspace"),
            ))
        }
    }

    /// Creates `dir` and its missing parents (0755 under the umask), after
    /// checking that the deepest existing ancestor is inside the root, and
    /// returns it resolved.
    fn make_dirs(&self, dir: &Path, request: &str) -> Result<PathBuf, AgentError> {
        let mut probe = dir;
        loop {
            match fs::canonicalize(probe) {
                Ok(real) => {
                    self.inside(&real, request)?;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match probe.parent() {
                    Some(parent) => probe = parent,
                    None => return Err(io_error(&e, request)),
                },
                Err(e) => return Err(io_error(&e, request)),
            }
        }
        let made = DirBuilder::new().recursive(true).mode(0o755).create(dir);
        made.map_err(|e| match e.kind() {
            // A file (or a dangling symlink) where a directory should be.
            io::ErrorKind::AlreadyExists => AgentError::new(
                ErrorKind::NotADirectory,
                format!("{request:?}: a file is in the way of a directory"),
            ),
            _ => io_error(&e, request),
        })?;
        self.resolve(dir, request)
    }

    /// Where a write to `dir/name` lands: a symlink is written through
    /// (when its destination is inside the root), a directory is refused.
    fn creation_target(
        &self,
        dir: &Path,
        name: &OsStr,
        request: &str,
    ) -> Result<PathBuf, AgentError> {
        let target = dir.join(name);
        let meta = match fs::symlink_metadata(&target) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(target),
            Err(e) => return Err(io_error(&e, request)),
        };
        if meta.is_dir() {
            return Err(not_a_file(request));
        }
        if !meta.file_type().is_symlink() {
            return Ok(target);
        }
        match fs::canonicalize(&target) {
            Ok(real) => {
                self.inside(&real, request)?;
                if real.is_dir() {
                    return Err(not_a_file(request));
                }
                Ok(real)
            }
            // A dangling link: create what it names, if that is inside.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let link = fs::read_link(&target).map_err(|e| io_error(&e, request))?;
                let dest = dir.join(link);
                let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
                    return Err(not_a_file(request));
                };
                Ok(self.resolve(parent, request)?.join(name))
            }
            Err(e) => Err(io_error(&e, request)),
        }
    }
}

/// A request path's components; refuses empty, absolute and `..` paths.
/// `.` components are dropped, so "." is the root itself.
fn relative(path: &str) -> Result<Vec<&OsStr>, AgentError> {
    let bad = |why: &str| {
        Err(AgentError::new(
            ErrorKind::BadRequest,
            format!("{path:?}: {why}"),
        ))
    };
    if path.is_empty() {
        return bad("an empty path");
    }
    if path.contains('\0') {
        return bad("a path with a NUL byte");
    }
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => return bad("`..` is not allowed"),
            Component::RootDir | Component::Prefix(_) => {
                return bad("paths are relative to the workspace");
            }
        }
    }
    Ok(parts)
}

fn join(root: &Path, parts: &[&OsStr]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(parts);
    path
}

/// Writes `data` to a new temporary file beside `target` and renames it
/// over `target`. A replaced file keeps its mode; a new one is 0644 under
/// the umask.
fn replace(target: &Path, data: &[u8]) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = target.parent().unwrap_or(Path::new("/"));
    // Short and unique: the target's own name may be near NAME_MAX.
    let tmp = dir.join(format!(
        ".sandboxer-tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mode = fs::metadata(target)
        .ok()
        .filter(fs::Metadata::is_file)
        .map(|meta| meta.permissions().mode() & 0o7777);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)?;
    let written = file
        .write_all(data)
        .and_then(|()| match mode {
            Some(mode) => file.set_permissions(Permissions::from_mode(mode)),
            None => Ok(()),
        })
        .and_then(|()| fs::rename(&tmp, target));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn entry(name: &OsStr, meta: &fs::Metadata) -> Entry {
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        EntryKind::Symlink
    } else if file_type.is_dir() {
        EntryKind::Dir
    } else if file_type.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    Entry {
        name: name.to_string_lossy().into_owned(),
        kind,
        size: meta.len(),
        mtime_ms: meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000,
        mode: meta.mode() & 0o7777,
    }
}

fn not_a_file(path: &str) -> AgentError {
    AgentError::new(
        ErrorKind::NotAFile,
        format!("{path:?} is not a regular file"),
    )
}

/// An io error as the service sees it, naming the request's path.
fn io_error(e: &io::Error, path: &str) -> AgentError {
    let kind = match Errno::from_io_error(e) {
        Some(Errno::NOTDIR) => ErrorKind::NotADirectory,
        Some(Errno::ISDIR) => ErrorKind::NotAFile,
        Some(Errno::NOSPC | Errno::DQUOT) => ErrorKind::NoSpace,
        _ if e.kind() == io::ErrorKind::NotFound => ErrorKind::NotFound,
        _ => ErrorKind::Io,
    };
    AgentError::new(kind, format!("{path:?}: {e}"))
}
