//! The API through `Router::oneshot` over fake ports: routes, shapes, the
//! documented error codes, auth, limits, and the request span. Bad input
//! never reaches the runtime and harms no session.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use sandboxer_core::domain::{Policy, SandboxSpec};
use sandboxer_core::port::{RuntimeError, SpanKind};
use sandboxer_core::testing::{FakeRuntime, ManualClock, MemoryStore, RecordingTracer, RuntimeOp};
use sandboxer_core::usecase::{Ports, ReconcileSettings, Settings, UseCases};
use sandboxer_http::{ApiConfig, ApiState, router};

struct Api {
    router: axum::Router,
    runtime: Arc<FakeRuntime>,
    store: Arc<MemoryStore>,
    tracer: RecordingTracer,
}

fn api(config: ApiConfig) -> Api {
    let tracer = RecordingTracer::new();
    let runtime = Arc::new(FakeRuntime::new(Arc::new(tracer.clone())));
    let store = Arc::new(MemoryStore::new());
    let ports = Ports {
        runtime: runtime.clone(),
        store: store.clone(),
        clock: Arc::new(ManualClock::at_epoch()),
        tracer: Arc::new(tracer.clone()),
    };
    let settings = Settings {
        policy: Policy::default(),
        defaults: SandboxSpec::with_defaults("base:1"),
        foreign_create_wait: Duration::from_secs(1),
        cleanup_concurrency: 2,
        reconcile: ReconcileSettings {
            orphan_grace: Duration::from_secs(60),
            creating_timeout: Duration::from_secs(60),
        },
    };
    let state = Arc::new(ApiState {
        services: UseCases::new(ports.clone(), settings),
        config,
        tracer: ports.tracer.clone(),
        runtime: runtime.clone(),
        store: store.clone(),
        metrics: None,
    });
    Api {
        router: router(state),
        runtime,
        store,
        tracer,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Api {
    async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn send(&self, method: &str, uri: &str, body: impl Into<Body>) -> Answer {
        self.call(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(body.into())
                .unwrap(),
        )
        .await
    }
}

#[tokio::test]
async fn sandbox_lifecycle_over_http() {
    let api = api(ApiConfig::default());
    let created = api.send("PUT", "/v1/chats/web:42/sandbox", "").await;
    assert_eq!(created.status, StatusCode::CREATED);
    let s = created.json();
    assert_eq!(s["result"], "created");
    assert_eq!(s["chat_id"], "web:42");
    assert_eq!(s["status"], "running");
    assert_eq!(s["generation"], 1);
    for field in [
        "session_id",
        "container_id",
        "image",
        "created_at",
        "last_used_at",
        "expires_at",
    ] {
        assert!(s[field].is_string(), "{field} missing: {s}");
    }
    let reused = api.send("PUT", "/v1/chats/web:42/sandbox", "{}").await;
    assert_eq!(reused.status, StatusCode::OK);
    assert_eq!(reused.json()["result"], "reused");
    assert_eq!(reused.json()["session_id"], s["session_id"]);

    let replaced = api
        .send(
            "PUT",
            "/v1/chats/web:42/sandbox",
            r#"{"image":"python:3","env":{"A":"1"},"ttl_seconds":60}"#,
        )
        .await;
    assert_eq!(replaced.status, StatusCode::CREATED);
    assert_eq!(replaced.json()["result"], "replaced");
    assert_eq!(replaced.json()["replace_reason"], "spec_changed");
    assert_eq!(replaced.json()["image"], "python:3");

    let got = api
        .send("GET", "/v1/chats/web:42/sandbox", Body::empty())
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["session_id"], replaced.json()["session_id"]);

    let list = api.send("GET", "/v1/sandboxes", Body::empty()).await;
    assert_eq!(list.json()["sandboxes"].as_array().unwrap().len(), 1);

    let exec = api
        .send(
            "POST",
            "/v1/chats/web:42/exec",
            r#"{"cmd":["echo","hi"],"timeout_ms":5000}"#,
        )
        .await;
    assert_eq!(exec.status, StatusCode::OK);
    let e = exec.json();
    assert_eq!(e["exit_code"], 0);
    assert_eq!(e["stdout"], "echo hi");
    assert_eq!(e["timed_out"], false);
    assert_eq!(e["session_id"], replaced.json()["session_id"]);

    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let put = api
        .send("PUT", "/v1/chats/web:42/files/dir/blob.bin", bytes.clone())
        .await;
    assert_eq!(
        put.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    assert_eq!(put.json()["size"], 4096);
    let back = api
        .send("GET", "/v1/chats/web:42/files/dir/blob.bin", Body::empty())
        .await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(
        back.headers[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(back.body, bytes);
    let missing = api
        .send("GET", "/v1/chats/web:42/files/nope", Body::empty())
        .await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (StatusCode::NOT_FOUND, "file_not_found")
    );

    let deleted = api
        .send("DELETE", "/v1/chats/web:42/sandbox", Body::empty())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = api
        .send("DELETE", "/v1/chats/web:42/sandbox", Body::empty())
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let gone = api
        .send("GET", "/v1/chats/web:42/sandbox", Body::empty())
        .await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (StatusCode::NOT_FOUND, "no_sandbox")
    );

    let cleanup = api.send("POST", "/v1/cleanup", Body::empty()).await;
    assert_eq!(cleanup.status, StatusCode::OK);
    for field in ["expired", "removed", "failed", "orphans_removed"] {
        assert!(cleanup.json()[field].is_u64(), "{field}");
    }
}

/// (method, uri, body, status, code)
const BAD_INPUTS: &[(&str, &str, &str, u16, &str)] = &[
    ("PUT", "/v1/chats/a%20b/sandbox", "", 400, "invalid_chat_id"),
    ("PUT", "/v1/chats/a%2Fb/sandbox", "", 400, "invalid_chat_id"),
    (
        "POST",
        "/v1/chats/%C3%A9/exec",
        r#"{"cmd":["true"]}"#,
        400,
        "invalid_chat_id",
    ),
    (
        "GET",
        "/v1/chats/web:1/files/../etc/passwd",
        "",
        400,
        "invalid_path",
    ),
    (
        "GET",
        "/v1/chats/web:1/files/a/%2E%2E/%2E%2E/etc/passwd",
        "",
        400,
        "invalid_path",
    ),
    (
        "PUT",
        "/v1/chats/web:1/files//etc/passwd",
        "x",
        400,
        "invalid_path",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        "{not json",
        400,
        "invalid_json",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"ttl_seconds":"soon"}"#,
        400,
        "invalid_request",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"imag":"typo"}"#,
        400,
        "invalid_request",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"image":"has space"}"#,
        400,
        "invalid_request",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"ttl_seconds":0}"#,
        400,
        "invalid_request",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"env":{"1BAD":"x"}}"#,
        400,
        "invalid_request",
    ),
    ("POST", "/v1/chats/web:1/exec", "", 400, "invalid_json"),
    ("POST", "/v1/chats/web:1/exec", "[1,2", 400, "invalid_json"),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":[]}"#,
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":"ls -la"}"#,
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":["ls"],"timeout_ms":0}"#,
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":["ls"],"timeout_ms":99999999}"#,
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":["ls"],"workdir":"../x"}"#,
        400,
        "invalid_request",
    ),
    ("GET", "/v2/anything", "", 404, "route_not_found"),
    ("GET", "/v1/chats/web:1", "", 404, "route_not_found"),
    (
        "PATCH",
        "/v1/chats/web:1/sandbox",
        "",
        405,
        "method_not_allowed",
    ),
];

