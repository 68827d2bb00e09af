//! An exec: its span under the HTTP span, the sandbox it made or reused,
//! and the Docker exec with the exit code and whether it timed out.

use reqwest::{Method, StatusCode};

use sandboxer_telemetry::testing::CollectedKind;

use crate::calls::{send, text, trace_id};
use crate::support::{Options, chat};
use crate::traces::wait_for_trace;
use crate::{CREATE, DOCKER_CREATE, DOCKER_EXEC, EXEC, POST_EXEC, assert_http, assert_ok, traced};

#[tokio::test(flavor = "multi_thread")]
async fn exec_traces_its_sandbox_and_the_docker_exec_with_exit_code_and_timeout() {
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-exec");
    let path = format!("/v1/chats/{c}/exec");
    let cmd = r#"{"cmd":["sh","-c","echo hi; exit 3"]}"#;
    let (status, headers, ran) = send(&service, Method::POST, &path, cmd, &[]).await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["exit_code"], 3);
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[POST_EXEC, EXEC, CREATE, DOCKER_CREATE, DOCKER_EXEC],
    )
    .await;
    let http = assert_http(&trace, POST_EXEC, "/v1/chats/{chat_id}/exec", status);
    let exec = trace.child(&http, EXEC);
    assert_eq!(exec.kind, CollectedKind::Internal);
    assert_ok(exec);
    assert_eq!(exec.str("sandbox.operation"), Some("exec"));
    assert_eq!(exec.str("chat.id"), Some(c.as_str()));
    assert_eq!(exec.str("session.id"), Some(text(&ran, "session_id")));
    assert_eq!(exec.int("process.exit.code"), Some(3));
    assert_eq!(exec.bool("sandbox.exec.timed_out"), Some(false));
    let create = trace.child(exec, CREATE);
    assert_eq!(create.str("sandbox.result"), Some("created"));
    trace.child(create, DOCKER_CREATE);
    let docker = trace.child(exec, DOCKER_EXEC);
    assert_eq!(docker.kind, CollectedKind::Client);
    assert_eq!(docker.int("process.exit.code"), Some(3));
    assert_eq!(docker.str("container.id"), create.str("container.id"));
    trace.assert_rooted_at(&http);

    // A command that outlives its timeout: the same spans say so.
    let slow = r#"{"cmd":["sleep","30"],"timeout_ms":500}"#;
    let (status, headers, ran) = send(&service, Method::POST, &path, slow, &[]).await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["timed_out"], true);
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[POST_EXEC, EXEC, CREATE, DOCKER_EXEC],
    )
    .await;
    let http = trace.one(POST_EXEC);
    let exec = trace.child(http, EXEC);
    assert_eq!(exec.bool("sandbox.exec.timed_out"), Some(true));
    assert_eq!(exec.int("process.exit.code"), ran["exit_code"].as_i64());
    assert_eq!(
        trace.child(exec, CREATE).str("sandbox.result"),
        Some("reused")
    );
    assert_eq!(
        trace
            .child(exec, DOCKER_EXEC)
            .bool("sandbox.exec.timed_out"),
        Some(true)
    );
}
