//! Directory listings: `?list=true` on a file route, and the workspace's
//! root at `.../files?list=true`; what a caller sees and the spans.

use axum::body::Body;
use axum::http::{StatusCode, header};
use chrono::DateTime;
use serde_json::{Value, json};

use sandboxer_http::ApiConfig;

use crate::harness::{Answer, Api, api};

async fn put(api: &Api, path: &str, contents: &'static str) {
    let uri = format!("/v1/chats/web:9/files/{path}");
    let answer = api.send("PUT", &uri, contents).await;
    assert_eq!(answer.status, StatusCode::OK, "PUT {path}");
}

async fn get(api: &Api, uri: &str) -> Answer {
    api.send("GET", uri, Body::empty()).await
}

/// The entries without their times, which are checked on their own.
fn entries(listing: &Value) -> Value {
    let mut entries = listing["entries"].clone();
    for entry in entries.as_array_mut().unwrap() {
        let at = entry.as_object_mut().unwrap().remove("modified_at");
        let at = at.as_ref().and_then(Value::as_str).unwrap_or_default();
        assert!(
            at.ends_with('Z') && DateTime::parse_from_rfc3339(at).is_ok(),
            "modified_at {at:?} is not RFC 3339 in UTC"
        );
    }
    entries
}

#[tokio::test]
async fn the_workspace_and_a_directory_list_their_entries() {
    let api = api(ApiConfig::default());
    put(&api, "src/main.py", "print(1)").await;
    put(&api, "src/lib/util.py", "").await;
    put(&api, "README", "hello").await;

    let root = get(&api, "/v1/chats/web:9/files?list=true").await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.headers[header::CONTENT_TYPE], "application/json");
    let root = root.json();
    assert_eq!(root["path"], "");
    assert_eq!(
        entries(&root),
        json!([
            {"name": "README", "type": "file", "size": 5},
            {"name": "src", "type": "dir", "size": 0},
        ])
    );

    let src = get(&api, "/v1/chats/web:9/files/src?list=true").await;
    assert_eq!(src.status, StatusCode::OK);
    let src = src.json();
    assert_eq!(src["path"], "src");
    assert_eq!(
        entries(&src),
        json!([
            {"name": "lib", "type": "dir", "size": 0},
            {"name": "main.py", "type": "file", "size": 8},
        ])
    );

    // `list=false`, like no `list`, reads the file.
    let file = get(&api, "/v1/chats/web:9/files/src/main.py?list=false").await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body, b"print(1)");
}

#[tokio::test]
async fn a_missing_directory_is_404_and_a_file_400() {
    let api = api(ApiConfig::default());
    put(&api, "notes.txt", "x").await;
    let missing = get(&api, "/v1/chats/web:9/files/nope?list=true").await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (StatusCode::NOT_FOUND, "file_not_found")
    );
    let file = get(&api, "/v1/chats/web:9/files/notes.txt?list=true").await;
    assert_eq!(
        (file.status, file.code().as_str()),
        (StatusCode::BAD_REQUEST, "not_a_directory")
    );
    assert!(
        file.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("notes.txt"),
        "{}",
        file.json()
    );
}

#[tokio::test]
async fn a_listing_is_one_trace_down_to_the_runtime() {
    let api = api(ApiConfig::default());
    put(&api, "d/f", "x").await;
    let answer = get(&api, "/v1/chats/web:9/files/d?list=true").await;
    assert_eq!(answer.status, StatusCode::OK);
    let http = api.tracer.one("GET /v1/chats/{chat_id}/files/{*path}");
    let list = api.tracer.one("ListFiles.execute");
    assert!(list.is_child_of(&http));
    assert_eq!(list.str("sandbox.file.path"), Some("d"));
    assert_eq!(list.int("sandbox.files.count"), Some(1));
    let runtime = api.tracer.one("FakeSandboxRuntime.list_files");
    assert!(runtime.is_child_of(&list));

    let root = get(&api, "/v1/chats/web:9/files?list=true").await;
    assert_eq!(root.status, StatusCode::OK);
    let http = api.tracer.one("GET /v1/chats/{chat_id}/files");
    assert_eq!(http.str("http.route"), Some("/v1/chats/{chat_id}/files"));
}
