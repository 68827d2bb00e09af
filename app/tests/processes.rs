//! Live processes through the real service and Docker: output seen line by
//! line while the program runs, reattaches from saved offsets that lose no
//! byte, a terminal over the WebSocket, a background process that outlives
//! other calls and ends with its sandbox, the kill of a whole tree, and a
//! service SIGKILLed and restarted that still has the output and the exit.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Options, Service, chat};
use tokio_tungstenite::tungstenite::Message;

async fn start(service: &Service, c: &str, body: Value) -> Value {
    let (status, view) = service
        .call(
            Method::POST,
            &format!("/v1/chats/{c}/processes"),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    view
}

async fn status(service: &Service, c: &str, id: &str) -> Value {
    let (code, view) = service
        .call(Method::GET, &format!("/v1/chats/{c}/processes/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{view}");
    view
}

/// Reads a follow stream's NDJSON lines as they come, until `stop` says so
/// or the stream ends; returns the events read.
async fn follow_until(
    service: &Service,
    path: &str,
    mut stop: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let mut response = service
        .client
        .get(format!("{}{path}", service.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut pending = Vec::new();
    let mut events = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), response.chunk())
        .await
        .expect("output within a minute")
        .unwrap()
    {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).unwrap();
            let done = stop(&event);
            events.push(event);
            if done {
                return events;
            }
        }
    }
    events
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .map(|e| e["data"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_a_second_is_seen_line_by_line_before_the_program_ends() {
    let service = Service::start(Options::default()).await;
    let c = chat("lines");
    let script = "for i in 1 2 3; do echo line $i; sleep 1; done";
    start(
        &service,
        &c,
        json!({"cmd": ["sh", "-c", script], "process_id": "lines"}),
    )
    .await;
    let path = format!("/v1/chats/{c}/processes/lines/output?follow=true");
    let first = follow_until(&service, &path, |e| e["data"] == "line 1\n").await;
    assert_eq!(text_of(&first), "line 1\n");
    // Seen while the program still runs: two more seconds of it to go.
    assert_eq!(status(&service, &c, "lines").await["status"], "running");
    let all = follow_until(&service, &path, |e| e["status"] == "exited").await;
    assert_eq!(text_of(&all), "line 1\nline 2\nline 3\n");
    assert_eq!(all.last().unwrap()["exit_code"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_lines_read_in_three_reattaches_equal_the_output() {
    let service = Service::start(Options::default()).await;
    let c = chat("reattach");
    let script = "i=0; while [ $i -lt 500 ]; do echo \"line $i of the output\"; i=$((i+1)); \
                  [ $((i % 50)) -eq 0 ] && sleep 0.1; done";
    start(
        &service,
        &c,
        json!({"cmd": ["sh", "-c", script], "process_id": "p500"}),
    )
    .await;
    let mut got = String::new();
    let mut offset = 0u64;
    for part in 0..3 {
        let path =
            format!("/v1/chats/{c}/processes/p500/output?follow=true&stdout_offset={offset}");
        let want = if part < 2 {
            (part + 1) * 3000
        } else {
            usize::MAX
        };
        let mut seen = got.len();
        let events = follow_until(&service, &path, |e| {
            seen += e["data"].as_str().map_or(0, str::len);
            seen >= want || e["status"] == "exited"
        })
        .await;
        for e in events.iter().filter(|e| e["stream"] == "stdout") {
            assert_eq!(e["offset"].as_u64().unwrap(), offset, "no gap, no overlap");
            let data = e["data"].as_str().unwrap();
            got.push_str(data);
            offset += data.len() as u64;
        }
        // The connection is dropped here, mid-stream for the first two parts.
    }
    let expected: String = (0..500)
        .map(|i| format!("line {i} of the output\n"))
        .collect();
    assert_eq!(got, expected);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn type_in(socket: &mut Socket, keys: &str) {
    socket
        .send(Message::Binary(keys.as_bytes().to_vec().into()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_over_the_websocket_runs_a_shell() {
    let service = Service::start(Options::default()).await;
    let c = chat("pty");
    let body = json!({"cmd": ["sh", "-i"], "process_id": "term", "pty": {"cols": 80, "rows": 24}});
    let view = start(&service, &c, body).await;
    assert_eq!(view["pty"], true);
    let url = format!(
        "{}/v1/chats/{c}/processes/term/pty",
        service.url.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut screen = String::new();
    type_in(&mut socket, "echo sum-$((40+2)); tty; stty size\n").await;
    let resize = json!({"type": "resize", "cols": 100, "rows": 30}).to_string();
    let mut resized = false;
    let mut exit = None;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("the terminal answers")
    {
        match message.unwrap() {
            Message::Binary(bytes) => screen.push_str(&String::from_utf8_lossy(&bytes)),
            Message::Text(text) => {
                let control: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(control["type"], "exit", "{control}");
                exit = Some(control["exit_code"].clone());
            }
            Message::Close(_) => break,
            _ => {}
        }
        if !resized && screen.contains("24 80") {
            resized = true;
            socket
                .send(Message::Text(resize.clone().into()))
                .await
                .unwrap();
            type_in(&mut socket, "stty size; exit 3\n").await;
        }
    }
    assert!(screen.contains("sum-42"), "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("30 100"), "{screen}");
    assert_eq!(exit, Some(json!(3)));
    assert_eq!(status(&service, &c, "term").await["exit_code"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_background_process_outlives_other_calls_and_ends_with_its_sandbox() {
    let service = Service::start(Options::default()).await;
    let c = chat("bg");
    start(
        &service,
        &c,
        json!({"cmd": ["sleep", "1000"], "process_id": "bg"}),
    )
    .await;
    for _ in 0..3 {
        let (code, ran) = service.exec(&c, json!({"cmd": ["echo", "hi"]})).await;
        assert_eq!(
            (code, ran["stdout"].clone()),
            (StatusCode::OK, json!("hi\n"))
        );
    }
    assert_eq!(status(&service, &c, "bg").await["status"], "running");
    let (code, _) = service
        .call(Method::DELETE, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    assert!(service.running_containers().is_empty());
    let (code, gone) = service
        .call(Method::GET, &format!("/v1/chats/{c}/processes/bg"), None)
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{gone}");
    assert_eq!(gone["error"]["code"], "process_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_leaves_nothing_of_the_tree() {
    let service = Service::start(Options::default()).await;
    let c = chat("kill");
    let script = "sleep 1000 & sleep 1000 & setsid sleep 1000 & wait";
    start(
        &service,
        &c,
        json!({"cmd": ["sh", "-c", script], "process_id": "tree"}),
    )
    .await;
    let ps = json!({"cmd": ["sh", "-c", "ps -o args | grep -c '^sleep 1000' || true"]});
    for _ in 0..100 {
        if service.exec(&c, ps.clone()).await.1["stdout"] == "3\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, _) = service
        .call(
            Method::DELETE,
            &format!("/v1/chats/{c}/processes/tree"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let view = status(&service, &c, "tree").await;
    assert_eq!(
        (view["killed"].clone(), view["exit_code"].clone()),
        (json!(true), json!(137))
    );
    assert_eq!(service.exec(&c, ps).await.1["stdout"], "0\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_sigkilled_and_restarted_still_has_the_output_and_the_exit() {
    let mut service = Service::start(Options::default()).await;
    let c = chat("survive");
    let script = "echo before; sleep 2; echo after; exit 7";
    start(
        &service,
        &c,
        json!({"cmd": ["sh", "-c", script], "process_id": "s"}),
    )
    .await;
    service.kill9().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    service.restart().await;
    let path = format!("/v1/chats/{c}/processes/s/output?follow=true");
    let events = follow_until(&service, &path, |e| e["status"] == "exited").await;
    assert_eq!(text_of(&events), "before\nafter\n");
    assert_eq!(events.last().unwrap()["exit_code"], 7);
}

/// A WebSocket that sends a large write and closes at once harms nothing:
/// the process runs on, and a new socket attaches and sees the terminal.
#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_closed_mid_write_leaves_the_terminal_usable() {
    let service = Service::start(Options::default()).await;
    let c = chat("wsclose");
    let body = json!({"cmd": ["sh", "-i"], "process_id": "t", "pty": {"cols": 80, "rows": 24}});
    start(&service, &c, body).await;
    let url = format!(
        "{}/v1/chats/{c}/processes/t/pty",
        service.url.replacen("http://", "ws://", 1)
    );
    let (mut first, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let junk = format!("# {}\n", "x".repeat(256 * 1024));
    first
        .send(Message::Binary(junk.into_bytes().into()))
        .await
        .unwrap();
    drop(first);
    let (mut second, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    type_in(&mut second, "echo still-$((1+1))\n").await;
    let mut screen = String::new();
    while !screen.contains("still-2") {
        let next = tokio::time::timeout(Duration::from_secs(30), second.next())
            .await
            .expect("the terminal answers")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Binary(bytes) = next {
            screen.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert_eq!(status(&service, &c, "t").await["status"], "running");
    let began = std::time::Instant::now();
    let (code, body) = service
        .call(Method::DELETE, &format!("/v1/chats/{c}/processes/t"), None)
        .await;
    // What the kill answered and how long it took, should it ever fail.
    let took = began.elapsed();
    let after = status(&service, &c, "t").await;
    assert_eq!(
        code,
        StatusCode::NO_CONTENT,
        "{body} after {took:?}; now {after}"
    );
}
