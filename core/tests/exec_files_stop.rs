//! `ExecInSandbox`, `PutFile` / `GetFile` / `ListFiles`, `StopSandbox` against fakes,
//! with the spans each records and how they nest.

mod support;

use std::borrow::Cow;

use sandboxer_core::domain::{EndReason, ExecOutcome, ExecRequest, FileKind, WorkspacePath};
use sandboxer_core::port::{Parent, RuntimeError, SessionStore, SpanKind, Tracer};
use sandboxer_core::testing::RuntimeOp;
use sandboxer_core::trace::{self, attr::key, attr::span};
use sandboxer_core::usecase::{ExecError, StopResult};
use support::{TTL, World, chat};

fn request(argv: &[&str]) -> ExecRequest {
    ExecRequest::new(argv.iter().map(|a| (*a).to_owned()).collect()).unwrap()
}

#[tokio::test]
async fn exec_creates_the_sandbox_and_nests_its_spans_under_the_caller() {
    let w = World::new();
    let c = chat("exec");
    w.runtime.set_exec_handler(|req| ExecOutcome {
        exit_code: 3,
        stdout: req.argv.join(" ").into_bytes(),
        stderr: b"warn".to_vec(),
        timed_out: false,
        truncated: false,
        duration: std::time::Duration::from_millis(7),
    });
    let mut http = w.tracer.start_span(
        Cow::Borrowed("POST /v1/chats/{chat_id}/exec"),
        SpanKind::Server,
        Parent::Root,
    );
    let ran = trace::in_span(http.as_ref(), w.exec.execute(&c, &request(&["echo", "hi"]))).await;
    http.end();
    let out = ran.unwrap();
    assert_eq!(out.outcome.exit_code, 3);
    assert_eq!(out.outcome.stdout, b"echo hi");

    let http = w.tracer.one("POST /v1/chats/{chat_id}/exec");
    let exec = w.tracer.one(span::EXEC);
    let create = w.tracer.one(span::CREATE_SANDBOX);
    let runtime_exec = w.tracer.one("FakeSandboxRuntime.exec");
    let runtime_create = w.tracer.one("FakeSandboxRuntime.create");
    assert!(exec.is_child_of(&http));
    assert!(create.is_child_of(&exec));
    assert!(runtime_create.is_child_of(&create));
    assert!(runtime_exec.is_child_of(&exec));
    assert_eq!(exec.kind, SpanKind::Internal);
    assert_eq!(exec.int(key::EXIT_CODE), Some(3));
    assert_eq!(exec.attr(key::EXEC_TIMED_OUT), Some(&false.into()));
    assert_eq!(exec.str(key::RESULT), Some("ok"));
    assert_eq!(exec.str(key::OPERATION), Some("exec"));
    assert_eq!(
        exec.str(key::SESSION_ID),
        Some(out.session.id.to_string().as_str())
    );
    assert!(exec.str(key::EXPIRES_AT).is_some());
    assert_eq!(create.str(key::RESULT), Some("created"));
    assert!(!exec.is_error());
}

#[tokio::test]
async fn every_exec_moves_the_expiry() {
    let w = World::new();
    let c = chat("extend");
    let first = w.exec.execute(&c, &request(&["true"])).await.unwrap();
    w.clock.advance(std::time::Duration::from_secs(600));
    let again = w.exec.execute(&c, &request(&["true"])).await.unwrap();
    assert_eq!(again.session.id, first.session.id);
    let row = w.store.get(&first.session.id).await.unwrap().unwrap();
    assert_eq!(row.expires_at, w.clock_now() + TTL);
    assert!(row.expires_at > first.session.expires_at);
}

#[tokio::test]
async fn exec_after_the_container_vanished_replaces_it_once() {
    let w = World::new();
    let c = chat("vanish");
    let first = w
        .exec
        .execute(&c, &request(&["true"]))
        .await
        .unwrap()
        .session;
    // Gone between the decision (inspect says running) and the exec.
    w.runtime.vanish_on_exec(first.id);
    let out = w.exec.execute(&c, &request(&["true"])).await.unwrap();
    assert_ne!(out.session.id, first.id);
    assert_eq!(
        w.store.get(&first.id).await.unwrap().unwrap().end_reason,
        Some(EndReason::ContainerGone)
    );
    assert_eq!(
        w.runtime.calls(RuntimeOp::Exec),
        3,
        "one exec, then one failed and one retried"
    );
    assert_eq!(w.active().len(), 1);
}

#[tokio::test]
async fn exec_failure_marks_the_span() {
    let w = World::new();
    let c = chat("docker-down");
    w.exec.execute(&c, &request(&["true"])).await.unwrap();
    w.tracer.clear();
    w.runtime.fail_next(
        RuntimeOp::Exec,
        RuntimeError::Unavailable("connection refused".into()),
    );
    let err = w.exec.execute(&c, &request(&["true"])).await.unwrap_err();
    assert!(matches!(
        err,
        ExecError::Runtime(RuntimeError::Unavailable(_))
    ));
    let exec = w.tracer.one(span::EXEC);
    assert!(exec.is_error());
    assert_eq!(exec.error_type(), Some("runtime_unavailable"));
    assert_eq!(exec.str(key::RESULT), Some("failed"));
}