#[tokio::test]
async fn every_bad_input_gets_its_code_and_reaches_nothing() {
    let api = api(ApiConfig::default());
    // A live sandbox for another chat must come through untouched.
    let before = api.send("PUT", "/v1/chats/keeper/sandbox", "").await.json();
    let creates = api.runtime.calls(RuntimeOp::Create);
    for (method, uri, body, status, code) in BAD_INPUTS {
        let answer = api.send(method, uri, *body).await;
        assert_eq!(
            answer.status.as_u16(),
            *status,
            "{method} {uri} {body}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.code(), *code, "{method} {uri} {body}");
        assert!(
            !answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(api.runtime.calls(RuntimeOp::Create), creates);
    assert_eq!(api.runtime.calls(RuntimeOp::Exec), 0);
    assert_eq!(api.runtime.calls(RuntimeOp::Stop), 0);
    let sessions = api.store.all();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].id.to_string(),
        before["session_id"].as_str().unwrap()
    );
    assert!(sessions[0].is_active());
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let api = api(ApiConfig {
        max_json_bytes: 1024,
        max_file_bytes: 4096,
        ..ApiConfig::default()
    });
    let big_json = format!(r#"{{"cmd":["echo","{}"]}}"#, "x".repeat(2000));
    let answer = api.send("POST", "/v1/chats/c/exec", big_json).await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (413, "body_too_large")
    );
    let answer = api
        .send("PUT", "/v1/chats/c/files/big", vec![0u8; 4097])
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.code().as_str()),
        (413, "body_too_large")
    );
    // The file limit, not the JSON one, applies to uploads.
    let answer = api
        .send("PUT", "/v1/chats/c/files/ok", vec![0u8; 4096])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(api.runtime.calls(RuntimeOp::Exec), 0);
}

