//! The in-memory runtime's workspaces: each a flat map of relative paths to
//! files in which directories exist only as prefixes of files, kept by
//! workspace id so files outlive the sandboxes on them. It keeps the rules
//! of the port: the file rules (`NotAFile` when a directory or a file is in
//! the way, parents made on write, `NotADirectory` when a file is listed)
//! and the workspace rules (a fresh workspace is new, a kept one must still
//! be there, one in use is not deleted), so the fake answers as a real
//! runtime would.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{
    FileEntry, FileKind, SessionId, Timestamp, WorkspaceId, WorkspacePath, WorkspaceUse,
};
use crate::port::runtime::{RuntimeError, RuntimeWorkspace};

/// One file of a fake workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    pub contents: Vec<u8>,
    /// When it was last written, by the wall clock (as a file system's
    /// mtime is), in milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

/// Files of one fake workspace, keyed by their path below the workspace.
pub type FakeFiles = BTreeMap<String, FakeFile>;

/// One workspace of the fake runtime (a volume, to Docker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeWorkspace {
    pub id: WorkspaceId,
    pub created_at: Timestamp,
    pub files: FakeFiles,
}

impl FakeWorkspace {
    pub fn new(id: WorkspaceId, created_at: Timestamp) -> Self {
        Self {
            id,
            created_at,
            files: FakeFiles::new(),
        }
    }

    /// What its files hold, in bytes.
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|f| f.contents.len() as u64).sum()
    }

    /// As `list_workspaces` shows it.
    pub fn listed(&self, measure: bool) -> RuntimeWorkspace {
        RuntimeWorkspace {
            id: self.id,
            created_at: Some(self.created_at),
            bytes: measure.then(|| self.bytes()),
        }
    }
}

/// The fake runtime's workspaces, by id.
pub type FakeWorkspaces = HashMap<WorkspaceId, FakeWorkspace>;

/// Makes the workspace a create mounts ready: a fresh one is made now (an
/// id already taken is refused), a kept one must still be there.
///
/// # Errors
/// `Conflict` for a fresh id that exists or a kept workspace that is gone.
pub fn mount(
    workspaces: &mut FakeWorkspaces,
    workspace: WorkspaceUse,
    at: Timestamp,
) -> Result<(), RuntimeError> {
    match workspace {
        WorkspaceUse::Fresh(id) if workspaces.contains_key(&id) => Err(RuntimeError::Conflict(
            format!("workspace {id} already exists; a fresh workspace needs a new id"),
        )),
        WorkspaceUse::Fresh(id) => {
            workspaces.insert(id, FakeWorkspace::new(id, at));
            Ok(())
        }
        WorkspaceUse::Kept(id) if workspaces.contains_key(&id) => Ok(()),
        WorkspaceUse::Kept(id) => Err(RuntimeError::Conflict(format!(
            "workspace {id} is gone (deleted outside the service?): its files are lost \
             and it cannot be mounted again"
        ))),
    }
}

/// Deletes a workspace no sandbox mounts (`user`: the session of one that
/// does); one already gone is no error.
///
/// # Errors
/// `Conflict` while a sandbox mounts it.
pub fn delete(
    workspaces: &mut FakeWorkspaces,
    id: WorkspaceId,
    user: Option<SessionId>,
) -> Result<(), RuntimeError> {
    if let Some(session) = user {
        return Err(RuntimeError::Conflict(format!(
            "workspace {id} is in use by the sandbox of session {session}"
        )));
    }
    workspaces.remove(&id);
    Ok(())
}

/// Writes `path`, making its parents.
///
/// # Errors
/// `NotAFile` when `path` is a directory or one of its parents is a file.
pub fn write(
    files: &mut FakeFiles,
    path: &WorkspacePath,
    contents: &[u8],
) -> Result<(), RuntimeError> {
    let target = path.as_str();
    let parent_is_a_file = ancestors(target).any(|parent| files.contains_key(parent));
    if is_dir(files, target) || parent_is_a_file {
        return Err(RuntimeError::NotAFile(path.to_string()));
    }
    let file = FakeFile {
        contents: contents.to_vec(),
        modified_ms: chrono::Utc::now().timestamp_millis(),
    };
    files.insert(target.to_owned(), file);
    Ok(())
}

/// Reads the regular file at `path`.
///
/// # Errors
/// `FileNotFound` when nothing is there, `NotAFile` for a directory.
pub fn read(files: &FakeFiles, path: &WorkspacePath) -> Result<Vec<u8>, RuntimeError> {
    if let Some(file) = files.get(path.as_str()) {
        return Ok(file.contents.clone());
    }
    if is_dir(files, path.as_str()) {
        return Err(RuntimeError::NotAFile(path.to_string()));
    }
    Err(RuntimeError::FileNotFound(path.to_string()))
}

