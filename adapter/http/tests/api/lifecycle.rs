//! What a caller sees on the happy paths, and the request span.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use sandboxer_core::port::SpanKind;
use sandboxer_http::ApiConfig;

use crate::harness::api;

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
        "workspace_id",
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
    for field in [
        "expired",
        "hibernated",
        "removed",
        "workspaces_deleted",
        "failed",
        "orphans_removed",
    ] {
        assert!(cleanup.json()[field].is_u64(), "{field}");
    }
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

/// What the document allows and the server once refused (or the other way
/// round): a `null` body, a file with no body, whole numbers written `60.0`.
#[tokio::test]
async fn what_the_document_allows_is_accepted() {
    let api = api(ApiConfig::default());
    let created = api.send("PUT", "/v1/chats/web:7/sandbox", "null").await;
    assert_eq!(created.status, StatusCode::CREATED);
    let ttl = api
        .send("PUT", "/v1/chats/web:7/sandbox", r#"{"ttl_seconds":60.0}"#)
        .await;
    assert_eq!(
        ttl.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&ttl.body)
    );
    let exec = api
        .send(
            "POST",
            "/v1/chats/web:7/exec",
            r#"{"cmd":["true"],"timeout_ms":5000.0}"#,
        )
        .await;
    assert_eq!(exec.status, StatusCode::OK);

    let empty = api
        .send("PUT", "/v1/chats/web:7/files/empty.txt", Body::empty())
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.json()["size"], 0);
    let back = api
        .send("GET", "/v1/chats/web:7/files/empty.txt", Body::empty())
        .await;
    assert_eq!((back.status, back.body.len()), (StatusCode::OK, 0));
}
