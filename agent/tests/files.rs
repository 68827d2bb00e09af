//! File operations under the agent's root: what they do, and what they
//! refuse (paths leaving the workspace, wrong kinds, sizes over the limit).

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};

use common::{Agent, start};
use sandboxer_agent_proto::{AgentError, Entry, EntryKind, ErrorKind, Reply, Request};
use serde_bytes::ByteBuf;

fn write(path: &str, data: &[u8]) -> Request {
    Request::WriteFile {
        path: path.into(),
        data: ByteBuf::from(data.to_vec()),
    }
}

fn read(path: &str) -> Request {
    Request::ReadFile {
        path: path.into(),
        limit: 1 << 20,
    }
}

async fn error(agent: &Agent, request: Request) -> AgentError {
    match agent.call(request.clone()).await {
        Reply::Error(error) => error,
        other => panic!("{request:?} answered {other:?}"),
    }
}

async fn kind(agent: &Agent, request: Request) -> ErrorKind {
    error(agent, request).await.kind
}

async fn list(agent: &Agent, path: &str) -> Vec<Entry> {
    match agent.call(Request::List { path: path.into() }).await {
        Reply::List(entries) => entries,
        other => panic!("list {path:?} answered {other:?}"),
    }
}

#[tokio::test]
async fn a_write_makes_its_parents_and_reads_back() {
    let agent = start();
    assert_eq!(agent.call(write("a/b/c.txt", b"hello")).await, Reply::Done);
    assert_eq!(
        agent.call(read("a/b/c.txt")).await,
        Reply::File(ByteBuf::from(b"hello".to_vec()))
    );
    let on_disk = agent.root().join("a/b/c.txt");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"hello");
    let mode = std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o644, 0, "a new file is at most 0644: {mode:o}");
    // "./" and a trailing "/" name the same file.
    assert_eq!(
        agent.call(read("./a/b/c.txt")).await,
        Reply::File(ByteBuf::from(b"hello".to_vec()))
    );
}

#[tokio::test]
async fn list_is_sorted_and_stat_tells_kinds_without_following_symlinks() {
    let agent = start();
    agent.call(write("dir/b.txt", b"12345")).await;
    agent.call(write("dir/a.txt", b"1")).await;
    agent
        .call(Request::Mkdir {
            path: "dir/c".into(),
        })
        .await;
    symlink("a.txt", agent.root().join("dir/link")).unwrap();

    let entries = list(&agent, "dir").await;
    let names: Vec<(&str, EntryKind)> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        names,
        vec![
            ("a.txt", EntryKind::File),
            ("b.txt", EntryKind::File),
            ("c", EntryKind::Dir),
            ("link", EntryKind::Symlink),
        ]
    );
    assert_eq!(entries[1].size, 5);
    assert!(entries[1].mtime_ms > 1_600_000_000_000);

    let Reply::Stat(link) = agent
        .call(Request::Stat {
            path: "dir/link".into(),
        })
        .await
    else {
        panic!("no stat")
    };
    assert_eq!(
        (link.name.as_str(), link.kind),
        ("link", EntryKind::Symlink)
    );
    let Reply::Stat(root) = agent.call(Request::Stat { path: ".".into() }).await else {
        panic!("no stat")
    };
    assert_eq!(root.kind, EntryKind::Dir);
    assert_eq!(list(&agent, ".").await.len(), 1);

    assert_eq!(
        kind(
            &agent,
            Request::List {
                path: "dir/a.txt".into()
            }
        )
        .await,
        ErrorKind::NotADirectory
    );
    assert_eq!(
        kind(
            &agent,
            Request::Stat {
                path: "nope".into()
            }
        )
        .await,
        ErrorKind::NotFound
    );
    assert_eq!(kind(&agent, read("nope")).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn mkdir_and_remove() {
    let agent = start();
    assert_eq!(
        agent
            .call(Request::Mkdir {
                path: "x/y/z".into()
            })
            .await,
        Reply::Done
    );
    assert_eq!(
        agent
            .call(Request::Mkdir {
                path: "x/y/z".into()
            })
            .await,
        Reply::Done
    );
    assert!(agent.root().join("x/y/z").is_dir());
    agent.call(write("x/y/z/f", b"f")).await;
    symlink(agent.root().join("x"), agent.root().join("to-x")).unwrap();

    // A symlink goes, not what it points to.
    assert_eq!(
        agent
            .call(Request::Remove {
                path: "to-x".into()
            })
            .await,
        Reply::Done
    );
    assert!(agent.root().join("x/y/z/f").exists());
    assert_eq!(
        agent
            .call(Request::Remove {
                path: "x/y/z/f".into()
            })
            .await,
        Reply::Done
    );
    assert_eq!(
        agent.call(Request::Remove { path: "x".into() }).await,
        Reply::Done
    );
    assert!(!agent.root().join("x").exists());

    assert_eq!(
        kind(&agent, Request::Remove { path: "x".into() }).await,
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(&agent, Request::Remove { path: ".".into() }).await,
        ErrorKind::BadRequest
    );
    assert!(agent.root().is_dir());
    agent.call(write("file", b"")).await;
    assert_eq!(
        kind(
            &agent,
            Request::Mkdir {
                path: "file".into()
            }
        )
        .await,
        ErrorKind::NotADirectory
    );
    assert_eq!(
        kind(
            &agent,
            Request::Mkdir {
                path: "file/sub".into()
            }
        )
        .await,
        ErrorKind::NotADirectory
    );
}

#[tokio::test]
async fn a_write_replaces_the_file_atomically_and_keeps_its_mode() {
    let agent = start();
    let (a, b) = (vec![b'a'; 1 << 20], vec![b'b'; 1 << 20]);
    agent.call(write("f", &a)).await;
    let on_disk = agent.root().join("f");
    std::fs::set_permissions(&on_disk, std::fs::Permissions::from_mode(0o755)).unwrap();

    // Readers racing the writes see one whole version or the other.
    let writer = async {
        for i in 0..20 {
            let data = if i % 2 == 0 { &b } else { &a };
            assert_eq!(agent.call(write("f", data)).await, Reply::Done);
        }
    };
    let reader = async {
        for _ in 0..20 {
            let Reply::File(got) = agent.call(read("f")).await else {
                panic!("no file")
            };
            assert!(got.as_slice() == a.as_slice() || got.as_slice() == b.as_slice());
        }
    };
    tokio::join!(writer, reader);
    let names: Vec<String> = list(&agent, ".")
        .await
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["f"], "no temporary file is left");
    let mode = std::fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
}

