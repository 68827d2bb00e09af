//! Live processes in traces: a start is a use-case span with
//! `sandbox.process.id` over the Docker adapter's start; the process's end
//! is a `StartProcess.exited` span under it with the exit code, exported
//! when the process ends; a follow stream is one span, ended with the
//! stream; a kill is a span of its own.

use reqwest::{Method, StatusCode};

use sandboxer_telemetry::testing::CollectedKind;

use crate::calls::{send, trace_id};
use crate::support::{Options, chat};
use crate::traces::wait_for_trace;
use crate::{assert_http, assert_ok, traced};

const POST_PROCESS: &str = "POST /v1/chats/{chat_id}/processes";
const GET_OUTPUT: &str = "GET /v1/chats/{chat_id}/processes/{process_id}/output";
const DELETE_PROCESS: &str = "DELETE /v1/chats/{chat_id}/processes/{process_id}";
const START: &str = "StartProcess.execute";
const EXITED: &str = "StartProcess.exited";
const FOLLOW: &str = "FollowProcessOutput.execute";
const KILL: &str = "KillProcess.execute";
const DOCKER_START: &str = "DockerSandboxRuntime.start_process";
const DOCKER_KILL: &str = "DockerSandboxRuntime.kill_process";

#[tokio::test(flavor = "multi_thread")]
async fn a_process_start_its_exit_its_follow_stream_and_a_kill_are_spans() {
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-proc");
    let path = format!("/v1/chats/{c}/processes");
    let body = r#"{"cmd":["sh","-c","sleep 1; echo done; exit 4"],"process_id":"job"}"#;
    let (status, headers, started) = send(&service, Method::POST, &path, body, &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");

    // Following it to its end takes a second: meanwhile the exit is
    // recorded by the service's watcher, in the start's trace.
    let (status, follow_headers, _) = send(
        &service,
        Method::GET,
        &format!("{path}/job/output?follow=true"),
        "",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[POST_PROCESS, START, DOCKER_START, EXITED],
    )
    .await;
    let http = assert_http(
        &trace,
        POST_PROCESS,
        "/v1/chats/{chat_id}/processes",
        StatusCode::CREATED,
    );
    let start = trace.child(&http, START);
    assert_eq!(start.kind, CollectedKind::Internal);
    assert_ok(start);
    assert_eq!(start.str("sandbox.process.id"), Some("job"));
    assert_eq!(start.str("sandbox.result"), Some("created"));
    assert_eq!(start.str("sandbox.operation"), Some("start_process"));
    assert_eq!(start.str("session.id"), started["session_id"].as_str());
    let docker = trace.child(start, DOCKER_START);
    assert_eq!(docker.kind, CollectedKind::Client);
    assert_eq!(docker.str("sandbox.process.id"), Some("job"));
    let exited = trace.child(start, EXITED);
    assert_eq!(exited.int("process.exit.code"), Some(4));
    assert_eq!(exited.str("sandbox.result"), Some("exited"));

    let trace = wait_for_trace(
        &collector,
        &trace_id(&follow_headers),
        &[GET_OUTPUT, FOLLOW],
    )
    .await;
    let http = trace.one(GET_OUTPUT);
    let follow = trace.child(http, FOLLOW);
    assert_ok(follow);
    assert_eq!(follow.str("sandbox.result"), Some("exited"));
    assert_eq!(follow.int("process.exit.code"), Some(4));
    assert_eq!(follow.int("sandbox.process.output_bytes"), Some(5));

    let sleeper = r#"{"cmd":["sleep","1000"],"process_id":"sleeper"}"#;
    send(&service, Method::POST, &path, sleeper, &[]).await;
    let (status, headers, _) = send(
        &service,
        Method::DELETE,
        &format!("{path}/sleeper"),
        "",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[DELETE_PROCESS, KILL, DOCKER_KILL],
    )
    .await;
    let kill = trace.child(trace.one(DELETE_PROCESS), KILL);
    assert_ok(kill);
    assert_eq!(kill.int("process.exit.code"), Some(137));
    trace.child(kill, DOCKER_KILL);
}