#[tokio::test]
async fn files_round_trip_and_a_missing_one_is_not_found() {
    let w = World::new();
    let c = chat("files");
    let path = WorkspacePath::parse("data/blob.bin").unwrap();
    let bytes: Vec<u8> = (0..=255).collect();
    let session = w.put_file.execute(&c, &path, bytes.clone()).await.unwrap();
    let (back, same) = w.get_file.execute(&c, &path).await.unwrap();
    assert_eq!(back, bytes);
    assert_eq!(same.id, session.id);
    let missing = WorkspacePath::parse("nope.txt").unwrap();
    let err = w.get_file.execute(&c, &missing).await.unwrap_err();
    assert!(
        matches!(err, ExecError::Runtime(RuntimeError::FileNotFound(_))),
        "{err:?}"
    );

    let put = w.tracer.one(span::PUT_FILE);
    assert_eq!(put.str(key::OPERATION), Some("put_file"));
    assert_eq!(put.int(key::FILE_SIZE), Some(256));
    assert_eq!(put.str(key::FILE_PATH), Some("data/blob.bin"));
    assert_eq!(put.str(key::RESULT), Some("ok"));
    let gets = w.tracer.named(span::GET_FILE);
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].int(key::FILE_SIZE), Some(256));
    assert_eq!(gets[1].error_type(), Some("file_not_found"));
    let runtime_puts = w.tracer.named("FakeSandboxRuntime.put_file");
    assert!(runtime_puts[0].is_child_of(&put));
}

#[tokio::test]
async fn list_files_shows_a_directory_and_says_what_is_not_one() {
    let w = World::new();
    let c = chat("list");
    let file = WorkspacePath::parse("src/main.py").unwrap();
    let session = w
        .put_file
        .execute(&c, &file, b"print(1)".to_vec())
        .await
        .unwrap();
    let (root, same) = w.list_files.execute(&c, None).await.unwrap();
    assert_eq!(same.id, session.id);
    let root: Vec<_> = root.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(root, [("src", FileKind::Dir)]);
    let src = WorkspacePath::parse("src").unwrap();
    let (entries, _) = w.list_files.execute(&c, Some(&src)).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect::<Vec<_>>(),
        [("main.py", FileKind::File, 8)]
    );
    let err = w.list_files.execute(&c, Some(&file)).await.unwrap_err();
    assert!(
        matches!(err, ExecError::Runtime(RuntimeError::NotADirectory(_))),
        "{err:?}"
    );

    let lists = w.tracer.named(span::LIST_FILES);
    assert_eq!(lists.len(), 3);
    assert_eq!(lists[0].str(key::OPERATION), Some("list_files"));
    assert_eq!(lists[0].str(key::FILE_PATH), None, "the root has no path");
    assert_eq!(lists[0].int(key::FILES_COUNT), Some(1));
    assert_eq!(lists[0].str(key::RESULT), Some("ok"));
    assert_eq!(lists[1].str(key::FILE_PATH), Some("src"));
    assert_eq!(lists[1].int(key::FILES_COUNT), Some(1));
    assert_eq!(lists[2].str(key::FILE_PATH), Some("src/main.py"));
    assert_eq!(lists[2].error_type(), Some("not_a_directory"));
    assert_eq!(lists[2].int(key::FILES_COUNT), None);
    let runtime_lists = w.tracer.named("FakeSandboxRuntime.list_files");
    assert!(runtime_lists[0].is_child_of(&lists[0]));
}

#[tokio::test]
async fn stop_removes_then_reports_already_gone() {
    let w = World::new();
    let c = chat("stop");
    let s = w.create.execute(World::declared(&c)).await.unwrap().session;
    let StopResult::Stopped(stopped) = w.stop.execute(&c).await.unwrap() else {
        panic!("expected a stop");
    };
    assert_eq!(stopped.id, s.id);
    assert!(w.runtime.containers().is_empty());
    assert_eq!(
        w.store.get(&s.id).await.unwrap().unwrap().end_reason,
        Some(EndReason::Stopped)
    );
    assert_eq!(w.stop.execute(&c).await.unwrap(), StopResult::AlreadyGone);
    let spans = w.tracer.named(span::STOP_SANDBOX);
    assert_eq!(spans[0].str(key::RESULT), Some("stopped"));
    assert_eq!(
        spans[0].str(key::SESSION_ID),
        Some(s.id.to_string().as_str())
    );
    assert_eq!(spans[1].str(key::RESULT), Some("already_gone"));
    assert!(!spans[1].is_error(), "stopping nothing is not an error");
    assert!(
        w.tracer
            .one("FakeSandboxRuntime.stop")
            .is_child_of(&spans[0])
    );
}

#[tokio::test]
async fn failed_stop_keeps_the_session_and_says_why() {
    let w = World::new();
    let c = chat("stuck");
    let s = w.create.execute(World::declared(&c)).await.unwrap().session;
    w.runtime
        .fail_stop_of(s.id, RuntimeError::Timeout("no answer".into()));
    assert!(w.stop.execute(&c).await.is_err());
    assert!(w.store.get(&s.id).await.unwrap().unwrap().is_active());
    let span = w.tracer.one(span::STOP_SANDBOX);
    assert_eq!(span.error_type(), Some("timeout"));
}
