//! Exec latency at concurrency 1 on warm channels, the ways an exec can
//! reach a sandbox: the service over HTTP (the agent behind it, its attach
//! already open), raw `docker exec` on a raw container, and the attach
//! floor (an agent `Exec` and a `Hello` sent straight over an attach to that
//! raw container's agent). Then the small program over HTTP against its own
//! run time inside the sandbox. Each side runs in blocks, interleaved, so
//! drift on the machine weighs on every side alike.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use reqwest::Method;

use super::{Ctx, Program, http_exec};
use crate::api::{Body, sandbox_path};
use crate::floor::Floor;
use crate::raw::RawBox;
use crate::stats::Samples;

/// Blocks each side's samples are spread over.
const BLOCKS: usize = 10;

/// Runs `argv[1..]` as a child with piped output (as the agent runs a
/// command) and prints its exit code and run time in microseconds, then the
/// child's stdout: the program's own time, measured inside the sandbox.
const INSIDE_TIMER: &str = "import subprocess, sys, time\n\
t = time.perf_counter()\n\
r = subprocess.run(sys.argv[1:], capture_output=True)\n\
e = time.perf_counter() - t\n\
print(r.returncode, round(e * 1e6))\n\
sys.stdout.write(r.stdout.decode())\n";

/// How many samples each side takes.
#[derive(Debug, Clone, Copy)]
pub struct LatencyPlan {
    /// Service execs, floor execs and floor hellos, each.
    pub execs: usize,
    pub docker_execs: usize,
    /// The program over HTTP, and as many timed inside.
    pub programs: usize,
}

#[derive(Debug, Default)]
pub struct ExecLatency {
    pub service: Samples,
    pub docker: Samples,
    pub floor_exec: Samples,
    pub floor_hello: Samples,
    /// The agent's own spawn-to-exit time of the floor's `true`.
    pub floor_in_agent: Samples,
    /// `true` run by the timer inside the sandbox: what one process spawn
    /// costs there, without the agent.
    pub true_inside: Samples,
    pub program_http: Samples,
    /// The program's own time (perf_counter around a subprocess); empty
    /// when the image has no python.
    pub program_inside: Samples,
    /// The agent's `duration_ms` of the HTTP runs (whole milliseconds).
    pub program_agent: Samples,
}

/// The measuring over one service chat and one raw container, both removed
/// afterwards, also when the measuring fails.
pub async fn exec_latency(
    ctx: &Ctx<'_>,
    chat: &str,
    plan: LatencyPlan,
) -> anyhow::Result<ExecLatency> {
    let api = ctx.api;
    api.send(Method::PUT, &sandbox_path(chat), Body::None)
        .await?
        .expect(201, "latency create")?;
    let raw_box = ctx.raw.create_start().await;
    let measured = match &raw_box {
        Ok((_, b)) => measure(ctx, chat, b, plan).await,
        Err(e) => Err(anyhow::anyhow!("latency raw create: {e:#}")),
    };
    let stopped = api
        .send(Method::DELETE, &sandbox_path(chat), Body::None)
        .await;
    if let Ok((_, b)) = &raw_box {
        ctx.raw.remove(b).await?;
    }
    let m = measured?;
    stopped?.expect(204, "latency stop")?;
    Ok(m)
}

/// `n` split over the blocks: block `i`'s share.
fn share(n: usize, i: usize) -> usize {
    n * (i + 1) / BLOCKS - n * i / BLOCKS
}

async fn measure(
    ctx: &Ctx<'_>,
    chat: &str,
    b: &RawBox,
    plan: LatencyPlan,
) -> anyhow::Result<ExecLatency> {
    let (api, raw, program) = (ctx.api, ctx.raw, &ctx.program);
    let inside = program.argv.first() == Some(&"python3");
    // Warm every path once: the first service exec opens its attach, the
    // first python run loads the interpreter into the page cache.
    http_exec(api, chat, &["true"]).await?;
    http_exec(api, chat, &program.argv).await?;
    let floor = Floor::attach(&raw.docker, &b.id).await?;
    floor.hello().await?;
    raw.exec(b, &["true"]).await?;
    let mut out = ExecLatency::default();
    for block in 0..BLOCKS {
        for _ in 0..share(plan.execs, block) {
            let (took, v) = http_exec(api, chat, &["true"]).await?;
            ensure!(v["exit_code"] == 0, "service exec true: {v}");
            out.service.push(took);
        }
        for _ in 0..share(plan.execs, block) {
            let done = floor.exec(&["true"]).await?;
            ensure!(
                done.exit_code == 0,
                "floor exec true: exit {}",
                done.exit_code
            );
            out.floor_exec.push(done.took);
            out.floor_in_agent.push(done.in_agent);
        }
        for _ in 0..share(plan.execs, block) {
            out.floor_hello.push(floor.hello().await?);
        }
        for _ in 0..share(plan.docker_execs, block) {
            let (took, code, _) = raw.exec(b, &["true"]).await?;
            ensure!(code == 0, "docker exec true: exit {code}");
            out.docker.push(took);
        }
        for _ in 0..share(plan.programs, block) {
            let (took, v) = http_exec(api, chat, &program.argv).await?;
            ensure!(
                v["exit_code"] == 0 && v["stdout"] == program.expected,
                "service exec program: {v}"
            );
            out.program_http.push(took);
            if let Some(ms) = v["duration_ms"].as_u64() {
                out.program_agent.push(Duration::from_millis(ms));
            }
            if inside {
                out.program_inside
                    .push(timed_inside(ctx, chat, program).await?);
                let truth = Program {
                    argv: vec!["true"],
                    expected: "",
                };
                out.true_inside.push(timed_inside(ctx, chat, &truth).await?);
            }
        }
    }
    Ok(out)
}

/// The program's run time as the timer inside the sandbox saw it.
async fn timed_inside(ctx: &Ctx<'_>, chat: &str, program: &Program) -> anyhow::Result<Duration> {
    let mut argv = vec!["python3", "-c", INSIDE_TIMER];
    argv.extend(program.argv.iter().copied());
    let (_, v) = http_exec(ctx.api, chat, &argv).await?;
    let stdout = v["stdout"].as_str().context("no stdout")?;
    let (first, rest) = stdout.split_once('\n').context("no timer line")?;
    let mut fields = first.split(' ');
    let (Some("0"), Some(micros)) = (fields.next(), fields.next()) else {
        bail!("the timed program failed: {v}");
    };
    ensure!(
        rest == program.expected,
        "the timed program printed {rest:?}"
    );
    Ok(Duration::from_micros(
        micros.parse().context("timer micros")?,
    ))
}
