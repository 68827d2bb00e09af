//! The warm pool: a service of its own with a pool, new chats one at a
//! time with the pool keeping up (each PUT waits until the pool is full
//! again), then a burst of new chats larger than the pool (hit rate, and
//! the misses' latency next to the hits').

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use reqwest::Method;

use super::each;
use crate::api::{Api, Body, sandbox_path};
use crate::stats::Samples;

/// How long a refill back to full may take before the phase gives up.
const REFILL_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Pool {
    pub size: usize,
    /// PUTs of new chats at concurrency 1, pool full before each.
    pub hits: Samples,
    /// Of those, how many were not hits (the pool did not keep up).
    pub sequential_misses: usize,
    pub burst: usize,
    pub burst_hits: Samples,
    pub burst_misses: Samples,
}

/// Warm sandboxes of `instance` running now (the pool's containers carry
/// `sandboxer.pool=true` until a chat claims one; a claimed one keeps the
/// label, so only unclaimed ones count once their chats are deleted).
async fn running_pool(docker: &Docker, instance: &str, claimed: usize) -> anyhow::Result<usize> {
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![
            format!("sandboxer.instance={instance}"),
            "sandboxer.pool=true".to_owned(),
        ],
    )]);
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
        .context("listing the pool's containers")?;
    Ok(listed.len().saturating_sub(claimed))
}

async fn wait_full(
    docker: &Docker,
    instance: &str,
    size: usize,
    claimed: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + REFILL_WAIT;
    while running_pool(docker, instance, claimed).await? < size {
        ensure!(
            Instant::now() < deadline,
            "the pool did not refill to {size}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Running is not yet ready: the agent's answer and the store's row follow.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

/// Runs the phase against a service started with `--warm-pool-size size`.
pub async fn pool(
    api: &Api,
    docker: &Docker,
    instance: &str,
    (size, sequential, burst): (usize, usize, usize),
    prefix: &str,
) -> anyhow::Result<Pool> {
    let mut out = Pool {
        size,
        burst,
        ..Pool::default()
    };
    let mut chats = Vec::new();
    for i in 0..sequential {
        wait_full(docker, instance, size, chats.len()).await?;
        let chat = format!("{prefix}-pool-{i}");
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        let v = a.expect(201, "pool create")?;
        if v["pool"] == "hit" {
            out.hits.push(a.took);
        } else {
            out.sequential_misses += 1;
        }
        chats.push(chat);
    }
    wait_full(docker, instance, size, chats.len()).await?;
    let burst_chats: Vec<String> = (0..burst).map(|i| format!("{prefix}-burst-{i}")).collect();
    let (_, answers, _) = each(burst_chats.clone(), burst, |chat| async move {
        let a = api
            .send(Method::PUT, &sandbox_path(&chat), Body::None)
            .await?;
        let v = a.expect(201, "burst create")?;
        Ok((a.took, (v["pool"] == "hit", a.took)))
    })
    .await?;
    for (hit, took) in answers {
        if hit {
            out.burst_hits.push(took);
        } else {
            out.burst_misses.push(took);
        }
    }
    chats.extend(burst_chats);
    each(chats, 4, |chat| async move {
        let a = api
            .send(Method::DELETE, &sandbox_path(&chat), Body::None)
            .await?;
        a.expect(204, "delete")?;
        Ok((a.took, ()))
    })
    .await?;
    Ok(out)
}
