//! Hibernation over HTTP: a hibernated chat shows as such without being
//! resumed, its next use resumes it on the same files, DELETE removes its
//! files, and what `POST .../hibernate` refuses.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::Value;

use sandboxer_core::domain::Retention;
use sandboxer_core::testing::RuntimeOp;
use sandboxer_http::ApiConfig;

use crate::harness::{Answer, Api, api, api_with};

const CHAT: &str = "/v1/chats/web:5";

async fn get(api: &Api, uri: &str) -> Answer {
    api.send("GET", uri, Body::empty()).await
}

async fn hibernate(api: &Api) -> Answer {
    api.send("POST", &format!("{CHAT}/sandbox/hibernate"), Body::empty())
        .await
}

/// A chat with `notes.txt` in its workspace, then hibernated; its
/// sandbox's answer to `GET` before.
async fn hibernated_with_a_file(api: &Api) -> Value {
    let put = api
        .send("PUT", &format!("{CHAT}/files/notes.txt"), "kept")
        .await;
    assert_eq!(put.status, StatusCode::OK);
    let running = get(api, &format!("{CHAT}/sandbox")).await.json();
    assert_eq!(running["status"], "running");
    assert!(running["workspace_id"].is_string(), "{running}");
    let slept = hibernate(api).await;
    assert_eq!(slept.status, StatusCode::NO_CONTENT, "{:?}", slept.body);
    running
}

#[tokio::test]
async fn a_hibernated_chat_shows_without_being_resumed() {
    let api = api(ApiConfig::default());
    let before = hibernated_with_a_file(&api).await;
    assert!(api.runtime.containers().is_empty(), "the container went");
    let creates = api.runtime.calls(RuntimeOp::Create);

    for _ in 0..2 {
        let shown = get(&api, &format!("{CHAT}/sandbox")).await;
        assert_eq!(shown.status, StatusCode::OK);
        let shown = shown.json();
        assert_eq!(shown["status"], "hibernated", "{shown}");
        assert_eq!(shown["chat_id"], "web:5");
        assert_eq!(shown["workspace_id"], before["workspace_id"]);
        assert_eq!(shown["session_id"], before["session_id"]);
        assert_eq!(shown["image"], before["image"]);
        for field in ["hibernated_at", "retained_until"] {
            assert!(
                shown[field].as_str().is_some_and(|t| t.ends_with('Z')),
                "{field}: {shown}"
            );
        }
        assert!(shown["retained_until"].as_str() > shown["hibernated_at"].as_str());
    }
    let listed = get(&api, "/v1/sandboxes").await.json();
    let listed = listed["sandboxes"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "hibernated");
    assert_eq!(listed[0]["workspace_id"], before["workspace_id"]);

    assert_eq!(
        api.runtime.calls(RuntimeOp::Create),
        creates,
        "nothing resumed it"
    );
    assert!(api.runtime.containers().is_empty());
    // Hibernating a hibernated chat is fine.
    assert_eq!(hibernate(&api).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_next_use_resumes_on_the_same_files() {
    let api = api(ApiConfig::default());
    let before = hibernated_with_a_file(&api).await;

    let ran = api
        .send("POST", &format!("{CHAT}/exec"), r#"{"cmd":["true"]}"#)
        .await;
    assert_eq!(ran.status, StatusCode::OK);
    assert_ne!(ran.json()["session_id"], before["session_id"]);
    let create = api.tracer.named("CreateSandbox.execute").pop().unwrap();
    assert_eq!(create.str("sandbox.result"), Some("resumed"));
    let file = get(&api, &format!("{CHAT}/files/notes.txt")).await;
    assert_eq!(
        (file.status, file.body.as_slice()),
        (StatusCode::OK, &b"kept"[..])
    );

    // Through PUT, the answer says so.
    assert_eq!(hibernate(&api).await.status, StatusCode::NO_CONTENT);
    let resumed = api.send("PUT", &format!("{CHAT}/sandbox"), "").await;
    assert_eq!(resumed.status, StatusCode::CREATED);
    let resumed = resumed.json();
    assert_eq!(resumed["result"], "resumed", "{resumed}");
    assert_eq!(resumed["status"], "running");
    assert_eq!(resumed["workspace_id"], before["workspace_id"]);
    assert!(resumed.get("replace_reason").is_none(), "{resumed}");
    let file = get(&api, &format!("{CHAT}/files/notes.txt")).await;
    assert_eq!(file.body, b"kept");
    let listed = get(&api, "/v1/sandboxes").await.json();
    assert_eq!(listed["sandboxes"][0]["status"], "running");
}

#[tokio::test]
async fn deleting_a_hibernated_chat_removes_its_files() {
    let api = api(ApiConfig::default());
    hibernated_with_a_file(&api).await;
    let deleted = api
        .send("DELETE", &format!("{CHAT}/sandbox"), Body::empty())
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = get(&api, &format!("{CHAT}/sandbox")).await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (StatusCode::NOT_FOUND, "no_sandbox")
    );
    let listed = get(&api, "/v1/sandboxes").await.json();
    assert_eq!(listed["sandboxes"], serde_json::json!([]));
    assert_eq!(
        hibernate(&api).await.code(),
        "no_sandbox",
        "nothing left to hibernate"
    );

    let fresh = api.send("PUT", &format!("{CHAT}/sandbox"), "").await;
    assert_eq!(fresh.json()["result"], "created");
    let file = get(&api, &format!("{CHAT}/files/notes.txt")).await;
    assert_eq!(file.code(), "file_not_found");
}

#[tokio::test]
async fn hibernate_refuses_what_it_cannot_do() {
    let api = api(ApiConfig::default());
    let none = hibernate(&api).await;
    assert_eq!(
        (none.status, none.code().as_str()),
        (StatusCode::NOT_FOUND, "no_sandbox")
    );
    let bad = api
        .send(
            "POST",
            "/v1/chats/no%20spaces/sandbox/hibernate",
            Body::empty(),
        )
        .await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_chat_id")
    );

    // A command running holds the sandbox: 503 busy, to retry.
    api.runtime.hold_execs();
    let router = api.router.clone();
    let exec = tokio::spawn(async move {
        use tower::ServiceExt;
        let request = axum::http::Request::post(format!("{CHAT}/exec"))
            .body(Body::from(r#"{"cmd":["true"]}"#))
            .unwrap();
        router.oneshot(request).await.unwrap().status()
    });
    while api.runtime.execs_running() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = hibernate(&api).await;
    assert_eq!(
        (busy.status, busy.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert_eq!(busy.headers[header::RETRY_AFTER], "1");
    api.runtime.release_execs();
    assert_eq!(exec.await.unwrap(), StatusCode::OK);
    assert_eq!(hibernate(&api).await.status, StatusCode::NO_CONTENT);

    // Retention 0: no hibernation at all.
    let off = api_with(
        ApiConfig::default(),
        Retention {
            period: Duration::ZERO,
            ..Retention::default()
        },
    );
    let made = off.send("PUT", &format!("{CHAT}/sandbox"), "").await;
    assert_eq!(made.status, StatusCode::CREATED);
    let refused = hibernate(&off).await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    assert_eq!(
        get(&off, &format!("{CHAT}/sandbox")).await.json()["status"],
        "running"
    );
}
