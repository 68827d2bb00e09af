//! The contract's files: what `put_file` writes the sandbox's commands see
//! and what they write `get_file` reads, byte for byte; parents are made;
//! a missing file or a directory in the way is its own error.

use crate::domain::WorkspacePath;
use crate::port::runtime::RuntimeError;

use super::{Outcome, RuntimeFixture, cmd, remove, run, start, stdout, unexpected};

/// Round trips: a nested path (parents made), an overwrite, binary and
/// empty files; commands read what was put and `get_file` reads what
/// commands wrote.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn files_round_trip(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (r, s) = start(f).await?;
    let nested = path("src/pkg/data.txt");
    rt.put_file(&s, &nested, b"line one\n")
        .await
        .map_err(unexpected("put_file of a nested path"))?;
    check_eq!(
        rt.get_file(&s, &nested).await,
        Ok(b"line one\n".to_vec()),
        "a nested file read back"
    );
    check_eq!(
        stdout(f, &s, &["cat", "src/pkg/data.txt"]).await?,
        b"line one\n",
        "a command reads the file put"
    );
    rt.put_file(&s, &nested, b"new")
        .await
        .map_err(unexpected("overwrite"))?;
    check_eq!(
        rt.get_file(&s, &nested).await,
        Ok(b"new".to_vec()),
        "an overwritten file"
    );
    check_eq!(
        stdout(f, &s, &["cat", "/workspace/src/pkg/data.txt"]).await?,
        b"new",
        "a command reads the overwrite, by its absolute path"
    );

    let binary: Vec<u8> = (0..=255u8).cycle().take(64 * 1024 + 3).collect();
    let blob = path("bin/blob.bin");
    rt.put_file(&s, &blob, &binary)
        .await
        .map_err(unexpected("put_file of binary"))?;
    check!(
        rt.get_file(&s, &blob).await.as_deref() == Ok(&binary[..]),
        "binary bytes did not come back as they went in"
    );
    check!(
        stdout(f, &s, &["cat", "bin/blob.bin"]).await? == binary,
        "a command read other bytes than were put"
    );
    let empty = path("empty");
    rt.put_file(&s, &empty, b"")
        .await
        .map_err(unexpected("put_file of nothing"))?;
    check_eq!(
        rt.get_file(&s, &empty).await,
        Ok(Vec::new()),
        "an empty file"
    );

    let tee = cmd(&["tee", "inside.txt"]).with_stdin(b"made-inside".to_vec());
    let out = run(f, &s, &tee).await?;
    check_eq!(out.exit_code, 0, "tee ({out:?})");
    check_eq!(
        rt.get_file(&s, &path("inside.txt")).await,
        Ok(b"made-inside".to_vec()),
        "a file a command made"
    );
    remove(f, &r, &s).await
}

/// `FileNotFound` for nothing there; `NotAFile` for reading or writing a
/// directory and for writing through a file.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn files_missing_or_in_the_way(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (r, s) = start(f).await?;
    rt.put_file(&s, &path("src/pkg/data.txt"), b"x")
        .await
        .map_err(unexpected("put_file"))?;
    check_eq!(
        rt.get_file(&s, &path("nope.txt")).await,
        Err(RuntimeError::FileNotFound("nope.txt".into())),
        "get_file of nothing"
    );
    let dir = path("src/pkg");
    let read_dir = rt.get_file(&s, &dir).await;
    check!(
        matches!(read_dir, Err(RuntimeError::NotAFile(_))),
        "get_file of a directory: {read_dir:?}"
    );
    let write_dir = rt.put_file(&s, &dir, b"x").await;
    check!(
        matches!(write_dir, Err(RuntimeError::NotAFile(_))),
        "put_file onto a directory: {write_dir:?}"
    );
    let through = rt.put_file(&s, &path("src/pkg/data.txt/x"), b"x").await;
    check!(
        matches!(through, Err(RuntimeError::NotAFile(_))),
        "put_file through a file: {through:?}"
    );
    check_eq!(
        rt.get_file(&s, &path("src/pkg/data.txt")).await,
        Ok(b"x".to_vec()),
        "the file in the way, untouched"
    );
    remove(f, &r, &s).await
}

fn path(p: &str) -> WorkspacePath {
    WorkspacePath::parse(p).expect("a valid contract path")
}
