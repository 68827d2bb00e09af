//! The measured phases: the service's calls over N chats (`service`), the
//! same work through the Docker adapter alone and with raw bollard calls
//! (`docker`), the warm-up that checks they all make the same container
//! (`warm_up`), exec latency down to the attach floor (`latency`), the
//! service under concurrent load (`load`), live processes (`processes`),
//! and the idle fill that ends in one timed cleanup (`idle`).

mod docker;
mod idle;
mod latency;
mod load;
mod pool;
pub mod processes;
mod service;
mod warm_up;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::adapter::Adapter;
use crate::api::{Api, Body, exec_path};
use crate::raw::Raw;
use crate::stats::Samples;

pub use docker::{adapter_round, raw_round};
pub use idle::{Idle, idle_and_cleanup};
pub use latency::{ExecLatency, LatencyPlan, exec_latency};
pub use load::{Load, LoadPlan, load};
pub use pool::{Pool, pool};
pub use processes::{ProcessPlan, Processes};
pub use service::service_round;
pub use warm_up::warm_up;

/// The "small program" exec: python where the image has it, else sh.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub argv: Vec<&'static str>,
    pub expected: &'static str,
}

impl Program {
    /// Issue 14's program: long enough (tens of ms) that what the channel
    /// adds shows as a ratio to the program's own time.
    fn python() -> Self {
        Self {
            argv: vec!["python3", "-c", "print(sum(i*i for i in range(200000)))"],
            expected: "2666646666700000\n",
        }
    }

    fn sh() -> Self {
        Self {
            argv: vec![
                "sh",
                "-c",
                "i=0; s=0; while [ $i -lt 1000 ]; do s=$((s + i)); i=$((i + 1)); done; echo $s",
            ],
            expected: "499500\n",
        }
    }

    pub fn describe(&self) -> String {
        self.argv.join(" ")
    }
}

/// What every phase needs.
pub struct Ctx<'a> {
    pub api: &'a Api,
    pub adapter: &'a Adapter,
    pub raw: &'a Raw,
    pub concurrency: usize,
    pub reuse_rounds: usize,
    pub program: Program,
    pub payload: Bytes,
}

pub(crate) const FILE: &str = "blob-1m.bin";

/// 1 MiB of deterministic noise (xorshift), so nothing compresses it.
pub fn payload() -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(1 << 20);
    while out.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(out)
}

/// `POST .../exec` of `argv`, timed; the answer's JSON when it is a 200.
pub(crate) async fn http_exec(
    api: &Api,
    chat: &str,
    argv: &[&str],
) -> anyhow::Result<(Duration, Value)> {
    let body = serde_json::to_vec(&json!({ "cmd": argv }))?;
    let a = api
        .send(Method::POST, &exec_path(chat), Body::Json(body))
        .await?;
    let v = a.expect(200, "exec")?;
    Ok((a.took, v))
}

/// Runs `f` over `items`, `concurrency` at a time; each call times itself.
/// Returns the samples, what the calls returned, and the phase's wall time.
pub(crate) async fn each<T, O, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    f: F,
) -> anyhow::Result<(Samples, Vec<O>, Duration)>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = anyhow::Result<(Duration, O)>>,
{
    let started = Instant::now();
    let mut samples = Samples::default();
    let mut outs = Vec::with_capacity(items.len());
    let mut calls =
        futures::stream::iter(items.into_iter().map(f)).buffer_unordered(concurrency.max(1));
    while let Some(done) = calls.next().await {
        let (took, out) = done?;
        samples.push(took);
        outs.push(out);
    }
    Ok((samples, outs, started.elapsed()))
}
