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
use sandboxer_docker::testing::ExtraEngine;
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

/// A chat's `exec echo` answer: status and error code.
async fn echo(service: &Service, c: &str) -> (StatusCode, Value) {
    service.exec(c, json!({"cmd": ["echo", "hi"]})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_goes_away_fails_only_its_own_chats_and_comes_back_as_it_was() {
    let image = sandboxer_docker::testing::ensure_test_image();
    let remote = tokio::task::spawn_blocking({
        let image = image.clone();
        move || ExtraEngine::start("nodes-away", false, &[&image])
    })
    .await
    .unwrap();
    let tls = tokio::task::spawn_blocking({
        let image = image.clone();
        move || ExtraEngine::start("nodes-tls", true, &[&image])
    })
    .await
    .unwrap();
    let certs = tls.cert_dir.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nodes.toml");
    std::fs::write(
        &config,
        format!(
            "[[nodes]]\nname = \"local\"\nhost = \"unix:///var/run/docker.sock\"\n\n\
             [[nodes]]\nname = \"remote\"\nhost = \"{}\"\n\n\
             [[nodes]]\nname = \"tls\"\nhost = \"{}\"\ntls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            remote.host,
            tls.host,
            certs.join("ca.pem").display(),
            certs.join("cert.pem").display(),
            certs.join("key.pem").display(),
        ),
    )
    .unwrap();
    let service = Service::start(Options::default().arg("--config", config.display())).await;

    // Equal capacity: one chat on each node, in the order they are named.
    let mut chats = HashMap::new();
    let mut sessions = HashMap::new();
    for i in 0..3 {
        let c = chat(&format!("away{i}"));
        let (status, body) = service.put_sandbox(&c, "{}").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        sessions.insert(node_of(&body), body["session_id"].clone());
        chats.insert(node_of(&body), c);
    }
    assert_eq!(chats.len(), 3, "one chat per node: {chats:?}");
    for c in chats.values() {
        let (status, ran) = echo(&service, c).await;
        assert_eq!(status, StatusCode::OK, "{ran}");
    }
    let on_remote = remote
        .docker()
        .args(["ps", "-q", "--filter", "label=sandboxer.node=remote"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&on_remote.stdout).lines().count(),
        1,
        "the remote chat's container is on the remote engine"
    );

    let paused = tokio::task::spawn_blocking(move || {
        remote.pause();
        remote
    });
    let remote = paused.await.unwrap();
    // Marked down within a health check or two.
    let deadline = Instant::now() + Duration::from_secs(10);
    let away = loop {
        let (status, body) = echo(&service, &chats["remote"]).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the away node's chat still answers {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(away["error"]["code"], "runtime_unavailable", "{away}");
    let (status, headers, _) = service
        .raw(
            Method::POST,
            &format!("/v1/chats/{}/exec", chats["remote"]),
            Some(json!({"cmd": ["true"]}).to_string().into_bytes()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    for node in ["local", "tls"] {
        let (status, ran) = echo(&service, &chats[node]).await;
        assert_eq!(status, StatusCode::OK, "{node}: {ran}");
    }
    for i in 0..2 {
        let (status, body) = service.put_sandbox(&chat(&format!("while{i}")), "{}").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_ne!(node_of(&body), "remote", "{body}");
    }
    // Cleanup runs while it is away and leaves its chat alone.
    let (status, cleaned) = service.call(Method::POST, "/v1/cleanup", None).await;
    eprintln!("cleanup while a node is away: {status} {cleaned}");

    let remote = tokio::task::spawn_blocking(move || {
        remote.resume();
        remote
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = echo(&service, &chats["remote"]).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node came back but its chat answers {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The same sandbox as before the outage, not a replacement.
    let (_, shown) = service
        .call(
            Method::GET,
            &format!("/v1/chats/{}/sandbox", chats["remote"]),
            None,
        )
        .await;
    assert_eq!(shown["session_id"], sessions["remote"], "{shown}");
    assert_eq!(node_of(&shown), "remote", "{shown}");
    drop(service);
    drop((remote, tls));
}
