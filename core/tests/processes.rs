//! The live-process use cases against fakes: start and its exit watcher's
//! span, follow streams (events, the lease they hold, their span), snapshots,
//! a streamed exec killed when its reader leaves, and what cleanup does with
//! a sandbox whose process nobody follows.

mod support;

use std::time::Duration;

use sandboxer_core::domain::{
    ExecRequest, OutputCursor, ProcessId, ProcessRequest, ProcessState, Signal,
};
use sandboxer_core::port::RuntimeError;
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::usecase::{ExecError, FollowEvent, FollowMode, OutputStream};
use support::{TTL, World, chat};

fn request(id: &str, argv: &[&str]) -> ProcessRequest {
    let exec = ExecRequest::new(argv.iter().map(|a| (*a).to_owned()).collect()).unwrap();
    ProcessRequest::new(ProcessId::parse(id).unwrap(), exec)
}

/// Waits (real time, briefly) for a span the background watcher records.
async fn eventually(w: &World, name: &str) -> sandboxer_core::testing::RecordedSpan {
    for _ in 0..200 {
        if let Some(s) = w.tracer.named(name).into_iter().next() {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no span {name}");
}

#[tokio::test]
async fn a_start_is_a_span_and_the_exit_is_recorded_by_the_watcher() {
    let w = World::new();
    w.runtime.use_userland();
    let c = chat("p-start");
    let req = request("job", &["sleep", "0.2"]);
    let (started, session) = w.use_cases.start_process.execute(&c, &req).await.unwrap();
    assert!(started.created);
    assert!(started.info.is_running());
    let start = w.tracer.one(span::START_PROCESS);
    assert_eq!(start.str(key::PROCESS_ID), Some("job"));
    assert_eq!(start.str(key::RESULT), Some("created"));
    assert_eq!(
        start.str(key::SESSION_ID),
        Some(session.id.to_string().as_str())
    );
    let exited = eventually(&w, span::PROCESS_EXITED).await;
    assert!(exited.is_child_of(&start));
    assert_eq!(exited.int(key::EXIT_CODE), Some(0));
    assert_eq!(exited.str(key::RESULT), Some("exited"));

    let (again, _) = w.use_cases.start_process.execute(&c, &req).await.unwrap();
    assert!(!again.created);
    assert_eq!(
        w.tracer.named(span::START_PROCESS)[1].str(key::RESULT),
        Some("reused")
    );
}

#[tokio::test]
async fn a_follow_stream_delivers_every_byte_then_the_exit_and_holds_the_lease() {
    let w = World::new();
    let c = chat("p-follow");
    let req = request("cat", &["cat"]).keep_stdin_open(true);
    let (_, session) = w.use_cases.start_process.execute(&c, &req).await.unwrap();
    let mut follower = w
        .use_cases
        .follow_output
        .open(&c, &req.id, OutputCursor::default(), FollowMode::Follow)
        .await
        .unwrap();
    assert!(w.use_cases.guards.is_leased(&session.id));
    let write = |data: &[u8], close| sandboxer_core::domain::StdinWrite {
        offset: None,
        data: data.to_vec(),
        close,
    };
    let io = &w.use_cases.process_io;
    io.write_stdin(&c, &req.id, &write(b"one\n", false))
        .await
        .unwrap();
    match follower.next().await.unwrap().unwrap() {
        FollowEvent::Output {
            stream,
            offset,
            data,
        } => {
            assert_eq!((stream, offset), (OutputStream::Stdout, 0));
            assert_eq!(data, b"one\n");
        }
        other => panic!("not output: {other:?}"),
    }
    io.write_stdin(&c, &req.id, &write(b"two\n", true))
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(event) = follower.next().await {
        rest.push(event.unwrap());
    }
    assert!(matches!(
        &rest[..],
        [FollowEvent::Output { offset: 4, data, .. }, FollowEvent::Exited(info)]
            if data == b"two\n" && info.state.exit_code() == Some(0)
    ));
    drop(follower);
    assert!(!w.use_cases.guards.is_leased(&session.id));
    let follow = w.tracer.one(span::FOLLOW_OUTPUT);
    assert_eq!(follow.str(key::RESULT), Some("exited"));
    assert_eq!(follow.int(key::PROCESS_BYTES), Some(8));
}

#[tokio::test]
async fn a_snapshot_ends_with_a_position_and_bad_cursors_fail_at_open() {
    let w = World::new();
    let c = chat("p-snap");
    let req = request("cat", &["cat"]).keep_stdin_open(true);
    w.use_cases.start_process.execute(&c, &req).await.unwrap();
    let write = sandboxer_core::domain::StdinWrite {
        offset: Some(0),
        data: b"abc".to_vec(),
        close: false,
    };
    w.use_cases
        .process_io
        .write_stdin(&c, &req.id, &write)
        .await
        .unwrap();
    let follow = &w.use_cases.follow_output;
    let mut snap = follow
        .open(
            &c,
            &req.id,
            OutputCursor {
                stdout: 1,
                stderr: 0,
            },
            FollowMode::Snapshot,
        )
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(e) = snap.next().await {
        events.push(e.unwrap());
    }
    assert!(matches!(
        &events[..],
        [FollowEvent::Output { offset: 1, data, .. }, FollowEvent::Position { cursor, .. }]
            if data == b"bc" && cursor.stdout == 3
    ));
    let past = OutputCursor {
        stdout: 9,
        stderr: 0,
    };
    let refused = follow.open(&c, &req.id, past, FollowMode::Snapshot).await;
    assert!(matches!(
        refused,
        Err(ExecError::Runtime(RuntimeError::InvalidOffset(_)))
    ));
    let unknown = ProcessId::parse("nobody").unwrap();
    let missing = follow
        .open(&c, &unknown, OutputCursor::default(), FollowMode::Follow)
        .await;
    assert!(matches!(
        missing,
        Err(ExecError::Runtime(RuntimeError::ProcessNotFound(_)))
    ));
}

#[tokio::test]
async fn a_streamed_exec_whose_reader_leaves_is_killed() {
    let w = World::new();
    w.runtime.use_userland();
    let c = chat("p-exec");
    let exec = ExecRequest::new(vec!["sleep".into(), "30".into()]).unwrap();
    let follower = w.use_cases.follow_output.exec(&c, &exec).await.unwrap();
    let id = follower.process_id().clone();
    drop(follower);
    for _ in 0..200 {
        let (info, _) = w.use_cases.process_io.status(&c, &id).await.unwrap();
        if let ProcessState::Exited { killed, .. } = info.state {
            assert!(killed);
            let streamed = w.tracer.one(span::EXEC);
            assert_eq!(streamed.str(key::RESULT), Some("detached"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the streamed exec was not killed");
}

#[tokio::test]
async fn a_process_nobody_follows_does_not_keep_its_sandbox_from_cleanup() {
    let w = World::new();
    w.runtime.use_userland();
    let c = chat("p-clean");
    let made = w
        .use_cases
        .create
        .execute(World::declared(&c))
        .await
        .unwrap();
    assert_eq!(made.session.created_at, w.clock_now());
    let req = request("bg", &["sleep", "600"]);
    w.use_cases.start_process.execute(&c, &req).await.unwrap();
    w.clock.advance(TTL + Duration::from_secs(1));
    let report = w.use_cases.cleanup.execute().await.unwrap();
    assert_eq!(report.hibernated, 1);
    assert!(w.active().is_empty());
}

#[tokio::test]
async fn a_follower_holds_its_sandbox_through_cleanup_and_signals_reach_it() {
    let w = World::new();
    w.runtime.use_userland();
    let c = chat("p-held");
    let (a, b) = (
        request("a", &["sleep", "600"]),
        request("b", &["sleep", "600"]),
    );
    for req in [&a, &b] {
        w.use_cases.start_process.execute(&c, req).await.unwrap();
    }
    let follow = |id: ProcessId| {
        let w = &w;
        let c = c.clone();
        async move {
            w.use_cases
                .follow_output
                .open(&c, &id, OutputCursor::default(), FollowMode::Follow)
                .await
                .unwrap()
        }
    };
    let mut on_a = follow(a.id.clone()).await;
    w.use_cases
        .signal_process
        .execute(&c, &a.id, Signal::Int)
        .await
        .unwrap();
    match on_a.next().await.unwrap().unwrap() {
        FollowEvent::Exited(info) => assert_eq!(info.state.exit_code(), Some(130)),
        other => panic!("not the exit: {other:?}"),
    }
    let signal = w.tracer.one(span::SIGNAL_PROCESS);
    assert_eq!(signal.str(key::PROCESS_SIGNAL), Some("INT"));

    let on_b = follow(b.id.clone()).await;
    w.clock.advance(TTL + Duration::from_secs(1));
    let report = w.use_cases.cleanup.execute().await.unwrap();
    assert_eq!((report.hibernated, report.skipped), (0, 1));
    drop(on_b);
    let report = w.use_cases.cleanup.execute().await.unwrap();
    assert_eq!(report.hibernated, 1);
}
