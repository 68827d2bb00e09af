//! Several Docker nodes, the real binary: placement by free capacity,
//! every later call on the chat's node, a resumed chat back on the node
//! that holds its files, draining, a node that never answers, readiness
//! and metrics per node. Two node names on this machine's one engine (each
//! node lists only what carries its name) and one unreachable socket;
//! a node that goes away and comes back runs in the node drills against a
//! second engine.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Options, Service, chat, docker_lines};

/// A service with nodes `a` (2 sandboxes), `b` (4) on the local engine and
/// `gone` on a socket nobody listens on.
async fn fleet(extra: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nodes.toml");
    std::fs::write(
        &config,
        format!(
            "{extra}\n\
             [[nodes]]\nname = \"a\"\nhost = \"unix:///var/run/docker.sock\"\ncapacity_sandboxes = 2\n\n\
             [[nodes]]\nname = \"b\"\nhost = \"unix:///var/run/docker.sock\"\ncapacity_sandboxes = 4\n\n\
             [[nodes]]\nname = \"gone\"\nhost = \"unix:///nonexistent/docker.sock\"\n"
        ),
    )
    .unwrap();
    let service = Service::start(Options::default().arg("--config", config.display())).await;
    // The directory only held the file the service read at start.
    drop(dir);
    service
}

fn node_of(answer: &Value) -> String {
    let id = answer["container_id"].as_str().unwrap_or_default();
    id.split_once('/')
        .map(|(n, _)| n.to_owned())
        .unwrap_or_default()
}

/// `node -> containers` of the service's instance, by their node label.
fn containers_by_node(service: &Service) -> HashMap<String, usize> {
    let mut by_node = HashMap::new();
    for node in docker_lines(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=sandboxer.instance={}", service.instance()),
        "--format",
        "{{.Label \"sandboxer.node\"}}",
    ]) {
        *by_node.entry(node).or_insert(0) += 1;
    }
    by_node
}

#[tokio::test(flavor = "multi_thread")]
async fn new_chats_go_to_the_node_with_the_most_free_capacity_until_none_has_room() {
    let service = fleet("").await;
    let mut placed = Vec::new();
    for i in 0..6 {
        let c = chat(&format!("place{i}"));
        let (status, body) = service.put_sandbox(&c, "{}").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        placed.push((c, node_of(&body)));
    }
    let order: Vec<&str> = placed.iter().map(|(_, n)| n.as_str()).collect();
    // Free share after one more: b 3/4 > a 1/2; then a 1/2 = b 2/4 (a is
    // named first); then b 1/4 > a 0, b 0 = a 0 (a), b takes the last.
    assert_eq!(order, ["b", "a", "b", "b", "a", "b"], "{placed:?}");
    let by_node = containers_by_node(&service);
    assert_eq!(by_node.get("a"), Some(&2), "{by_node:?}");
    assert_eq!(by_node.get("b"), Some(&4), "{by_node:?}");

    // Every node full (the third never answers): 507 no_space.
    let (status, body) = service.put_sandbox(&chat("full"), "{}").await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "no_space", "{body}");

    // Each chat's calls reach its own node.
    for (c, _) in &placed {
        let (status, ran) = service.exec(c, json!({"cmd": ["echo", "hi"]})).await;
        assert_eq!(status, StatusCode::OK, "{ran}");
        assert_eq!(ran["stdout"], "hi\n");
    }

    let (status, nodes) = service.call(Method::GET, "/v1/nodes", None).await;
    assert_eq!(status, StatusCode::OK);
    let nodes = nodes["nodes"].as_array().unwrap().clone();
    let view = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();
    assert_eq!(view("a")["sandboxes"], 2);
    assert_eq!(view("b")["capacity_sandboxes"], 4);
    assert_eq!(view("gone")["up"], false);
    let (status, ready) = service.call(Method::GET, "/readyz", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "ready while a node answers: {ready}"
    );
    assert_eq!(ready["nodes"].as_array().unwrap().len(), 3, "{ready}");
    let (_, metrics) = service.call(Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    // Gauges are set every 5 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut text = metrics;
    while !(text.contains("sandboxer_node_up{node=\"gone\"} 0")
        && text.contains("sandboxer_node_sandboxes{node=\"b\"} 4"))
    {
        assert!(Instant::now() < deadline, "no node gauges: {text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        text = service
            .call(Method::GET, "/metrics", None)
            .await
            .1
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    assert!(
        text.contains("sandboxer_node_sandboxes{node=\"b\"} 4"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drained_node_takes_no_new_chats_and_a_resumed_chat_returns_to_its_node() {
    let service = fleet("ttl_seconds = 2\ncleanup_interval_seconds = 1\n").await;
    let (status, _) = service.call(Method::PUT, "/v1/nodes/b/drain", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = service
        .call(Method::PUT, "/v1/nodes/nope/drain", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let first = chat("drained");
    let (_, on_a) = service.put_sandbox(&first, "{}").await;
    assert_eq!(node_of(&on_a), "a", "b is draining: {on_a}");
    let (status, _) = service
        .call(Method::DELETE, "/v1/nodes/b/drain", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let c = chat("resume");
    let (_, placed) = service.put_sandbox(&c, "{}").await;
    assert_eq!(node_of(&placed), "b", "{placed}");
    let (status, _) = service
        .call(
            Method::PUT,
            &format!("/v1/chats/{c}/files/kept.txt"),
            Some(b"on b".to_vec()),
        )
        .await;
    assert!(status.is_success());

    // Idle past its TTL: hibernated. With b draining, a new chat could
    // only go to a; the chat still wakes on b, where its files are.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, shown) = service
            .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
            .await;
        if shown["status"] == "hibernated" {
            break;
        }
        assert!(Instant::now() < deadline, "never hibernated: {shown}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, _) = service.call(Method::PUT, "/v1/nodes/b/drain", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, ran) = service.exec(&c, json!({"cmd": ["cat", "kept.txt"]})).await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["stdout"], "on b", "{ran}");
    let (_, shown) = service
        .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(node_of(&shown), "b", "resumed on another node: {shown}");
}
