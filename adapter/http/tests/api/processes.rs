//! The live-process calls over fake ports: start (201, then 200, 409 for
//! another body), list and status, a snapshot of the output as NDJSON and as
//! SSE, stdin with offsets, signals, kill, and the refusals (unknown id,
//! bad offsets, bad signal, the limit, an expired cursor).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use super::harness::{Answer, api};
use sandboxer_http::ApiConfig;

const P: &str = "/v1/chats/web:1/processes";

fn lines(answer: &Answer) -> Vec<Value> {
    String::from_utf8_lossy(&answer.body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn start_is_idempotent_by_id_and_another_body_is_a_conflict() {
    let a = api(ApiConfig::default());
    let body = json!({"cmd": ["echo", "hi"], "process_id": "job-1"}).to_string();
    let first = a.send("POST", P, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.json());
    let view = first.json();
    assert_eq!(view["process_id"], "job-1");
    assert_eq!(view["created"], true);
    let again = a.send("POST", P, body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["created"], false);
    assert_eq!(again.json()["pid"], view["pid"]);
    let other = json!({"cmd": ["echo", "other"], "process_id": "job-1"}).to_string();
    let conflict = a.send("POST", P, other).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.code(), "conflict");

    let listed = a.send("GET", P, Body::empty()).await.json();
    assert_eq!(listed["processes"][0]["process_id"], "job-1");
    assert_eq!(listed["processes"][0]["status"], "exited");
    assert_eq!(listed["processes"][0]["exit_code"], 0);
    let one = a.send("GET", &format!("{P}/job-1"), Body::empty()).await;
    assert_eq!(one.json()["stdout"]["end"], 7);
    let missing = a.send("GET", &format!("{P}/nope"), Body::empty()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "process_not_found");
}

#[tokio::test]
async fn output_is_ndjson_from_offsets_with_the_exit_last() {
    let a = api(ApiConfig::default());
    let body = json!({"cmd": ["echo", "hello"], "process_id": "e"}).to_string();
    a.send("POST", P, body).await;
    let all = a.send("GET", &format!("{P}/e/output"), Body::empty()).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.headers["content-type"], "application/x-ndjson");
    let events = lines(&all);
    assert_eq!(
        events[0],
        json!({"stream": "stdout", "offset": 0, "data": "echo hello", "encoding": "utf-8"})
    );
    assert_eq!(events[1]["status"], "exited");
    assert_eq!(events[1]["exit_code"], 0);
    assert_eq!(events[1]["stdout_offset"], 10);
    let tail = a
        .send(
            "GET",
            &format!("{P}/e/output?stdout_offset=5&encoding=base64&follow=true"),
            Body::empty(),
        )
        .await;
    let events = lines(&tail);
    assert_eq!(events[0]["data"], "aGVsbG8=");
    assert_eq!(events[0]["encoding"], "base64");
    assert_eq!(events[0]["offset"], 5);
    for bad in [
        "stdout_offset=-1",
        "stdout_offset=x",
        "follow=yes",
        "encoding=hex",
        "stdout_offset=1&stdout_offset=2",
    ] {
        let refused = a
            .send("GET", &format!("{P}/e/output?{bad}"), Body::empty())
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(refused.code(), "invalid_request", "{bad}");
    }
    let past = a
        .send(
            "GET",
            &format!("{P}/e/output?stdout_offset=11"),
            Body::empty(),
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sse_names_its_events_and_ids_resume() {
    let a = api(ApiConfig::default());
    a.send(
        "POST",
        P,
        json!({"cmd": ["echo", "x"], "process_id": "s"}).to_string(),
    )
    .await;
    let sse = a
        .call(
            Request::get(format!("{P}/s/output"))
                .header("accept", "text/event-stream")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let text = String::from_utf8_lossy(&sse.body).into_owned();
    assert!(text.contains("event: output\n"), "{text}");
    assert!(text.contains("id: 6.0\n"), "{text}");
    assert!(text.contains("event: exit\n"), "{text}");
    let resumed = a
        .call(
            Request::get(format!("{P}/s/output"))
                .header("accept", "text/event-stream")
                .header("last-event-id", "6.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let text = String::from_utf8_lossy(&resumed.body).into_owned();
    assert!(!text.contains("event: output"), "{text}");
    assert!(text.contains("event: exit"), "{text}");
}

#[tokio::test]
async fn stdin_signals_and_kill() {
    let a = api(ApiConfig::default());
    let start = json!({"cmd": ["cat"], "process_id": "c", "keep_stdin_open": true});
    a.send("POST", P, start.to_string()).await;
    let wrote = a
        .send("POST", &format!("{P}/c/stdin?offset=0"), "abc")
        .await;
    assert_eq!(wrote.json(), json!({"offset": 3, "open": true}));
    let retried = a
        .send("POST", &format!("{P}/c/stdin?offset=0"), "abc")
        .await;
    assert_eq!(retried.json()["offset"], 3);
    let gap = a.send("POST", &format!("{P}/c/stdin?offset=9"), "z").await;
    assert_eq!(gap.status, StatusCode::BAD_REQUEST);
    let closed = a
        .send("POST", &format!("{P}/c/stdin?offset=3&close=true"), "d")
        .await;
    assert_eq!(closed.json(), json!({"offset": 4, "open": false}));
    let after = a.send("POST", &format!("{P}/c/stdin"), "e").await;
    assert_eq!(after.status, StatusCode::CONFLICT);

    a.runtime.use_userland();
    a.send(
        "POST",
        P,
        json!({"cmd": ["sleep", "600"], "process_id": "s"}).to_string(),
    )
    .await;
    let bad = a
        .send(
            "POST",
            &format!("{P}/s/signal"),
            json!({"signal": "NOPE"}).to_string(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let term = a
        .send(
            "POST",
            &format!("{P}/s/signal"),
            json!({"signal": "SIGTERM"}).to_string(),
        )
        .await;
    assert_eq!(term.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.send("GET", &format!("{P}/s"), Body::empty()).await.json()["exit_code"],
        143
    );
    a.send(
        "POST",
        P,
        json!({"cmd": ["sleep", "600"], "process_id": "k"}).to_string(),
    )
    .await;
    let killed = a.send("DELETE", &format!("{P}/k"), Body::empty()).await;
    assert_eq!(killed.status, StatusCode::NO_CONTENT);
    let view = a.send("GET", &format!("{P}/k"), Body::empty()).await.json();
    assert_eq!(
        (view["killed"].clone(), view["exit_code"].clone()),
        (json!(true), json!(137))
    );
    let gone = a.send("DELETE", &format!("{P}/nope"), Body::empty()).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_starts_are_refused_before_the_runtime() {
    let a = api(ApiConfig::default());
    for body in [
        json!({"cmd": []}),
        json!({"cmd": ["x"], "process_id": "a b"}),
        json!({"cmd": ["x"], "timeout_ms": 0}),
        json!({"cmd": ["x"], "timeout_ms": 86_400_001u64}),
        json!({"cmd": ["x"], "pty": {"cols": 0, "rows": 24}}),
        json!({"cmd": ["x"], "unknown": 1}),
    ] {
        let refused = a.send("POST", P, body.to_string()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(a.runtime.containers().len(), 0);
}

#[tokio::test]
async fn past_the_limit_is_429_and_an_old_cursor_410_with_the_oldest() {
    let a = api(ApiConfig {
        max_json_bytes: 8 * 1024 * 1024,
        ..ApiConfig::default()
    });
    a.runtime.use_userland();
    for n in 0..64 {
        let body = json!({"cmd": ["sleep", "600"], "process_id": format!("s{n}")});
        assert_eq!(
            a.send("POST", P, body.to_string()).await.status,
            StatusCode::CREATED
        );
    }
    let over = a
        .send("POST", P, json!({"cmd": ["sleep", "600"]}).to_string())
        .await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(over.code(), "too_many_processes");
    assert!(over.headers.contains_key("retry-after"));

    let long = "y".repeat(5 * 1024 * 1024);
    let body = json!({"cmd": ["echo", long], "process_id": "big"});
    a.send("POST", "/v1/chats/web:2/processes", body.to_string())
        .await;
    let expired = a
        .send("GET", "/v1/chats/web:2/processes/big/output", Body::empty())
        .await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert_eq!(expired.code(), "cursor_expired");
    let oldest = expired.json()["error"]["oldest"]["stdout"]
        .as_u64()
        .unwrap();
    assert_eq!(oldest, 5 * 1024 * 1024 + 1 - 4 * 1024 * 1024);
}

#[tokio::test]
async fn a_streamed_exec_answers_output_lines_then_the_result() {
    let a = api(ApiConfig::default());
    let body = json!({"cmd": ["echo", "streamed"], "stream": true}).to_string();
    let answer = a.send("POST", "/v1/chats/web:3/exec", body).await;
    assert_eq!(answer.status, StatusCode::OK);
    let events = lines(&answer);
    assert_eq!(events[0]["data"], "echo streamed");
    let last = events.last().unwrap();
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["timed_out"], false);
    assert!(last["process_id"].as_str().unwrap().starts_with("p-"));
}