#[tokio::test]
async fn a_directory_in_the_way_is_not_a_file() {
    let agent = start();
    agent.call(Request::Mkdir { path: "d".into() }).await;
    assert_eq!(kind(&agent, write("d", b"x")).await, ErrorKind::NotAFile);
    assert_eq!(kind(&agent, read("d")).await, ErrorKind::NotAFile);
    assert_eq!(kind(&agent, write(".", b"x")).await, ErrorKind::NotAFile);
    agent.call(write("f", b"x")).await;
    assert_eq!(
        kind(&agent, write("f/x", b"x")).await,
        ErrorKind::NotADirectory
    );
    assert_eq!(kind(&agent, read("f/x")).await, ErrorKind::NotADirectory);
}

#[tokio::test]
async fn dot_dot_absolute_and_empty_paths_are_bad_requests() {
    let agent = start();
    for path in ["", "..", "../x", "a/../../x", "a/..", "/etc/passwd"] {
        assert_eq!(
            kind(&agent, read(path)).await,
            ErrorKind::BadRequest,
            "{path:?}"
        );
        assert_eq!(
            kind(&agent, write(path, b"x")).await,
            ErrorKind::BadRequest,
            "{path:?}"
        );
        let stat = Request::Stat { path: path.into() };
        assert_eq!(kind(&agent, stat).await, ErrorKind::BadRequest, "{path:?}");
    }
    let error = error(&agent, read("../secret")).await;
    assert!(error.message.contains("../secret"), "{}", error.message);
}

#[tokio::test]
async fn symlinks_out_of_the_workspace_are_refused_for_reads_and_writes() {
    let agent = start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    let root = agent.root();
    symlink(outside.path().join("secret"), root.join("secret")).unwrap();
    symlink(outside.path(), root.join("out")).unwrap();

    assert_eq!(
        kind(&agent, read("secret")).await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        kind(&agent, read("out/secret")).await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        kind(&agent, Request::List { path: "out".into() }).await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        kind(&agent, write("secret", b"pwned")).await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        kind(&agent, write("out/new", b"pwned")).await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        kind(&agent, write("out/deeper/new", b"pwned")).await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        kind(
            &agent,
            Request::Mkdir {
                path: "out/dir".into()
            }
        )
        .await,
        ErrorKind::OutsideWorkspace
    );
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"secret"
    );
    let mut left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, vec!["secret"]);

    // A symlink inside the workspace is written and read through.
    agent.call(write("real.txt", b"one")).await;
    symlink("real.txt", root.join("alias")).unwrap();
    assert_eq!(agent.call(write("alias", b"two")).await, Reply::Done);
    assert_eq!(std::fs::read(root.join("real.txt")).unwrap(), b"two");
    assert!(
        std::fs::symlink_metadata(root.join("alias"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        agent.call(read("alias")).await,
        Reply::File(ByteBuf::from(b"two".to_vec()))
    );
}

#[tokio::test]
async fn a_read_over_its_limit_is_too_large() {
    let agent = start();
    agent.call(write("f", &[7u8; 100])).await;
    let small = Request::ReadFile {
        path: "f".into(),
        limit: 99,
    };
    assert_eq!(kind(&agent, small).await, ErrorKind::TooLarge);
    let exact = Request::ReadFile {
        path: "f".into(),
        limit: 100,
    };
    assert_eq!(
        agent.call(exact).await,
        Reply::File(ByteBuf::from(vec![7u8; 100]))
    );
}
