//! The in-memory runtime's workspace: a flat map of relative paths to bytes
//! in which directories exist only as prefixes of files. It keeps the file
//! rules of the port (`NotAFile` when a directory or a file is in the way,
//! parents made on write) so the fake answers as a real workspace would.

use std::collections::BTreeMap;

use crate::domain::WorkspacePath;
use crate::port::runtime::RuntimeError;

/// Files of one fake sandbox, keyed by their path below the workspace.
pub type FakeFiles = BTreeMap<String, Vec<u8>>;

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
    files.insert(target.to_owned(), contents.to_vec());
    Ok(())
}

/// Reads the regular file at `path`.
///
/// # Errors
/// `FileNotFound` when nothing is there, `NotAFile` for a directory.
pub fn read(files: &FakeFiles, path: &WorkspacePath) -> Result<Vec<u8>, RuntimeError> {
    if let Some(contents) = files.get(path.as_str()) {
        return Ok(contents.clone());
    }
    if is_dir(files, path.as_str()) {
        return Err(RuntimeError::NotAFile(path.to_string()));
    }
    Err(RuntimeError::FileNotFound(path.to_string()))
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
}
