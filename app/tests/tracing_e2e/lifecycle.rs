//! A chat's sandbox over its life: the trace of the first PUT from the
//! HTTP span down to Docker, a reuse, and a replacement when the sandbox
//! passed its max lifetime or its container was removed behind our back.

use std::time::Duration;

use reqwest::StatusCode;

use sandboxer_telemetry::testing::CollectedKind;

use crate::calls::{put, text, trace_id};
use crate::support::{Options, chat, docker_lines};
use crate::traces::wait_for_trace;
use crate::{
    CREATE, DOCKER_CREATE, DOCKER_INSPECT, DOCKER_STOP, PUT_SANDBOX, assert_http, assert_ok, traced,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_new_chat_is_one_trace_from_the_http_span_to_docker_and_a_second_put_reuses() {
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-new");
    let (status, headers, created) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = trace_id(&headers);
    let trace = wait_for_trace(&collector, &id, &[PUT_SANDBOX, CREATE, DOCKER_CREATE]).await;

    let http = assert_http(&trace, PUT_SANDBOX, "/v1/chats/{chat_id}/sandbox", status);
    assert_eq!(http.parent_span_id, None, "no traceparent: a new trace");
    assert_ok(&http);
    assert_eq!(
        headers["traceparent"].to_str().unwrap(),
        format!("00-{id}-{}-01", http.span_id),
        "the response names the HTTP span"
    );
    let create = trace.child(&http, CREATE);
    assert_eq!(create.kind, CollectedKind::Internal);
    assert_ok(create);
    assert_eq!(create.str("sandbox.result"), Some("created"));
    assert_eq!(create.str("sandbox.operation"), Some("create"));
    assert_eq!(create.str("chat.id"), Some(c.as_str()));
    assert_eq!(create.str("session.id"), Some(text(&created, "session_id")));
    assert_eq!(
        create.str("container.id"),
        Some(text(&created, "container_id"))
    );
    assert_eq!(
        create.str("sandbox.expires_at"),
        Some(text(&created, "expires_at"))
    );
    assert_eq!(create.str("sandbox.replace_reason"), None);
    let docker = trace.child(create, DOCKER_CREATE);
    assert_eq!(docker.kind, CollectedKind::Client);
    assert_ok(docker);
    assert_eq!(docker.str("sandbox.operation"), Some("docker.create"));
    assert_eq!(docker.str("sandbox.result"), Some("created"));
    assert_eq!(
        docker.str("container.id"),
        Some(text(&created, "container_id"))
    );
    assert_eq!(
        docker.str("container.image.name"),
        Some(text(&created, "image"))
    );
    assert_eq!(docker.str("container.runtime"), Some("runc"));
    trace.assert_rooted_at(&http);

    // The next message of the chat: its own trace, same sandbox, looked at
    // (inspect) but not made again.
    let (status, headers, reused) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::OK, "{reused}");
    let again = trace_id(&headers);
    assert_ne!(again, id, "each request is its own trace");
    let trace = wait_for_trace(&collector, &again, &[PUT_SANDBOX, CREATE]).await;
    let http = assert_http(&trace, PUT_SANDBOX, "/v1/chats/{chat_id}/sandbox", status);
    let create = trace.child(&http, CREATE);
    assert_eq!(create.str("sandbox.result"), Some("reused"));
    assert_eq!(create.str("session.id"), Some(text(&created, "session_id")));
    assert_eq!(
        create.str("container.id"),
        Some(text(&created, "container_id"))
    );
    assert_eq!(
        create.str("sandbox.expires_at"),
        Some(text(&reused, "expires_at"))
    );
    assert_eq!(create.str("sandbox.replace_reason"), None);
    trace.child(create, DOCKER_INSPECT);
    assert!(trace.named(DOCKER_CREATE).is_empty(), "a reuse created");
    trace.assert_rooted_at(&http);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_past_max_lifetime_is_replaced_with_reason_max_lifetime() {
    let (collector, service) = traced(Options::default().arg("--max-lifetime-seconds", 2)).await;
    let c = chat("trace-expired");
    let body = r#"{"ttl_seconds":1}"#;
    let (status, _, first) = put(&service, &c, body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Nothing to wait on: the lifetime has to pass.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, headers, second) = put(&service, &c, body).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["result"], "replaced");
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[PUT_SANDBOX, CREATE, DOCKER_CREATE, DOCKER_STOP],
    )
    .await;
    let http = assert_http(&trace, PUT_SANDBOX, "/v1/chats/{chat_id}/sandbox", status);
    let create = trace.child(&http, CREATE);
    assert_ok(create);
    assert_eq!(create.str("sandbox.result"), Some("replaced"));
    assert_eq!(create.str("sandbox.replace_reason"), Some("max_lifetime"));
    assert_eq!(
        create.str("sandbox.workspace.id"),
        Some(text(&first, "workspace_id"))
    );
    assert_eq!(create.str("session.id"), Some(text(&second, "session_id")));
    assert_ne!(second["session_id"], first["session_id"]);
    assert_eq!(
        create.str("container.id"),
        Some(text(&second, "container_id"))
    );
    assert_eq!(
        create.str("sandbox.expires_at"),
        Some(text(&second, "expires_at"))
    );
    let stop = trace.child(create, DOCKER_STOP);
    assert_eq!(stop.str("container.id"), Some(text(&first, "container_id")));
    assert_eq!(stop.str("sandbox.result"), Some("stopped"));
    let made = trace.child(create, DOCKER_CREATE);
    assert_eq!(
        made.str("container.id"),
        Some(text(&second, "container_id"))
    );
    trace.assert_rooted_at(&http);
    assert_eq!(
        service.containers(),
        vec![text(&second, "container_id").to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_removed_behind_our_back_is_replaced_with_reason_container_gone() {
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-gone");
    let (status, _, first) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let old = text(&first, "container_id");
    docker_lines(&["rm", "-f", old]);
    assert!(service.containers().is_empty(), "docker rm -f failed");

    let (status, headers, second) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[PUT_SANDBOX, CREATE, DOCKER_INSPECT, DOCKER_CREATE],
    )
    .await;
    let http = assert_http(&trace, PUT_SANDBOX, "/v1/chats/{chat_id}/sandbox", status);
    let create = trace.child(&http, CREATE);
    assert_ok(create);
    assert_eq!(create.str("sandbox.result"), Some("replaced"));
    assert_eq!(create.str("sandbox.replace_reason"), Some("container_gone"));
    assert_eq!(create.str("session.id"), Some(text(&second, "session_id")));
    assert_eq!(
        create.str("container.id"),
        Some(text(&second, "container_id"))
    );
    // How it knew: the inspect of the old container.
    let inspect = trace.child(create, DOCKER_INSPECT);
    assert_eq!(inspect.str("container.id"), Some(old));
    trace.child(create, DOCKER_CREATE);
    trace.assert_rooted_at(&http);
}
