//! Many idle sandboxes (the memory figure), then one timed cleanup of them.

use std::time::Duration;

use anyhow::ensure;
use reqwest::Method;
use serde_json::{Value, json};

use super::each;
use crate::api::{Api, Body, sandbox_path};
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
    pub cleanup: Duration,
    pub answer: Value,
}

/// Creates `k` sandboxes, reads the service's memory while they idle, then
/// gives them a 1 s TTL, lets it pass and times one `POST /v1/cleanup`,
/// which must remove every one of them.
pub async fn idle_and_cleanup(
    api: &Api,
    k: usize,
    concurrency: usize,
    prefix: &str,
    rss: impl Fn() -> Option<u64>,
) -> anyhow::Result<Idle> {
    let chats: Vec<String> = (0..k).map(|i| format!("{prefix}-idle-{i}")).collect();
    let (fill, _, fill_wall) = each(chats.clone(), concurrency, |chat| async move {
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(201, "idle create")?;
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
    let ttl = serde_json::to_vec(&json!({ "ttl_seconds": 1 }))?;
    each(chats, concurrency, |chat| {
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
    let n = |key: &str| answer[key].as_u64().unwrap_or(u64::MAX);
    ensure!(
        n("removed") >= k as u64 && n("failed") == 0,
        "cleanup did not remove the {k} expired sandboxes: {answer}"
    );
    Ok(Idle {
        k,
        fill,
        fill_wall,
        listed,
        list,
        rss_idle_kib,
        cleanup: a.took,
        answer,
    })
}
