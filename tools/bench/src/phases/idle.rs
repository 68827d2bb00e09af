//! Many idle sandboxes (the memory figure), each with its agent's attach
//! open (one exec after its create: the service keeps that stream while the
//! sandbox lives), then one timed cleanup that hibernates them all, the
//! memory with that many hibernated chats, timed resumes of some of them,
//! and the DELETE of every one (workspaces included).

use std::time::Duration;

use anyhow::ensure;
use reqwest::Method;
use serde_json::{Value, json};

use super::{each, http_exec};
use crate::api::{Api, Body, sandbox_path};
use crate::raw::Raw;
use crate::stats::Samples;

/// The idle fill and the timed cleanup of the same sandboxes.
#[derive(Debug, Default)]
pub struct Idle {
    pub k: usize,
    pub fill: Samples,
    pub fill_wall: Duration,
    pub listed: usize,
    pub list: Duration,
    pub rss_idle_kib: Option<u64>,
    /// The service's open file descriptors before the fill and with the
    /// sandboxes idle: each open attach is one connection to the engine.
    pub fds_before: Option<usize>,
    pub fds_idle: Option<usize>,
    pub cleanup: Duration,
    pub answer: Value,
    /// Containers of these chats left after the cleanup (0: memory freed).
    pub containers_after: usize,
    pub rss_hibernated_kib: Option<u64>,
    /// PUTs that resumed a hibernated chat, at concurrency 1.
    pub resume: Samples,
    /// Raw create and start on an existing volume, as many, interleaved.
    pub raw_kept: Samples,
}

/// Creates `k` sandboxes and runs `true` once in each, reads the service's
/// memory and descriptors while they idle, then gives them a 1 s TTL, lets
/// it pass and times one `POST /v1/cleanup`, which must remove every one.
pub async fn idle_and_cleanup(
    api: &Api,
    raw: &Raw,
    (k, resumes): (usize, usize),
    concurrency: usize,
    prefix: &str,
    rss: impl Fn() -> Option<u64>,
    fds: impl Fn() -> Option<usize>,
) -> anyhow::Result<Idle> {
    let chats: Vec<String> = (0..k).map(|i| format!("{prefix}-idle-{i}")).collect();
    let fds_before = fds();
    // The fill times the create alone; the exec is what opens the attach.
    let (fill, _, fill_wall) = each(chats.clone(), concurrency, |chat| async move {
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(201, "idle create")?;
        let (_, v) = http_exec(api, &chat, &["true"]).await?;
        ensure!(v["exit_code"] == 0, "idle exec in {chat}: {v}");
        Ok((a.took, ()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = api.send(Method::GET, "/v1/sandboxes", Body::None).await?;
    let listed = a.expect(200, "list")?["sandboxes"]
        .as_array()
        .map_or(0, Vec::len);
    let list = a.took;
    let rss_idle_kib = rss();
    let fds_idle = fds();
    let ttl = serde_json::to_vec(&json!({ "ttl_seconds": 1 }))?;
    each(chats.clone(), concurrency, |chat| {
        let ttl = ttl.clone();
        async move {
            let a = api
                .send(Method::PUT, &sandbox_path(&chat), Body::Json(ttl))
                .await?;
            a.expect(200, "shorten ttl")?;
            Ok((a.took, ()))
        }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = api.send(Method::POST, "/v1/cleanup", Body::None).await?;
    let answer = a.expect(200, "cleanup")?;
    let n = |key: &str| answer[key].as_u64().unwrap_or(0);
    ensure!(
        n("hibernated") + n("removed") >= k as u64 && n("failed") == 0,
        "cleanup did not hibernate the {k} expired sandboxes: {answer}"
    );
    let containers_after = containers_of(raw, &chats).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_hibernated_kib = rss();
    let mut resume = Samples::default();
    let mut raw_kept = Samples::default();
    // Interleaved, so drift on the machine weighs on both alike.
    for chat in chats.iter().take(resumes) {
        let a = api
            .send(Method::PUT, &sandbox_path(chat), Body::None)
            .await?;
        let v = a.expect(201, "resume")?;
        ensure!(v["result"] == "resumed", "not resumed: {v}");
        resume.push(a.took);
        let (took, b) = raw.create_start_kept().await?;
        raw_kept.push(took);
        raw.remove(&b).await?;
    }
    each(chats.clone(), concurrency, |chat| async move {
        let a = api
            .send(Method::DELETE, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(204, "delete")?;
        Ok((a.took, ()))
    })
    .await?;
    Ok(Idle {
        containers_after,
        rss_hibernated_kib,
        resume,
        raw_kept,
        k,
        fill,
        fill_wall,
        listed,
        list,
        rss_idle_kib,
        fds_before,
        fds_idle,
        cleanup: a.took,
        answer,
    })
}

/// Containers, in any state, of any of `chats`.
async fn containers_of(raw: &Raw, chats: &[String]) -> anyhow::Result<usize> {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec!["sandboxer.chat-id".to_owned()],
    )]);
    let listed = raw
        .docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await?;
    let ours: std::collections::HashSet<&str> = chats.iter().map(String::as_str).collect();
    Ok(listed
        .iter()
        .filter_map(|c| c.labels.as_ref()?.get("sandboxer.chat-id"))
        .filter(|chat| ours.contains(chat.as_str()))
        .count())
}