#[tokio::test]
async fn token_guards_v1_but_not_health() {
    let api = api(ApiConfig {
        token: Some("s3cret".into()),
        ..ApiConfig::default()
    });
    let none = api.send("PUT", "/v1/chats/c/sandbox", "").await;
    assert_eq!(
        (none.status.as_u16(), none.code().as_str()),
        (401, "unauthorized")
    );
    assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
    let wrong = api
        .call(
            Request::put("/v1/chats/c/sandbox")
                .header(header::AUTHORIZATION, "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.runtime.calls(RuntimeOp::Create), 0);
    let right = api
        .call(
            Request::put("/v1/chats/c/sandbox")
                .header(header::AUTHORIZATION, "Bearer s3cret")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(right.status, StatusCode::CREATED);
    assert_eq!(
        api.send("GET", "/healthz", Body::empty()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.send("GET", "/openapi.json", Body::empty()).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn docker_down_is_503_with_retry_after_and_timeouts_are_504() {
    let api = api(ApiConfig::default());
    api.runtime.fail_next(
        RuntimeOp::Create,
        RuntimeError::Unavailable("connect: no such file".into()),
    );
    let down = api.send("PUT", "/v1/chats/c/sandbox", "").await;
    assert_eq!(
        (down.status.as_u16(), down.code().as_str()),
        (503, "docker_unavailable")
    );
    assert_eq!(down.headers[header::RETRY_AFTER], "5");
    assert!(
        !down.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such file"),
        "internal detail leaked"
    );
    api.runtime
        .fail_next(RuntimeOp::Create, RuntimeError::Timeout("create".into()));
    let slow = api.send("PUT", "/v1/chats/c/sandbox", "").await;
    assert_eq!(
        (slow.status.as_u16(), slow.code().as_str()),
        (504, "timeout")
    );
    api.runtime
        .fail_next(RuntimeOp::Ping, RuntimeError::Unavailable("down".into()));
    let ready = api.send("GET", "/readyz", Body::empty()).await;
    assert_eq!(
        (ready.status.as_u16(), ready.code().as_str()),
        (503, "docker_unavailable")
    );
    // Back: the next call just works.
    assert_eq!(
        api.send("PUT", "/v1/chats/c/sandbox", "").await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        api.send("GET", "/readyz", Body::empty()).await.status,
        StatusCode::OK
    );
    assert!(api.store.all().iter().filter(|s| s.is_active()).count() == 1);
}

#[tokio::test]
async fn the_request_span_continues_the_caller_trace_and_parents_the_use_case() {
    let api = api(ApiConfig::default());
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer = api
        .call(
            Request::put("/v1/chats/traced/sandbox")
                .header("traceparent", caller)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let http = api.tracer.one("PUT /v1/chats/{chat_id}/sandbox");
    assert_eq!(http.kind, SpanKind::Server);
    assert_eq!(
        http.context.trace_id_hex(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(http.parent.unwrap().span_id_hex(), "00f067aa0ba902b7");
    assert_eq!(http.str("http.request.method"), Some("PUT"));
    assert_eq!(http.str("http.route"), Some("/v1/chats/{chat_id}/sandbox"));
    assert_eq!(http.int("http.response.status_code"), Some(201));
    let create = api.tracer.one("CreateSandbox.execute");
    assert!(create.is_child_of(&http));
    assert_eq!(
        answer.headers["x-trace-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(answer.headers["traceparent"], http.context.to_traceparent());

    // A failure: the HTTP span carries the status and the error class.
    api.runtime.remove_image("python:9");
    let failed = api
        .send(
            "PUT",
            "/v1/chats/traced2/sandbox",
            r#"{"image":"python:9"}"#,
        )
        .await;
    assert_eq!(
        (failed.status.as_u16(), failed.code().as_str()),
        (400, "image_not_found")
    );
    let spans = api.tracer.named("PUT /v1/chats/{chat_id}/sandbox");
    let http = spans.last().unwrap();
    assert_eq!(http.int("http.response.status_code"), Some(400));
    assert_eq!(http.error_type(), Some("image_not_found"));
    assert!(!http.is_error(), "a 4xx is not a server-side error");
    let create = api.tracer.named("CreateSandbox.execute").pop().unwrap();
    assert!(create.is_error() && create.is_child_of(http));
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let api = api(ApiConfig::default());
    let doc = api.send("GET", "/openapi.json", Body::empty()).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/chats/{chat_id}/sandbox", &["put", "get", "delete"][..]),
        ("/v1/chats/{chat_id}/exec", &["post"]),
        ("/v1/chats/{chat_id}/files/{path}", &["put", "get"]),
        ("/v1/sandboxes", &["get"]),
        ("/v1/cleanup", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
    ] {
        for m in methods {
            assert!(paths[path][m].is_object(), "{m} {path} undocumented");
        }
    }
    assert_eq!(
        json!(doc["components"]["schemas"]["ExecBody"]["required"]),
        json!(["cmd"])
    );
}