/// The entries of `dir` (`None`: the workspace), sorted by name. A
/// directory has size 0 and the newest mtime of the files below it (a
/// stand-in: a real directory's changes when its own entries do).
///
/// # Errors
/// `NotADirectory` when `dir` is a file, `FileNotFound` when nothing is
/// there (the workspace itself is always there, if empty).
pub fn list(
    files: &FakeFiles,
    dir: Option<&WorkspacePath>,
) -> Result<Vec<FileEntry>, RuntimeError> {
    let prefix = match dir {
        None => String::new(),
        Some(dir) if files.contains_key(dir.as_str()) => {
            return Err(RuntimeError::NotADirectory(dir.to_string()));
        }
        Some(dir) => format!("{dir}/"),
    };
    let mut entries = BTreeMap::<&str, FileEntry>::new();
    let below = files
        .range(prefix.clone()..)
        .take_while(|(key, _)| key.starts_with(&prefix));
    for (key, file) in below {
        let (name, kind, size) = match key[prefix.len()..].split_once('/') {
            None => (
                &key[prefix.len()..],
                FileKind::File,
                file.contents.len() as u64,
            ),
            Some((name, _)) => (name, FileKind::Dir, 0),
        };
        let entry = entries.entry(name).or_insert_with(|| FileEntry {
            name: name.to_owned(),
            kind,
            size,
            modified_ms: file.modified_ms,
        });
        entry.modified_ms = entry.modified_ms.max(file.modified_ms);
    }
    match dir {
        Some(dir) if entries.is_empty() => Err(RuntimeError::FileNotFound(dir.to_string())),
        _ => Ok(entries.into_values().collect()),
    }
}

/// A directory is any path some file lives below.
fn is_dir(files: &FakeFiles, path: &str) -> bool {
    let below = format!("{path}/");
    files
        .range(below.clone()..)
        .next()
        .is_some_and(|(key, _)| key.starts_with(&below))
}

/// `a/b/c` -> `a/b`, `a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(at, _)| &path[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_are_made_fresh_kept_and_deleted_when_unused() {
        let mut all = FakeWorkspaces::new();
        let (id, at) = (WorkspaceId::new(), chrono::Utc::now());
        assert!(matches!(
            mount(&mut all, WorkspaceUse::Kept(id), at),
            Err(RuntimeError::Conflict(_))
        ));
        assert!(all.is_empty(), "a kept workspace that is gone is not made");
        mount(&mut all, WorkspaceUse::Fresh(id), at).unwrap();
        assert!(matches!(
            mount(&mut all, WorkspaceUse::Fresh(id), at),
            Err(RuntimeError::Conflict(_))
        ));
        write(&mut all.get_mut(&id).unwrap().files, &p("a/b"), b"abc").unwrap();
        mount(&mut all, WorkspaceUse::Kept(id), at).unwrap();
        assert_eq!(all[&id].bytes(), 3);
        assert_eq!(all[&id].listed(false).bytes, None);
        assert_eq!(all[&id].listed(true).bytes, Some(3));
        assert!(matches!(
            delete(&mut all, id, Some(SessionId::new())),
            Err(RuntimeError::Conflict(_))
        ));
        assert_eq!(all[&id].bytes(), 3, "a refused delete keeps the files");
        delete(&mut all, id, None).unwrap();
        delete(&mut all, id, None).unwrap();
        assert!(all.is_empty());
    }

    fn p(path: &str) -> WorkspacePath {
        WorkspacePath::parse(path).unwrap()
    }

    #[test]
    fn keeps_the_rules_of_a_real_tree() {
        let mut files = FakeFiles::new();
        write(&mut files, &p("src/pkg/a.txt"), b"a").unwrap();
        assert_eq!(read(&files, &p("src/pkg/a.txt")), Ok(b"a".to_vec()));
        assert!(matches!(
            read(&files, &p("src")),
            Err(RuntimeError::NotAFile(_))
        ));
        assert!(matches!(
            write(&mut files, &p("src/pkg"), b""),
            Err(RuntimeError::NotAFile(_))
        ));
        assert!(matches!(
            write(&mut files, &p("src/pkg/a.txt/b"), b""),
            Err(RuntimeError::NotAFile(_))
        ));
        // A sibling whose name extends a directory's is no directory of it.
        write(&mut files, &p("src/pkg2"), b"2").unwrap();
        assert_eq!(
            read(&files, &p("nope")),
            Err(RuntimeError::FileNotFound("nope".into()))
        );
    }

    #[test]
    fn lists_one_level_with_directories_implied_by_paths() {
        let mut files = FakeFiles::new();
        assert_eq!(list(&files, None), Ok(Vec::new()));
        for (path, contents) in [
            ("src/pkg/a.txt", &b"a"[..]),
            ("src/pkg.txt", b"pkg"),
            ("src/b", b"bb"),
            ("top", b""),
        ] {
            write(&mut files, &p(path), contents).unwrap();
        }
        let seen = |dir: Option<&str>| {
            list(&files, dir.map(p).as_ref()).map(|entries| {
                entries
                    .into_iter()
                    .map(|e| (e.name, e.kind, e.size))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            seen(None),
            Ok(vec![
                ("src".into(), FileKind::Dir, 0),
                ("top".into(), FileKind::File, 0)
            ])
        );
        // `pkg.txt` sorts before `pkg/...` as keys, after `pkg` as a name.
        assert_eq!(
            seen(Some("src")),
            Ok(vec![
                ("b".into(), FileKind::File, 2),
                ("pkg".into(), FileKind::Dir, 0),
                ("pkg.txt".into(), FileKind::File, 3),
            ])
        );
        assert_eq!(
            seen(Some("src/pk")),
            Err(RuntimeError::FileNotFound("src/pk".into()))
        );
        assert_eq!(
            seen(Some("top")),
            Err(RuntimeError::NotADirectory("top".into()))
        );
        let newest = files
            .iter()
            .filter(|(key, _)| key.starts_with("src/"))
            .map(|(_, f)| f.modified_ms)
            .max();
        let src = list(&files, None).unwrap().remove(0);
        assert_eq!(Some(src.modified_ms), newest);
    }
}
