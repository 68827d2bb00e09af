//! The service under concurrent load: a burst of execs sent at once into one
//! sandbox, and a fleet of sandboxes each driven through a short cycle
//! (create, three execs, put and get 1 MiB, stop) a few at a time. Failures
//! are counted, not fatal: how many there were is the figure.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::{Ctx, FILE, each, http_exec};
use crate::api::{Body, file_path, sandbox_path};
use crate::stats::Samples;

/// Execs per fleet sandbox (the first opens its attach).
const FLEET_EXECS: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Execs at once into one sandbox (0 skips the burst).
    pub burst: usize,
    /// Sandboxes in the fleet (0 skips it), and how many at a time.
    pub fleet: usize,
    pub fleet_concurrency: usize,
}

#[derive(Debug, Default)]
pub struct Load {
    pub plan: Option<LoadPlan>,
    /// Each burst exec that succeeded, from its send to its answer.
    pub burst: Samples,
    pub burst_errors: usize,
    pub burst_wall: Duration,
    pub fleet_create: Samples,
    pub fleet_exec: Samples,
    pub fleet_files: Samples,
    /// One sandbox's whole cycle.
    pub fleet_cycle: Samples,
    pub fleet_errors: usize,
    pub fleet_wall: Duration,
    /// What the first failure said, to explain a count that is not 0.
    pub first_error: Option<String>,
}

impl Load {
    fn failed(&mut self, what: &str, err: &anyhow::Error) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what}: {err:#}"));
        }
    }
}

pub async fn load(ctx: &Ctx<'_>, prefix: &str, plan: LoadPlan) -> anyhow::Result<Load> {
    let mut out = Load {
        plan: Some(plan),
        ..Load::default()
    };
    if plan.burst > 0 {
        burst(ctx, &format!("{prefix}-burst"), plan.burst, &mut out).await?;
    }
    if plan.fleet > 0 {
        fleet(ctx, prefix, plan, &mut out).await?;
    }
    Ok(out)
}

/// `n` execs of `true` sent together into one warm sandbox.
async fn burst(ctx: &Ctx<'_>, chat: &str, n: usize, out: &mut Load) -> anyhow::Result<()> {
    let api = ctx.api;
    api.send(Method::PUT, &sandbox_path(chat), Body::None)
        .await?
        .expect(201, "burst create")?;
    http_exec(api, chat, &["true"]).await?;
    let started = Instant::now();
    let answers =
        futures::future::join_all((0..n).map(|_| checked_exec(ctx, chat, &["true"], ""))).await;
    out.burst_wall = started.elapsed();
    for answer in answers {
        match answer {
            Ok(took) => out.burst.push(took),
            Err(e) => {
                out.burst_errors += 1;
                out.failed("burst exec", &e);
            }
        }
    }
    api.send(Method::DELETE, &sandbox_path(chat), Body::None)
        .await?
        .expect(204, "burst stop")?;
    Ok(())
}

/// One exec that must exit 0 and print `expected`.
async fn checked_exec(
    ctx: &Ctx<'_>,
    chat: &str,
    argv: &[&str],
    expected: &str,
) -> anyhow::Result<Duration> {
    let (took, v) = http_exec(ctx.api, chat, argv).await?;
    anyhow::ensure!(
        v["exit_code"] == 0 && v["stdout"] == expected,
        "exec {argv:?}: {v}"
    );
    Ok(took)
}

/// What one fleet sandbox's cycle measured; errors are counted per step.
#[derive(Default)]
struct Cycle {
    create: Option<Duration>,
    execs: Vec<Duration>,
    files: Vec<Duration>,
    errors: Vec<(&'static str, anyhow::Error)>,
}

async fn fleet(ctx: &Ctx<'_>, prefix: &str, plan: LoadPlan, out: &mut Load) -> anyhow::Result<()> {
    let chats: Vec<String> = (0..plan.fleet)
        .map(|i| format!("{prefix}-fleet-{i}"))
        .collect();
    let (cycles, done, wall) = each(chats, plan.fleet_concurrency, |chat| async move {
        let started = Instant::now();
        let cycle = one_cycle(ctx, &chat).await;
        Ok((started.elapsed(), cycle))
    })
    .await?;
    out.fleet_cycle = cycles;
    out.fleet_wall = wall;
    for cycle in done {
        if let Some(took) = cycle.create {
            out.fleet_create.push(took);
        }
        cycle.execs.into_iter().for_each(|d| out.fleet_exec.push(d));
        cycle
            .files
            .into_iter()
            .for_each(|d| out.fleet_files.push(d));
        for (what, e) in &cycle.errors {
            out.fleet_errors += 1;
            out.failed(what, e);
        }
    }
    Ok(())
}

async fn one_cycle(ctx: &Ctx<'_>, chat: &str) -> Cycle {
    let api = ctx.api;
    let mut c = Cycle::default();
    let created = api
        .send(Method::PUT, &sandbox_path(chat), Body::None)
        .await
        .and_then(|a| a.expect(201, "fleet create").map(|_| a.took));
    match created {
        Ok(took) => c.create = Some(took),
        Err(e) => {
            c.errors.push(("fleet create", e));
            return c;
        }
    }
    for _ in 0..FLEET_EXECS {
        match checked_exec(ctx, chat, &["true"], "").await {
            Ok(took) => c.execs.push(took),
            Err(e) => c.errors.push(("fleet exec", e)),
        }
    }
    let put = api
        .send(
            Method::PUT,
            &file_path(chat, FILE),
            Body::Bytes(ctx.payload.clone()),
        )
        .await
        .and_then(|a| a.expect(200, "fleet put").map(|_| a.took));
    match put {
        Ok(took) => c.files.push(took),
        Err(e) => c.errors.push(("fleet put", e)),
    }
    let got = api
        .send(Method::GET, &file_path(chat, FILE), Body::None)
        .await
        .and_then(|a| {
            a.expect(200, "fleet get")?;
            anyhow::ensure!(a.body == ctx.payload, "fleet get: the bytes changed");
            Ok(a.took)
        });
    match got {
        Ok(took) => c.files.push(took),
        Err(e) => c.errors.push(("fleet get", e)),
    }
    let stopped = api
        .send(Method::DELETE, &sandbox_path(chat), Body::None)
        .await
        .and_then(|a| a.expect(204, "fleet stop").map(|_| ()));
    if let Err(e) = stopped {
        c.errors.push(("fleet stop", e));
    }
    c
}
