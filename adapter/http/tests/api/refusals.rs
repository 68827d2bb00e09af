//! Refused requests: each bad input gets its documented code and reaches
//! nothing; limits, the token, and a runtime that is down or slow.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use sandboxer_core::port::RuntimeError;
use sandboxer_core::testing::RuntimeOp;
use sandboxer_http::ApiConfig;

use crate::harness::api;

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
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"ttl_seconds":1.5}"#,
        400,
        "invalid_request",
    ),
    (
        "PUT",
        "/v1/chats/web:1/sandbox",
        r#"{"ttl_seconds":86401}"#,
        400,
        "invalid_request",
    ),
    ("POST", "/v1/chats/web:1/exec", "", 400, "invalid_json"),
    (
        "POST",
        "/v1/chats/web:1/exec",
        "null",
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":[""]}"#,
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/v1/chats/web:1/exec",
        r#"{"cmd":["ls"],"env":{"A":"x\u0000"}}"#,
        400,
        "invalid_request",
    ),
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
    // Listings: `list` is `true` or `false`, once; the root only lists.
    (
        "GET",
        "/v1/chats/web:1/files/d?list=yes",
        "",
        400,
        "invalid_request",
    ),
    (
        "GET",
        "/v1/chats/web:1/files/d?list=",
        "",
        400,
        "invalid_request",
    ),
    (
        "GET",
        "/v1/chats/web:1/files/d?list=true&list=true",
        "",
        400,
        "invalid_request",
    ),
    ("GET", "/v1/chats/web:1/files", "", 400, "invalid_request"),
    (
        "GET",
        "/v1/chats/web:1/files?list=false",
        "",
        400,
        "invalid_request",
    ),
    (
        "GET",
        "/v1/chats/web:1/files?list=TRUE",
        "",
        400,
        "invalid_request",
    ),
    (
        "GET",
        "/v1/chats/web:1/files/a/%2E%2E?list=true",
        "",
        400,
        "invalid_path",
    ),
    (
        "GET",
        "/v1/chats/a%20b/files?list=true",
        "",
        400,
        "invalid_chat_id",
    ),
    (
        "PUT",
        "/v1/chats/web:1/files",
        "x",
        405,
        "method_not_allowed",
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
    assert_eq!(api.runtime.calls(RuntimeOp::ListFiles), 0);
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
        (503, "runtime_unavailable")
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
        (503, "runtime_unavailable")
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
