//! The span contract (DESIGN section 5) end to end: the real `sandboxer
//! serve` exports over OTLP/gRPC to an in-test collector while it works the
//! real Docker Engine, and each test checks what an operator would look for
//! in the trace of one user action: names, kinds, parents, attributes,
//! status, and the ids that tie spans to responses, logs and metrics.

mod support;
// Only this binary uses them, so they are not in `support`'s tree.
#[path = "support/calls.rs"]
mod calls;
#[path = "support/traces.rs"]
mod traces;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use calls::{log_lines, metric_sample, put, send, start_orphan, text, trace_id};
use sandboxer_telemetry::testing::{CollectedKind, CollectedSpan, CollectedStatus, OtlpCollector};
use support::{Options, Service, chat, docker_lines};
use traces::{Trace, exporting_to, summary, wait_for, wait_for_trace};

const PUT_SANDBOX: &str = "PUT /v1/chats/{chat_id}/sandbox";
const POST_EXEC: &str = "POST /v1/chats/{chat_id}/exec";
const POST_CLEANUP: &str = "POST /v1/cleanup";
const CREATE: &str = "CreateSandbox.execute";
const EXEC: &str = "ExecInSandbox.execute";
const CLEANUP: &str = "CleanupExpiredSandboxes.execute";
const CLEANUP_SESSION: &str = "CleanupExpiredSandboxes.cleanup_session";
const RECONCILE: &str = "Reconcile.execute";
const DOCKER_CREATE: &str = "DockerSandboxRuntime.create";
const DOCKER_STOP: &str = "DockerSandboxRuntime.stop";
const DOCKER_LIST: &str = "DockerSandboxRuntime.list_active_sessions";
const DOCKER_INSPECT: &str = "DockerSandboxRuntime.inspect";
const DOCKER_EXEC: &str = "DockerSandboxRuntime.exec";
const MISSING_IMAGE: &str = "sandboxer-missing-image:nope";

/// A collector and a service exporting to it.
async fn traced(options: Options) -> (OtlpCollector, Service) {
    let collector = OtlpCollector::start_grpc().await;
    let service = Service::start(exporting_to(&collector, options)).await;
    (collector, service)
}

/// The HTTP span of a trace: SERVER, its name and route, the method and
/// the status the caller got.
fn assert_http(trace: &Trace, name: &str, route: &str, status: StatusCode) -> CollectedSpan {
    let http = trace.one(name).clone();
    let method = name.split(' ').next().unwrap();
    assert_eq!(http.kind, CollectedKind::Server, "{http:?}");
    assert_eq!(http.str("http.request.method"), Some(method), "{http:?}");
    assert_eq!(http.str("http.route"), Some(route), "{http:?}");
    assert_eq!(
        http.int("http.response.status_code"),
        Some(i64::from(status.as_u16())),
        "{http:?}"
    );
    assert_eq!(http.service_name.as_deref(), Some("sandboxer"));
    http
}

