//! Commands through the agent, as the service runs them: exit codes, output,
//! stdin, environment, caps, timeouts that take the whole tree, and many at
//! once.

mod common;

use std::time::{Duration, Instant};

use common::{CALL_TIMEOUT, none_marked, spec, start, text};
use sandboxer_agent_proto::{ErrorKind, MARKER_VAR, PROTOCOL_VERSION, Reply, Request};
use serde_bytes::ByteBuf;

#[tokio::test]
async fn hello_names_the_protocol_the_version_and_the_running_count() {
    let agent = start();
    let Reply::Hello(info) = agent.call(Request::Hello).await else {
        panic!("no hello")
    };
    assert_eq!(info.protocol, PROTOCOL_VERSION);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.pid > 1);
    assert_eq!(info.running, 0);

    let mut long = spec(&["sleep", "1000"]);
    long.timeout_ms = 2_000;
    let client = agent.client.clone();
    let exec = tokio::spawn(async move { client.call(&Request::Exec(long), CALL_TIMEOUT).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Reply::Hello(info) = agent.call(Request::Hello).await else {
            panic!("no hello")
        };
        if info.running == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the exec never counted as running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Ok(Reply::Exec(result)) = exec.await.unwrap() else {
        panic!("no exec result")
    };
    assert!(result.timed_out);
}

#[tokio::test]
async fn exit_codes_are_the_commands_or_128_plus_the_signal() {
    let agent = start();
    assert_eq!(agent.run(&["true"]).await.exit_code, 0);
    assert_eq!(agent.run(&["sh", "-c", "exit 3"]).await.exit_code, 3);
    assert_eq!(
        agent.run(&["sh", "-c", "kill -9 $$"]).await.exit_code,
        128 + 9
    );
    assert_eq!(
        agent.run(&["sh", "-c", "kill -TERM $$"]).await.exit_code,
        128 + 15
    );
}

#[tokio::test]
async fn a_command_leads_its_own_session_and_is_the_oom_killers_first_pick() {
    let agent = start();
    let result = agent
        .run(&[
            "sh",
            "-c",
            "read -r pid comm state ppid pgrp sid rest < /proc/$$/stat; \
             echo $pid $pgrp $sid; cat /proc/$$/oom_score_adj",
        ])
        .await;
    let out = text(&result.stdout);
    let mut lines = out.lines();
    let ids: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[0] == ids[1] && ids[1] == ids[2],
        "pid, group, session: {ids:?}"
    );
    assert_eq!(lines.next(), Some("1000"));
}

#[tokio::test]
async fn stdout_and_stderr_are_kept_apart() {
    let agent = start();
    let result = agent.run(&["sh", "-c", "echo out; echo err >&2"]).await;
    assert_eq!(text(&result.stdout), "out\n");
    assert_eq!(text(&result.stderr), "err\n");
    assert!(!result.truncated && !result.timed_out);
    assert!(result.duration_us > 0);
}

#[tokio::test]
async fn stdin_round_trips_through_cat_and_is_dev_null_when_absent() {
    let agent = start();
    // Past a pipe's buffer both ways: feeding and reading run together.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut cat = spec(&["cat"]);
    cat.stdin = Some(ByteBuf::from(data.clone()));
    let result = agent.exec(cat).await;
    assert_eq!(result.exit_code, 0);
    assert!(
        result.stdout.as_slice() == data.as_slice(),
        "cat changed the bytes"
    );

    let result = agent.run(&["cat"]).await;
    assert_eq!((result.exit_code, result.stdout.len()), (0, 0));
}

