//! Bad input over the wire, and Docker going away: each gets its documented
//! status and JSON error, nothing reaches Docker, no sandbox or row is
//! harmed, and the service recovers by itself.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sandboxer_docker::testing::DockerProxy;
use support::{Options, Service, chat};

/// Sends `request` as written (no client-side path normalisation) and
/// returns the status and the JSON body.
async fn raw_http(service: &Service, request: &str) -> (u16, Value) {
    let addr = service.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_gets_its_error_and_harms_nothing() {
    let service = Service::start(
        Options::default()
            .arg("--token", "t0ken")
            .arg("--max-file-bytes", 1024),
    )
    .await;
    let auth = [("authorization", "Bearer t0ken")];
    let keeper = chat("keeper");
    let (status, _, body) = service
        .raw(
            Method::PUT,
            &format!("/v1/chats/{keeper}/sandbox"),
            None,
            &auth,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let kept: Value = serde_json::from_slice(&body).unwrap();
    let containers = service.containers();

    type Case<'a> = (
        Method,
        String,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        u16,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            Method::PUT,
            "/v1/chats/a%20b/sandbox".into(),
            None,
            &auth,
            400,
            "invalid_chat_id",
        ),
        (
            Method::PUT,
            format!("/v1/chats/{}/sandbox", "x".repeat(129)),
            None,
            &auth,
            400,
            "invalid_chat_id",
        ),
        (
            Method::POST,
            "/v1/chats/%3Cscript%3E/exec".into(),
            Some(r#"{"cmd":["ls"]}"#),
            &auth,
            400,
            "invalid_chat_id",
        ),
        (
            Method::PUT,
            format!("/v1/chats/{keeper}/sandbox"),
            Some("{\"image\":"),
            &auth,
            400,
            "invalid_json",
        ),
        (
            Method::PUT,
            format!("/v1/chats/{keeper}/sandbox"),
            Some(r#"{"ttl_seconds":"long"}"#),
            &auth,
            400,
            "invalid_request",
        ),
        (
            Method::PUT,
            format!("/v1/chats/{keeper}/sandbox"),
            Some(r#"{"unknown":1}"#),
            &auth,
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            format!("/v1/chats/{keeper}/exec"),
            Some(r#"{"cmd":"rm -rf /"}"#),
            &auth,
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            format!("/v1/chats/{keeper}/exec"),
            Some(r#"{"cmd":[]}"#),
            &auth,
            400,
            "invalid_request",
        ),
        // A caller's image name that is no reference: the caller's 400.
        (
            Method::PUT,
            format!("/v1/chats/{}/sandbox", chat("bad-image")),
            Some(r#"{"image":"Not-Lowercase:1"}"#),
            &auth,
            400,
            "invalid_request",
        ),
        (
            Method::POST,
            format!("/v1/chats/{keeper}/exec"),
            Some("[1,2"),
            &auth,
            400,
            "invalid_json",
        ),
        (
            Method::PUT,
            format!("/v1/chats/{keeper}/files/big.bin"),
            Some(&"x".repeat(1025)),
            &auth,
            413,
            "body_too_large",
        ),
        (
            Method::GET,
            "/v1/nothing/here".into(),
            None,
            &auth,
            404,
            "route_not_found",
        ),
        (
            Method::DELETE,
            format!("/v1/chats/{keeper}/sandbox"),
            None,
            &[],
            401,
            "unauthorized",
        ),
        (
            Method::DELETE,
            format!("/v1/chats/{keeper}/sandbox"),
            None,
            &[("authorization", "Bearer wrong")],
            401,
            "unauthorized",
        ),
        (
            Method::POST,
            format!("/v1/chats/{keeper}/exec"),
            Some(r#"{"cmd":["rm","-rf","/workspace"]}"#),
            &[],
            401,
            "unauthorized",
        ),
    ];
    for (method, path, body, headers, status, expected) in cases {
        let (got, _, bytes) = service
            .raw(
                method.clone(),
                path,
                body.map(|b| b.as_bytes().to_vec()),
                headers,
            )
            .await;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(
            (got.as_u16(), code(&json)),
            (*status, *expected),
            "{method} {path} {body:?}: {json}"
        );
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Traversal and absolute paths, sent exactly as written.
    for path in [
        "../etc/passwd",
        "a/../../etc/shadow",
        "%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
    ] {
        for method in ["GET", "PUT"] {
            let request = format!(
                "{method} /v1/chats/{keeper}/files/{path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
            );
            let (status, body) = raw_http(&service, &request).await;
            assert_eq!(
                (status, code(&body)),
                (400, "invalid_path"),
                "{method} {path}: {body}"
            );
        }
    }

    // Nothing reached Docker and the keeper is untouched.
    assert_eq!(service.containers(), containers);
    let (status, _, body) = service
        .raw(
            Method::GET,
            &format!("/v1/chats/{keeper}/sandbox"),
            None,
            &auth,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let now: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(now["session_id"], kept["session_id"]);
    assert_eq!(now["status"], "running");
    let (status, _, body) = service
        .raw(
            Method::POST,
            &format!("/v1/chats/{keeper}/exec"),
            Some(br#"{"cmd":["ls","/workspace"]}"#.to_vec()),
            &auth,
        )
        .await;
    let ran: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, ran["exit_code"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{ran}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_runtime_is_the_operators_500_with_the_detail_only_in_the_log() {
    let nosuch = format!("sandboxer-test-nosuch-{}", uuid::Uuid::now_v7().simple());
    let service = Service::start(Options::default().arg("--runtime", &nosuch)).await;
    let (status, body) = service.put_sandbox(&chat("no-runtime"), "").await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (500, "runtime_error"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.contains(&nosuch),
        "Docker's text leaked: {message}"
    );
    assert!(
        service.log().contains(&nosuch),
        "the log lacks the detail:\n{}",
        service.log()
    );
    assert!(service.containers().is_empty());
    assert!(service.volumes().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_away_is_503_and_the_service_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = DockerProxy::start(&dir.path().join("docker.sock"));
    let service = Service::start(
        Options::default()
            .env("DOCKER_HOST", proxy.docker_host())
            .arg("--docker-timeout-seconds", 5),
    )
    .await;
    let c = chat("away");
    let (status, before) = service.put_sandbox(&c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{before}");

    proxy.cut();
    let other = chat("while-away");
    for (method, path, body) in [
        (Method::PUT, format!("/v1/chats/{other}/sandbox"), None),
        (Method::PUT, format!("/v1/chats/{c}/sandbox"), None),
        (
            Method::POST,
            format!("/v1/chats/{c}/exec"),
            Some(br#"{"cmd":["true"]}"#.to_vec()),
        ),
    ] {
        let started = Instant::now();
        let (status, headers, bytes) = service.raw(method.clone(), &path, body, &[]).await;
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(
            (status.as_u16(), code(&json)),
            (503, "runtime_unavailable"),
            "{method} {path}: {json}"
        );
        assert!(headers.contains_key("retry-after"));
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "a request hung {:?}",
            started.elapsed()
        );
    }
    let (status, ready) = service.call(Method::GET, "/readyz", None).await;
    assert_eq!(
        (status.as_u16(), code(&ready)),
        (503, "runtime_unavailable")
    );
    assert_eq!(
        service.call(Method::GET, "/healthz", None).await.0,
        StatusCode::OK
    );

    proxy.restore();
    let (status, after) = service.put_sandbox(&c, "").await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(
        after["session_id"], before["session_id"],
        "the session was lost while Docker was away"
    );
    assert_eq!(
        service.call(Method::GET, "/readyz", None).await.0,
        StatusCode::OK
    );
    let (status, ran) = service.exec(&other, json!({"cmd": ["echo", "back"]})).await;
    assert_eq!(
        (status, ran["stdout"].as_str()),
        (StatusCode::OK, Some("back\n")),
        "{ran}"
    );
}