fn assert_ok(span: &CollectedSpan) {
    assert_eq!(span.status, CollectedStatus::Unset, "{span:?}");
    assert_eq!(span.str("error.type"), None, "{span:?}");
}

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
async fn an_expired_sandbox_is_replaced_with_reason_expired() {
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-expired");
    let body = r#"{"ttl_seconds":1}"#;
    let (status, _, first) = put(&service, &c, body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // Nothing to wait on: the TTL has to pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
    assert_eq!(create.str("sandbox.replace_reason"), Some("expired"));
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

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_on_demand_hangs_under_its_http_span_with_counts_and_one_child_per_session() {
    let (collector, service) = traced(Options::default()).await;
    let mut sessions = Vec::new();
    for prefix in ["trace-reap-a", "trace-reap-b"] {
        let (status, _, made) = put(&service, &chat(prefix), r#"{"ttl_seconds":1}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        sessions.push(made);
    }
    let (orphan, orphan_session) = start_orphan(&service);
    // Nothing to wait on: the TTL has to pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (status, headers, counts) = send(&service, Method::POST, "/v1/cleanup", "", &[]).await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    for (field, want) in [
        ("expired", 2),
        ("removed", 2),
        ("failed", 0),
        ("orphans_removed", 1),
    ] {
        assert_eq!(counts[field], want, "{field}: {counts}");
    }
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[POST_CLEANUP, CLEANUP, RECONCILE, DOCKER_LIST],
    )
    .await;
    let http = assert_http(&trace, POST_CLEANUP, "/v1/cleanup", status);
    let cleanup = trace.child(&http, CLEANUP);
    assert_cleanup_run(&trace, cleanup, &counts, &sessions);
    // Reconcile found the orphan and removed it.
    let reconcile = trace.child(cleanup, RECONCILE);
    assert_eq!(reconcile.int("sandbox.cleanup.orphans_removed"), Some(1));
    let list = trace.child(reconcile, DOCKER_LIST);
    assert_eq!(list.kind, CollectedKind::Client);
    assert_eq!(
        list.int("sandbox.active_sessions"),
        Some(1),
        "listed after the expired ones went: the orphan only"
    );
    let stop = trace.child(reconcile, DOCKER_STOP);
    assert_eq!(stop.str("container.id"), Some(orphan.as_str()));
    assert_eq!(stop.str("session.id"), Some(orphan_session.as_str()));
    trace.assert_rooted_at(&http);
    assert!(service.containers().is_empty(), "cleanup left containers");
}

/// A cleanup run's span: its counts as the API reported them, and one
/// `cleanup_session` per expired session, each stopping its container.
fn assert_cleanup_run(trace: &Trace, cleanup: &CollectedSpan, counts: &Value, sessions: &[Value]) {
    assert_eq!(cleanup.kind, CollectedKind::Internal);
    assert_ok(cleanup);
    assert_eq!(cleanup.str("sandbox.operation"), Some("cleanup"));
    for (key, field) in [
        ("sandbox.cleanup.expired", "expired"),
        ("sandbox.cleanup.removed", "removed"),
        ("sandbox.cleanup.failed", "failed"),
        ("sandbox.cleanup.orphans_removed", "orphans_removed"),
    ] {
        assert_eq!(
            cleanup.int(key),
            counts[field].as_i64(),
            "{key}: {cleanup:?}"
        );
    }
    let per_session = trace.children(cleanup, CLEANUP_SESSION);
    assert_eq!(
        per_session.len(),
        sessions.len(),
        "one cleanup_session per expired session:\n{}",
        summary(&trace.spans)
    );
    let seen: BTreeSet<&str> = per_session
        .iter()
        .map(|s| s.str("session.id").unwrap_or("<none>"))
        .collect();
    let expected: BTreeSet<&str> = sessions.iter().map(|s| text(s, "session_id")).collect();
    assert_eq!(seen, expected);
    for span in per_session {
        let session = sessions
            .iter()
            .find(|s| span.str("session.id") == Some(text(s, "session_id")))
            .unwrap();
        assert_ok(span);
        assert_eq!(span.str("sandbox.result"), Some("cleaned"));
        assert_eq!(span.str("sandbox.operation"), Some("cleanup_session"));
        assert_eq!(span.str("chat.id"), Some(text(session, "chat_id")));
        assert_eq!(
            span.str("container.id"),
            Some(text(session, "container_id"))
        );
        let stop = trace.child(span, DOCKER_STOP);
        assert_eq!(stop.kind, CollectedKind::Client);
        assert_eq!(stop.str("sandbox.result"), Some("stopped"));
        assert_eq!(
            stop.str("container.id"),
            Some(text(session, "container_id"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_background_cleanup_run_is_a_trace_of_its_own() {
    let (collector, service) =
        traced(Options::default().arg("--cleanup-interval-seconds", 1)).await;
    let (status, headers, made) = put(&service, &chat("trace-bg"), r#"{"ttl_seconds":1}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let put_trace = trace_id(&headers);

    let reaping = wait_for(&collector, "a cleanup run that reaped", |spans| {
        spans
            .iter()
            .find(|s| s.name == CLEANUP && s.int("sandbox.cleanup.expired") == Some(1))
            .cloned()
    })
    .await;
    assert_eq!(
        reaping.parent_span_id, None,
        "a background run is a root span"
    );
    assert_ne!(reaping.trace_id, put_trace);
    let trace = wait_for_trace(
        &collector,
        &reaping.trace_id,
        &[
            CLEANUP,
            CLEANUP_SESSION,
            DOCKER_STOP,
            RECONCILE,
            DOCKER_LIST,
        ],
    )
    .await;
    let counts = json!({"expired": 1, "removed": 1, "failed": 0, "orphans_removed": 0});
    assert_cleanup_run(&trace, trace.one(CLEANUP), &counts, &[made]);
    let reconcile = trace.child(&reaping, RECONCILE);
    trace.child(reconcile, DOCKER_LIST);
    trace.assert_rooted_at(&reaping);

    // Later runs (nothing to do) are traces of their own too.
    let runs = wait_for(&collector, "two more cleanup runs", |spans| {
        let runs: Vec<CollectedSpan> = spans
            .iter()
            .filter(|s| s.name == CLEANUP)
            .cloned()
            .collect();
        let later = runs.iter().filter(|s| s.span_id != reaping.span_id).count();
        (later >= 2).then_some(runs)
    })
    .await;
    let traces: BTreeSet<&str> = runs.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(
        traces.len(),
        runs.len(),
        "runs share a trace:\n{}",
        summary(&runs)
    );
    for run in &runs {
        assert_eq!(run.parent_span_id, None, "{run:?}");
    }
    assert!(!traces.contains(put_trace.as_str()));
}

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

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_fails_the_spans_with_image_not_found_and_the_metric_says_the_same() {
    assert!(
        docker_lines(&["images", "-q", MISSING_IMAGE]).is_empty(),
        "{MISSING_IMAGE} exists on this machine; remove it (docker rmi) for this test"
    );
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-missing");
    let body = format!(r#"{{"image":"{MISSING_IMAGE}"}}"#);
    let (status, headers, answer) = put(&service, &c, &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("image_not_found")),
        "{answer}"
    );
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[PUT_SANDBOX, CREATE, DOCKER_CREATE],
    )
    .await;
    let http = assert_http(&trace, PUT_SANDBOX, "/v1/chats/{chat_id}/sandbox", status);
    assert_eq!(http.str("error.type"), Some("image_not_found"));
    assert_eq!(
        http.status,
        CollectedStatus::Unset,
        "a 4xx is the caller's mistake, not a server error"
    );
    let create = trace.child(&http, CREATE);
    let docker = trace.child(create, DOCKER_CREATE);
    for span in [create, docker] {
        assert_eq!(span.str("error.type"), Some("image_not_found"), "{span:?}");
        assert_eq!(span.str("sandbox.result"), Some("failed"), "{span:?}");
        match &span.status {
            CollectedStatus::Error(why) => assert!(why.contains(MISSING_IMAGE), "{why}"),
            other => panic!("{}: status {other:?}, want Error", span.name),
        }
    }
    assert_eq!(create.str("chat.id"), Some(c.as_str()));
    assert_eq!(docker.str("container.image.name"), Some(MISSING_IMAGE));
    trace.assert_rooted_at(&http);
    assert!(
        service.containers().is_empty(),
        "a failed create left a container"
    );

    // The metric carries the spans' own error.type values.
    let (status, _, bytes) = service.raw(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(bytes).unwrap();
    for span in [create, docker] {
        let labels = [
            ("operation", span.name.as_str()),
            ("error_type", span.str("error.type").unwrap()),
        ];
        let count = metric_sample(&metrics, "sandboxer_failures_total", &labels);
        assert!(
            count.is_some_and(|n| n >= 1.0),
            "no sandboxer_failures_total{labels:?} in:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callers_traceparent_is_the_parent_of_the_http_span() {
    let (collector, service) = traced(Options::default()).await;
    let caller_trace = uuid::Uuid::now_v7().simple().to_string();
    let caller_span = uuid::Uuid::now_v7().simple().to_string()[16..].to_owned();
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let c = chat("trace-parent");
    let (status, headers, made) = send(
        &service,
        Method::PUT,
        &format!("/v1/chats/{c}/sandbox"),
        "",
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        trace_id(&headers),
        caller_trace,
        "x-trace-id is the caller's"
    );
    let trace = wait_for_trace(&collector, &caller_trace, &[PUT_SANDBOX, CREATE]).await;
    let http = trace.one(PUT_SANDBOX);
    assert_eq!(http.trace_id, caller_trace);
    assert_eq!(http.parent_span_id.as_deref(), Some(caller_span.as_str()));
    assert_ne!(http.span_id, caller_span);
    assert_eq!(
        headers["traceparent"].to_str().unwrap(),
        format!("00-{caller_trace}-{}-01", http.span_id)
    );
    trace.child(http, CREATE);
    trace.assert_rooted_at(http);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_nothing_is_exported_and_nothing_dials_out() {
    // The default OTLP gRPC port, where a wrongly enabled exporter would go.
    let default_port = std::net::TcpListener::bind("127.0.0.1:4317").unwrap_or_else(|e| {
        panic!(
            "127.0.0.1:4317 (the default OTLP port) cannot be bound ({e}): this test needs it \
             free to prove the service does not dial it; stop whatever listens there"
        )
    });
    default_port.set_nonblocking(true).unwrap();
    // localhost may resolve to ::1 first; watch it too where IPv6 is there.
    let default_port_v6 = match std::net::TcpListener::bind("[::1]:4317") {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            panic!("[::1]:4317 (the default OTLP port) is taken: stop whatever listens there")
        }
        Err(_) => None,
    };
    if let Some(l) = &default_port_v6 {
        l.set_nonblocking(true).unwrap();
    }
    let collector = OtlpCollector::start_grpc().await;
    // The same short batch delay as the traced runs: an exporter that was on
    // by mistake would send within 100 ms.
    let mut service = Service::start(Options::default().env("OTEL_BSP_SCHEDULE_DELAY", 100)).await;

    let c = chat("untraced");
    let (status, headers, _) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        headers.get("x-trace-id").is_none() && headers.get("traceparent").is_none(),
        "tracing is off, yet the response names a trace: {headers:?}"
    );
    assert_eq!(put(&service, &c, "").await.0, StatusCode::OK);
    let exec = r#"{"cmd":["true"]}"#;
    let path = format!("/v1/chats/{c}/exec");
    assert_eq!(
        send(&service, Method::POST, &path, exec, &[]).await.0,
        StatusCode::OK
    );
    let missing = format!(r#"{{"image":"{MISSING_IMAGE}"}}"#);
    assert_eq!(
        put(&service, &chat("untraced"), &missing).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&service, Method::POST, "/v1/cleanup", "", &[]).await.0,
        StatusCode::OK
    );
    // A clean shutdown flushes whatever an exporter would hold: once the
    // process is gone, anything it was going to send has been sent.
    service.terminate().await;

    assert_eq!(collector.connections(), 0);
    assert_eq!(collector.export_requests(), 0);
    assert!(collector.spans().is_empty());
    for listener in std::iter::once(&default_port).chain(default_port_v6.as_ref()) {
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!(
                "{} was dialled from {from} with tracing off",
                listener.local_addr().unwrap()
            ),
            Err(e) => panic!("accept on the default OTLP port: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_of_a_request_carry_its_trace_id() {
    let (collector, service) = traced(Options::default().arg("--log-format", "json")).await;
    let c = chat("trace-log");
    let (status, headers, made) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = trace_id(&headers);
    let trace = wait_for_trace(&collector, &id, &[CREATE]).await;
    let create = trace.one(CREATE);
    let line = log_lines(&service, "sandbox created")
        .into_iter()
        .find(|l| l["chat.id"] == c.as_str())
        .unwrap_or_else(|| panic!("no `sandbox created` line for {c}:\n{}", service.log()));
    assert_eq!(line["trace_id"], id.as_str(), "{line}");
    assert_eq!(line["span_id"], create.span_id.as_str(), "{line}");
    assert_eq!(line["session.id"], made["session_id"], "{line}");
    assert_eq!(line["level"], "INFO", "{line}");

    // The next request's line carries the next request's trace.
    let (status, headers, _) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::OK);
    let next = trace_id(&headers);
    assert_ne!(next, id);
    let line = log_lines(&service, "sandbox reused")
        .into_iter()
        .find(|l| l["chat.id"] == c.as_str())
        .unwrap_or_else(|| panic!("no `sandbox reused` line for {c}:\n{}", service.log()));
    assert_eq!(line["trace_id"], next.as_str(), "{line}");
}