#[tokio::test]
async fn env_and_workdir_are_the_requests_and_the_marker_is_the_agents() {
    let agent = start();
    let sub = agent.root().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut run = spec(&[
        "sh",
        "-c",
        "echo \"$FOO\"; pwd -P; echo \"$SANDBOXER_EXEC_ID\"",
    ]);
    run.env = vec![
        ("FOO".into(), "bar baz".into()),
        (MARKER_VAR.into(), "chosen-by-the-caller".into()),
    ];
    run.workdir = sub.to_str().unwrap().to_owned();
    let result = agent.exec(run.clone()).await;
    let out = text(&result.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar baz");
    assert_eq!(lines[1], sub.to_str().unwrap());
    assert!(!lines[2].is_empty() && lines[2] != "chosen-by-the-caller");
    // The agent's own environment is inherited.
    let again = agent.run(&["sh", "-c", "echo \"$PATH\""]).await;
    assert_eq!(text(&again.stdout).trim(), std::env::var("PATH").unwrap());

    let second = agent.exec(run).await;
    let second_marker = text(&second.stdout).lines().nth(2).unwrap().to_owned();
    assert_ne!(second_marker, lines[2], "markers are unique per exec");
}

#[tokio::test]
async fn ten_megabytes_of_output_are_capped_and_the_command_is_not_blocked() {
    let agent = start();
    let started = Instant::now();
    let result = agent
        .run(&["sh", "-c", "head -c 10000000 /dev/zero; echo tail >&2"])
        .await;
    assert_eq!(result.exit_code, 0);
    assert_eq!(result.stdout.len(), 1 << 20);
    assert!(result.truncated);
    assert_eq!(text(&result.stderr), "tail\n");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_timeout_kills_the_commands_whole_group() {
    let agent = start();
    let mut run = spec(&[
        "sh",
        "-c",
        "echo $SANDBOXER_EXEC_ID; sleep 1000 & sleep 1000 & wait",
    ]);
    run.timeout_ms = 300;
    let result = agent.exec(run).await;
    assert!(result.timed_out);
    assert_eq!(result.exit_code, 128 + 15, "sh dies of the TERM");
    let marker = text(&result.stdout).trim().to_owned();
    assert!(!marker.is_empty());
    assert_eq!(none_marked(&marker).await, Vec::<i32>::new());
    // The agent serves on.
    assert_eq!(agent.run(&["true"]).await.exit_code, 0);
}

#[tokio::test]
async fn a_descendant_that_left_the_group_is_swept() {
    let agent = start();
    let mut run = spec(&[
        "sh",
        "-c",
        "echo $SANDBOXER_EXEC_ID; setsid sleep 1000 & sleep 1000",
    ]);
    run.timeout_ms = 300;
    let result = agent.exec(run).await;
    assert!(result.timed_out);
    assert!(result.swept >= 1, "nothing swept: {result:?}");
    let marker = text(&result.stdout).trim().to_owned();
    assert_eq!(none_marked(&marker).await, Vec::<i32>::new());
}

#[tokio::test]
async fn a_process_ignoring_term_is_killed_after_the_grace() {
    let agent = start();
    let mut run = spec(&["sh", "-c", "trap '' TERM; sleep 1000"]);
    run.timeout_ms = 200;
    run.kill_grace_ms = 100;
    let result = agent.exec(run).await;
    assert!(result.timed_out);
    assert_eq!(result.exit_code, 128 + 9);
}

#[tokio::test]
async fn a_background_child_holding_stdout_does_not_hold_the_reply() {
    let agent = start();
    let started = Instant::now();
    let result = agent
        .run(&["sh", "-c", "sleep 60 & echo $SANDBOXER_EXEC_ID; echo done"])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited for the sleep"
    );
    let out = text(&result.stdout);
    let mut lines = out.lines();
    let marker = lines.next().unwrap().to_owned();
    assert_eq!(lines.next(), Some("done"));
    assert_eq!((result.exit_code, result.timed_out), (0, false));
    common::kill_marked(&marker);
}

#[tokio::test]
async fn a_command_that_cannot_run_exits_127_or_126_with_a_message() {
    let agent = start();
    let missing = agent.run(&["no-such-program-here"]).await;
    assert_eq!(missing.exit_code, 127);
    assert_eq!(
        text(&missing.stderr),
        "sandboxer-agent: cannot run \"no-such-program-here\": No such file or directory\n"
    );

    let script = agent.root().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let denied = agent.run(&[script.to_str().unwrap()]).await;
    assert_eq!(denied.exit_code, 126);
    assert!(text(&denied.stderr).contains("Permission denied"));

    let mut elsewhere = spec(&["true"]);
    elsewhere.workdir = "/no/such/dir".into();
    let result = agent.exec(elsewhere).await;
    assert_eq!(result.exit_code, 127);
    assert!(text(&result.stderr).contains("cannot change to \"/no/such/dir\""));

    let Reply::Error(error) = agent.call(Request::Exec(spec(&[]))).await else {
        panic!("an empty argv ran")
    };
    assert_eq!(error.kind, ErrorKind::BadRequest);
}

#[tokio::test]
async fn two_hundred_concurrent_execs_each_get_their_own_answer() {
    let agent = start();
    let calls = (0..200).map(|i| {
        let agent = &agent;
        async move {
            let n = i.to_string();
            let result = agent.run(&["sh", "-c", "echo $0; echo $0 >&2", &n]).await;
            (i, result)
        }
    });
    for (i, result) in futures::future::join_all(calls).await {
        assert_eq!(result.exit_code, 0, "exec {i}");
        assert_eq!(text(&result.stdout), format!("{i}\n"));
        assert_eq!(text(&result.stderr), format!("{i}\n"));
    }
    let Reply::Hello(info) = agent.call(Request::Hello).await else {
        panic!("no hello")
    };
    assert_eq!(info.running, 0);
}

#[tokio::test]
async fn the_session_env_reaches_every_later_command_under_the_requests() {
    let agent = start();
    let set = Request::SetEnv {
        env: vec![
            ("CHAT".into(), "warm".into()),
            ("FOO".into(), "session".into()),
        ],
    };
    assert_eq!(agent.call(set).await, Reply::Done);
    let ran = agent.run(&["sh", "-c", "echo \"$CHAT $FOO\""]).await;
    assert_eq!(text(&ran.stdout).trim(), "warm session");
    let mut run = spec(&["sh", "-c", "echo \"$CHAT $FOO\""]);
    run.env = vec![("FOO".into(), "request".into())];
    assert_eq!(text(&agent.exec(run).await.stdout).trim(), "warm request");
    // A later SetEnv replaces the whole set.
    let set = Request::SetEnv {
        env: vec![("FOO".into(), "other".into())],
    };
    assert_eq!(agent.call(set).await, Reply::Done);
    let ran = agent
        .run(&["sh", "-c", "echo \"${CHAT:-none} $FOO\""])
        .await;
    assert_eq!(text(&ran.stdout).trim(), "none other");
}
