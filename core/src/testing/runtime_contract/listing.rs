//! The contract's directory listings: one level of a directory's entries,
//! sorted by name, each with its kind, a file with its size, and a
//! modification time in milliseconds of the wall clock; a missing
//! directory or a file listed as one is its own error.

use std::time::Duration;

use chrono::Utc;

use crate::domain::{FileEntry, FileKind, WorkspacePath};
use crate::port::runtime::{RuntimeError, SandboxRef, SandboxRuntime};

use super::{Outcome, RuntimeFixture, remove, start, unexpected};

/// How far a fresh entry's mtime may be from the wall clock around its
/// write: room for second-granular mtimes and a runtime's own clock, none
/// for seconds taken for milliseconds (a factor of 1000 away).
const CLOCK_SLACK: Duration = Duration::from_secs(60);

/// After `a/b.txt`, `a/deeper/d.txt` and `c.txt` are put, the workspace
/// lists `a` (a directory) and `c.txt` (a file of its size), and `a` lists
/// exactly `b.txt` and `deeper`: one level, sorted, names without `/`.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn list_files_shows_one_level_sorted(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (r, s) = start(f).await?;
    let before = Utc::now().timestamp_millis();
    for (p, contents) in [
        ("c.txt", &b"hello"[..]),
        ("a/b.txt", b"bee"),
        ("a/deeper/d.txt", b"d"),
    ] {
        rt.put_file(&s, &path(p), contents)
            .await
            .map_err(unexpected("put_file"))?;
    }
    let after = Utc::now().timestamp_millis();

    // The image may have put things in the workspace too: the root is
    // checked for what was put, `a` (made here) for exactly its entries.
    let root = listing(rt, &s, None).await?;
    let names: Vec<&str> = root.iter().map(|e| e.name.as_str()).collect();
    check!(
        names.is_sorted(),
        "the root's entries not sorted: {names:?}"
    );
    check!(
        !names.iter().any(|n| n.contains('/') || n.is_empty()),
        "a name in the root is not an entry's own: {names:?}"
    );
    let dir_a = root.iter().find(|e| e.name == "a");
    check!(
        dir_a.is_some_and(|e| e.kind == FileKind::Dir),
        "`a` in the root as a directory: {root:?}"
    );
    let c = root.iter().find(|e| e.name == "c.txt");
    check!(
        c.is_some_and(|e| (e.kind, e.size) == (FileKind::File, 5)),
        "`c.txt` in the root as a file of 5 bytes: {root:?}"
    );
    let in_a = listing(rt, &s, Some(&path("a"))).await?;
    let seen: Vec<(&str, FileKind)> = in_a.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    check_eq!(
        seen,
        [("b.txt", FileKind::File), ("deeper", FileKind::Dir)],
        "the entries of `a`"
    );
    check_eq!(in_a[0].size, 3, "the size of `a/b.txt`");
    let slack = i64::try_from(CLOCK_SLACK.as_millis()).unwrap_or(i64::MAX);
    let fresh = before - slack..=after + slack;
    for entry in dir_a.into_iter().chain(c).chain(&in_a) {
        check!(
            fresh.contains(&entry.modified_ms),
            "{entry:?}: modified_ms not within {CLOCK_SLACK:?} of the write \
             (between {before} and {after} ms since the epoch)"
        );
    }
    remove(f, &r, &s).await
}

/// `FileNotFound` for a directory that is not there, `NotADirectory` for
/// a file listed as one.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn list_files_missing_or_not_a_directory(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (r, s) = start(f).await?;
    rt.put_file(&s, &path("a/b.txt"), b"x")
        .await
        .map_err(unexpected("put_file"))?;
    check_eq!(
        rt.list_files(&s, Some(&path("missing"))).await,
        Err(RuntimeError::FileNotFound("missing".into())),
        "list_files of nothing"
    );
    let file = rt.list_files(&s, Some(&path("a/b.txt"))).await;
    check!(
        matches!(file, Err(RuntimeError::NotADirectory(_))),
        "list_files of a file: {file:?}"
    );
    remove(f, &r, &s).await
}

async fn listing(
    rt: &dyn SandboxRuntime,
    s: &SandboxRef,
    dir: Option<&WorkspacePath>,
) -> Result<Vec<FileEntry>, String> {
    let what = dir.map_or_else(|| "the workspace".to_owned(), |d| d.to_string());
    rt.list_files(s, dir)
        .await
        .map_err(|e| format!("list_files of {what} failed: {e:?}"))
}

fn path(p: &str) -> WorkspacePath {
    WorkspacePath::parse(p).expect("a valid contract path")
}
