//! The chat's files against the real engine: every row of the decision
//! table (created, reused, replaced for a dead container, another spec or
//! max lifetime, hibernated and resumed) with the files checked across it,
//! retention, and the warm pool (claims, refill, a member killed from
//! outside, a burst of new chats, a changed default image).

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use support::{Options, Service, chat, docker_lines};

async fn put_file(service: &Service, c: &str, path: &str, text: &str) {
    let (status, body) = service
        .call(
            Method::PUT,
            &format!("/v1/chats/{c}/files/{path}"),
            Some(text.as_bytes().to_vec()),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

async fn cat(service: &Service, c: &str, path: &str) -> Value {
    let (status, ran) = service.exec(c, json!({"cmd": ["cat", path]})).await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    ran
}

async fn put(service: &Service, c: &str, body: &str) -> (StatusCode, Value) {
    service.put_sandbox(c, body).await
}

fn container_of(v: &Value) -> String {
    v["container_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_row_of_the_decision_table_keeps_the_files() {
    let service = Service::start(Options::default()).await;
    let c = chat("table");
    let (status, first) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["result"], "created");
    put_file(&service, &c, "notes/a.txt", "one").await;

    let (status, again) = put(&service, &c, "").await;
    assert_eq!(
        (status, &again["result"]),
        (StatusCode::OK, &json!("reused"))
    );

    // The container dies: the next use replaces it on the same workspace.
    docker_lines(&["kill", &container_of(&first)]);
    let ran = cat(&service, &c, "notes/a.txt").await;
    assert_eq!(ran["stdout"], "one");
    assert_ne!(ran["session_id"], first["session_id"]);

    // Another spec: replaced, same files.
    let (status, changed) = put(&service, &c, r#"{"env": {"MODE": "two"}}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{changed}");
    assert_eq!(changed["result"], "replaced");
    assert_eq!(changed["replace_reason"], "spec_changed");
    assert_eq!(changed["workspace_id"], first["workspace_id"]);
    assert_eq!(cat(&service, &c, "notes/a.txt").await["stdout"], "one");

    // Hibernated now: no container, files kept; the next PUT resumes.
    let (status, _) = service
        .call(
            Method::POST,
            &format!("/v1/chats/{c}/sandbox/hibernate"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, shown) = service
        .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["status"], "hibernated", "{shown}");
    assert!(shown["retained_until"].is_string(), "{shown}");
    assert!(
        docker_lines(&[
            "ps",
            "-aq",
            "--filter",
            &format!("id={}", container_of(&changed))
        ])
        .is_empty(),
        "the hibernated sandbox's container is gone"
    );
    let (status, resumed) = put(&service, &c, r#"{"env": {"MODE": "two"}}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{resumed}");
    assert_eq!(resumed["result"], "resumed");
    assert_eq!(resumed["workspace_id"], first["workspace_id"]);
    let ran = service
        .exec(
            &c,
            json!({"cmd": ["sh", "-c", "cat notes/a.txt; echo \" $MODE $HOME\""]}),
        )
        .await
        .1;
    assert_eq!(ran["stdout"], "one two /workspace\n");

    // DELETE takes everything, the workspace included.
    let (status, _) = service
        .call(Method::DELETE, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(service.volumes().is_empty(), "{:?}", service.volumes());
    let (status, _) = service
        .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_lifetime_a_new_container_takes_the_same_files() {
    let service = Service::start(
        Options::default()
            .arg("--max-lifetime-seconds", 3)
            .arg("--ttl-seconds", 2),
    )
    .await;
    let c = chat("life");
    let (_, first) = put(&service, &c, "").await;
    put_file(&service, &c, "kept.txt", "across lifetimes").await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, next) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{next}");
    assert_eq!(next["result"], "replaced");
    assert_eq!(next["replace_reason"], "max_lifetime");
    assert_eq!(next["workspace_id"], first["workspace_id"]);
    assert_eq!(
        cat(&service, &c, "kept.txt").await["stdout"],
        "across lifetimes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_retention_the_files_go_and_the_next_use_starts_empty() {
    let service = Service::start(
        Options::default()
            .arg("--ttl-seconds", 1)
            .arg("--retention-seconds", 2)
            .arg("--cleanup-interval-seconds", 1),
    )
    .await;
    let c = chat("retain");
    let (_, first) = put(&service, &c, "").await;
    put_file(&service, &c, "gone.txt", "soon").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.volumes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the workspace outlived its retention"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, shown) = service
        .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{shown}");
    let (status, next) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(next["result"], "created");
    assert_ne!(next["workspace_id"], first["workspace_id"]);
    let (_, ran) = service.exec(&c, json!({"cmd": ["cat", "gone.txt"]})).await;
    assert_ne!(ran["exit_code"], 0, "{ran}");
}

/// Unclaimed warm sandboxes of the service: running, labelled pool, and
/// not one of `claimed`.
fn warm(service: &Service, claimed: &HashSet<String>) -> Vec<String> {
    docker_lines(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=sandboxer.instance={}", service.instance()),
        "--filter",
        "label=sandboxer.pool=true",
    ])
    .into_iter()
    .filter(|id| !claimed.contains(id))
    .collect()
}

/// Ready warm sandboxes as the latest refill left them (its gauge).
async fn ready_gauge(service: &Service) -> usize {
    let (_, metrics) = service.call(Method::GET, "/metrics", None).await;
    metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("sandboxer_pool_ready "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as usize)
}

/// Waits until `n` unclaimed warm sandboxes run and the pool says they
/// are ready (running is not yet ready: the agent's answer and the row
/// follow).
async fn wait_warm(service: &Service, n: usize, claimed: &HashSet<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = warm(service, claimed);
        if now.len() >= n && ready_gauge(service).await >= n {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the pool did not fill to {n}: {now:?}; log:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_hands_out_warm_sandboxes_refills_and_skips_a_dead_one() {
    let service = Service::start(Options::default().arg("--warm-pool-size", 2)).await;
    let mut claimed = HashSet::new();
    let members = wait_warm(&service, 2, &claimed).await;
    // Not chats: the list does not show them.
    let (_, listed) = service.call(Method::GET, "/v1/sandboxes", None).await;
    assert_eq!(listed["sandboxes"].as_array().unwrap().len(), 0, "{listed}");

    let c = chat("warm");
    let (status, got) = put(&service, &c, r#"{"env": {"GREETING": "hello"}}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{got}");
    assert_eq!(got["pool"], "hit", "{got}");
    assert!(members.contains(&container_of(&got)));
    claimed.insert(container_of(&got));
    // The chat's env was applied at the claim, through the agent.
    let (_, ran) = service
        .exec(&c, json!({"cmd": ["sh", "-c", "echo $GREETING; pwd"]}))
        .await;
    assert_eq!(ran["stdout"], "hello\n/workspace\n", "{ran}");
    // Its timestamps start at the claim.
    let (_, shown) = service
        .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
        .await;
    assert_eq!(shown["created_at"], got["created_at"]);

    // Refilled in the background.
    let members = wait_warm(&service, 2, &claimed).await;
    // One is killed from outside: it is never handed out.
    docker_lines(&["kill", &members[0]]);
    for n in 0..2 {
        let c = chat(&format!("after-kill-{n}"));
        let (status, got) = put(&service, &c, "").await;
        assert_eq!(status, StatusCode::CREATED, "{got}");
        assert_ne!(
            container_of(&got),
            members[0],
            "a dead member was handed out"
        );
        let (status, ran) = service.exec(&c, json!({"cmd": ["true"]})).await;
        assert_eq!(
            (status, &ran["exit_code"]),
            (StatusCode::OK, &json!(0)),
            "{ran}"
        );
        claimed.insert(container_of(&got));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_new_chats_at_once_with_a_pool_of_four_get_one_sandbox_each() {
    let service = Service::start(Options::default().arg("--warm-pool-size", 4)).await;
    wait_warm(&service, 4, &HashSet::new()).await;
    let chats: Vec<String> = (0..100).map(|n| chat(&format!("burst{n}"))).collect();
    let answers = futures::future::join_all(chats.iter().map(|c| put(&service, c, ""))).await;
    let mut containers = HashSet::new();
    let mut hits = 0;
    for (status, got) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{got}");
        assert!(
            containers.insert(container_of(got)),
            "one container went to two chats: {got}"
        );
        if got["pool"] == "hit" {
            hits += 1;
        }
    }
    assert!((1..=100).contains(&hits), "{hits} hits");
    let (_, listed) = service.call(Method::GET, "/v1/sandboxes", None).await;
    let listed = listed["sandboxes"].as_array().unwrap();
    assert_eq!(listed.len(), 100);
    let listed_chats: HashSet<&str> = listed
        .iter()
        .filter_map(|s| s["chat_id"].as_str())
        .collect();
    assert_eq!(listed_chats.len(), 100, "a chat has two sandboxes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_default_image_drains_the_pool() {
    let image = sandboxer_docker::testing::ensure_test_image();
    let other = format!("sandboxer-pool-test:{}", uuid::Uuid::now_v7().simple());
    docker_lines(&["tag", &image, &other]);
    struct Untag(String);
    impl Drop for Untag {
        fn drop(&mut self) {
            docker_lines(&["rmi", &self.0]);
        }
    }
    let _untag = Untag(other.clone());
    let mut service = Service::start(Options::default().arg("--warm-pool-size", 2)).await;
    let before = wait_warm(&service, 2, &HashSet::new()).await;
    service.restart_with_image(&other).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = warm(&service, &HashSet::new());
        let images: Vec<String> = now
            .iter()
            .flat_map(|id| docker_lines(&["inspect", "-f", "{{.Config.Image}}", id]))
            .collect();
        if now.len() == 2 && images.iter().all(|i| *i == other) {
            assert!(now.iter().all(|id| !before.contains(id)));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pool was not drained to the new image: {images:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
