//! Replicas on one PostgreSQL database and one Docker Engine, the real
//! binary: they act as one service (any replica answers any chat,
//! concurrent PUTs for one chat over both give one sandbox), one leads the
//! background work, and the lead moves when its holder is SIGKILLed.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sandboxer_postgres::testing::TestDatabase;
use serde_json::json;
use support::{Options, Service, chat};

async fn replicas(db: &TestDatabase, options: Options) -> (Service, Service) {
    let a = Service::start(options.clone().database(db.url())).await;
    let b = Service::start(options.database(db.url()).replica_of(&a)).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_database_act_as_one_service() {
    let db = TestDatabase::create().await;
    let (a, b) = replicas(&db, Options::default()).await;
    let c = chat("replicas");
    // 40 PUTs at once, alternating replicas: one sandbox.
    let puts = (0..40).map(|i| {
        let service = if i % 2 == 0 { &a } else { &b };
        let c = c.clone();
        async move { service.put_sandbox(&c, "{}").await }
    });
    let answers = futures::future::join_all(puts).await;
    let mut sessions = HashSet::new();
    for (status, body) in &answers {
        assert!(status.is_success(), "{status}: {body}");
        sessions.insert(body["session_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(sessions.len(), 1, "one chat, one session: {sessions:?}");
    let ours: Vec<_> = a
        .container_sessions()
        .into_iter()
        .filter(|(chat, _)| *chat == c)
        .collect();
    assert_eq!(ours.len(), 1, "one container for the chat: {ours:?}");

    // A file written through one replica is read through the other.
    let (status, _) = a
        .call(
            Method::PUT,
            &format!("/v1/chats/{c}/files/note.txt"),
            Some(b"from a".to_vec()),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, ran) = b.exec(&c, json!({"cmd": ["cat", "note.txt"]})).await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(ran["stdout"], "from a", "{ran}");
    let (_, listed) = b.call(Method::GET, "/v1/sandboxes", None).await;
    assert!(listed.to_string().contains(&c), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cleanup_lead_moves_to_the_survivor_when_the_leader_is_killed() {
    let db = TestDatabase::create().await;
    let options = Options::default()
        .arg("--ttl-seconds", 2)
        .arg("--cleanup-interval-seconds", 1);
    let (mut a, b) = replicas(&db, options).await;
    wait_for(|| a.log().contains("this replica leads"), "a leads").await;
    wait_for(|| b.log().contains("another replica leads"), "b follows").await;

    a.kill9().await;
    let killed = Instant::now();
    // The survivor takes the lead and hibernates the idle sandbox.
    let c = chat("lead");
    let (status, body) = b.put_sandbox(&c, "{}").await;
    assert!(status.is_success(), "{status}: {body}");
    wait_for(
        || b.log().contains("this replica leads"),
        "b takes the lead",
    )
    .await;
    eprintln!("b led {:?} after a's kill", killed.elapsed());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, shown) = b
            .call(Method::GET, &format!("/v1/chats/{c}/sandbox"), None)
            .await;
        if shown["status"] == "hibernated" {
            break;
        }
        assert!(Instant::now() < deadline, "never hibernated: {shown}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_for(mut seen: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
