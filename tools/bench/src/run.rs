//! `sandboxer-bench run`: the service's latency and load figures next to the
//! same work done with raw bollard calls, exec latency down to the agent's
//! attach floor (and its chart), the service under concurrent load, live
//! processes (line latency, stream throughput, starts), its
//! memory (also with many idle sandboxes), one timed cleanup, and what is
//! left in Docker afterwards.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bollard::Docker;
use clap::{Args, ValueEnum};
use futures::FutureExt;

use crate::adapter::Adapter;
use crate::api::Api;
use crate::chart;
use crate::figures::Figures;
use crate::footprint;
use crate::machine::{self, loadavg, process_fds, process_kib};
use crate::phases::{self, Ctx};
use crate::raw::Raw;
use crate::report::Memory;
use crate::spawn::{Spawned, locate_binary};
use crate::summary::{Measured, json_report, leaks, print_report};

const DEFAULT_IMAGE: &str = "sandboxer-base:bookworm";

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Drive this running service instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// With --url: the service's `--instance`, to count its containers and volumes.
    #[arg(long, requires = "url")]
    pub instance: Option<String>,
    /// With --url: the service's pid, to read its memory.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
    /// The `sandboxer` binary to start (default: the one beside this
    /// executable, rebuilt first when run through `cargo run`).
    #[arg(long)]
    pub sandboxer_bin: Option<PathBuf>,
    /// Sandbox image (default: sandboxer-base:bookworm when Docker has it,
    /// else the busybox test image).
    #[arg(long)]
    pub image: Option<String>,
    /// Chats driven through the whole cycle (and as many raw containers).
    #[arg(long, default_value_t = 40)]
    pub chats: usize,
    /// Calls in flight at once, on each side.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Reuses (PUT on an existing chat) per chat.
    #[arg(long, default_value_t = 5)]
    pub reuse_rounds: usize,
    /// Idle sandboxes held for the memory figure; the same ones are then
    /// expired and reaped by one timed `POST /v1/cleanup` (0 skips both).
    #[arg(long, default_value_t = 200)]
    pub idle: usize,
    /// Of those, hibernated chats resumed one at a time (each next to a raw
    /// create and start on an existing volume).
    #[arg(long, default_value_t = 40)]
    pub resumes: usize,
    /// Warm execs of `true` over HTTP at concurrency 1, and as many agent
    /// `Exec`s and `Hello`s over the attach floor (0 skips the exec latency
    /// phase and its chart).
    #[arg(long, default_value_t = 1000)]
    pub exec_samples: usize,
    /// Raw `docker exec`s of `true` in the same phase.
    #[arg(long, default_value_t = 200)]
    pub docker_exec_samples: usize,
    /// Runs of the program over HTTP in the same phase, and as many timed
    /// inside the sandbox.
    #[arg(long, default_value_t = 40)]
    pub program_samples: usize,
    /// Execs sent at once into one sandbox (0 skips the burst).
    #[arg(long, default_value_t = 100)]
    pub burst: usize,
    /// Sandboxes driven through a short cycle under load (0 skips).
    #[arg(long, default_value_t = 20)]
    pub fleet: usize,
    /// Fleet sandboxes at a time.
    #[arg(long, default_value_t = 8)]
    pub fleet_concurrency: usize,
    /// Where to write the exec latency chart (SVG).
    #[arg(long, default_value = "bench-exec-latency.svg")]
    pub chart: PathBuf,
    /// Timestamped lines a process prints (one each 20 ms) for the
    /// write-to-follower latency (0 skips).
    #[arg(long, default_value_t = 200)]
    pub process_lines: usize,
    /// MiB a process writes to stdout, followed to its end (0 skips).
    #[arg(long, default_value_t = 200)]
    pub process_stream_mib: u64,
    /// Follow that stream in base64 only, not also in the default encoding.
    #[arg(long)]
    pub no_process_stream_auto: bool,
    /// Background process starts (`true`) at concurrency 1 (0 skips).
    #[arg(long, default_value_t = 200)]
    pub process_starts: usize,
    /// Warm sandboxes of the pool phase's own service (0 skips the phase);
    /// the main service runs without a pool, so its creates are cold.
    #[arg(long, default_value_t = 4)]
    pub pool_size: usize,
    /// New chats at concurrency 1 in the pool phase, the pool full before each.
    #[arg(long, default_value_t = 40)]
    pub pool_chats: usize,
    /// New chats sent at once in the pool phase (more than the pool).
    #[arg(long, default_value_t = 12)]
    pub pool_burst: usize,
    /// Run only this phase (after the warm-up).
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Extra flag for the started service, e.g. `--serve-arg=--cleanup-concurrency=16` (repeatable).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Also write the figures here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A phase run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// Live processes: line latency, stream throughput, starts.
    Processes,
    /// The warm pool (a service of its own).
    Pool,
}

/// Runs everything; `Ok(false)` when something was left behind in Docker.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let docker = sandboxer_docker::testing::raw_docker().await;
    let machine = machine::describe(&docker).await;
    let load_at_start = loadavg();
    let (image, image_note) = choose_image(&docker, args.image.clone()).await?;
    let run_id = format!("bench-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let raw = Raw {
        docker: docker.clone(),
        image: image.clone(),
        instance: format!("{run_id}-raw"),
    };
    let (spawned, url, instance, pid) = match &args.url {
        Some(url) => (None, url.clone(), args.instance.clone(), args.pid),
        None => {
            let bin = locate_binary(args.sandboxer_bin.as_deref())?;
            // No pool here: the create figures are cold creates.
            let mut serve_args = vec!["--warm-pool-size".to_owned(), "0".to_owned()];
            serve_args.extend(args.serve_args.iter().cloned());
            let s = Spawned::start(&bin, &image, &run_id, &serve_args).await?;
            let (url, pid) = (s.url.clone(), s.pid);
            (Some(s), url, Some(run_id.clone()), Some(pid))
        }
    };
    println!(
        "sandboxer-bench: {url} (instance {}), run {run_id}",
        instance.as_deref().unwrap_or("?")
    );
    println!("machine: {machine}");
    println!("load average at start: {load_at_start}");
    println!("image: {image} ({image_note})");

    let api = Api::new(&url, Duration::from_secs(300))?;
    let before = match &instance {
        Some(i) => Some(footprint::count(&docker, i).await?),
        None => None,
    };
    let adapter_instance = format!("{run_id}-adapter");
    let adapter = Adapter::connect(&image, &adapter_instance).await?;
    // A panic or Ctrl-C ends the measuring, never the cleanup below.
    let measuring = AssertUnwindSafe(async {
        let mut m = if args.only == Some(Only::Pool) {
            Measured::default()
        } else {
            measure(&api, &adapter, &raw, &args, pid, &run_id).await?
        };
        let wants_pool = args.only.is_none() || args.only == Some(Only::Pool);
        if wants_pool && args.pool_size > 0 && args.url.is_none() {
            m.pool = Some(pool_phase(&docker, &image, &args, &run_id).await?);
        }
        Ok(m)
    });
    let measured = tokio::select! {
        m = measuring.catch_unwind() => m.unwrap_or_else(|_| Err(anyhow::anyhow!("the measuring panicked"))),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let after = match &instance {
        Some(i) => Some(footprint::count(&docker, i).await?),
        None => None,
    };
    let mut raw_left = footprint::count(&docker, &raw.instance).await?;
    let adapter_left = footprint::count(&docker, &adapter_instance).await?;
    raw_left.containers += adapter_left.containers;
    raw_left.volumes += adapter_left.volumes;
    if let (Err(_), Some(s)) = (&measured, &spawned) {
        eprintln!("the service's log (last lines):\n{}", s.log_tail(20));
    }
    let stopped = match spawned {
        Some(s) => Some(s.stop().await),
        None => None,
    };
    // Whatever happened, nothing of ours stays in Docker.
    let mut removed = footprint::remove_all(&docker, &raw.instance).await?;
    let r = footprint::remove_all(&docker, &adapter_instance).await?;
    removed.containers += r.containers;
    removed.volumes += r.volumes;
    if args.url.is_none() {
        for instance in [run_id.clone(), format!("{run_id}-pool")] {
            let r = footprint::remove_all(&docker, &instance).await?;
            removed.containers += r.containers;
            removed.volumes += r.volumes;
        }
    }
    let measured = measured?;
    let load_at_end = loadavg();

    let leaks = leaks(before, after, raw_left);
    print_report(
        &args,
        &measured,
        &machine,
        &load_at_end,
        before,
        after,
        raw_left,
        removed,
    );
    if let Some(latency) = &measured.latency {
        chart::exec_latency_svg(&args.chart, latency, &machine.short())?;
        println!("exec latency chart: {}", args.chart.display());
    }
    match &stopped {
        Some(Ok(status)) if !status.success() => {
            eprintln!("warning: the service exited with {status}");
        }
        Some(Err(err)) => eprintln!("warning: stopping the service: {err:#}"),
        _ => {}
    }
    if let Some(path) = &args.json {
        let j = json_report(
            &args,
            &measured,
            &machine,
            &image,
            &load_at_start,
            &load_at_end,
            before,
            after,
            raw_left,
        );
        std::fs::write(path, serde_json::to_string_pretty(&j)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(leaks == 0)
}

/// The warm pool phase on a service of its own, stopped after; its
/// warm sandboxes are removed by the caller's sweep of `<run>-pool`.
async fn pool_phase(
    docker: &Docker,
    image: &str,
    args: &RunArgs,
    run_id: &str,
) -> anyhow::Result<phases::Pool> {
    let bin = locate_binary(args.sandboxer_bin.as_deref())?;
    let instance = format!("{run_id}-pool");
    let serve_args = vec!["--warm-pool-size".to_owned(), args.pool_size.to_string()];
    let service = Spawned::start(&bin, image, &instance, &serve_args).await?;
    let api = Api::new(&service.url, Duration::from_secs(300))?;
    let plan = (args.pool_size, args.pool_chats, args.pool_burst);
    let measured = phases::pool(&api, docker, &instance, plan, run_id).await;
    if measured.is_err() {
        eprintln!(
            "the pool service's log (last lines):\n{}",
            service.log_tail(20)
        );
    }
    let _ = service.stop().await;
    measured
}

async fn measure(
    api: &Api,
    adapter: &Adapter,
    raw: &Raw,
    args: &RunArgs,
    pid: Option<u32>,
    prefix: &str,
) -> anyhow::Result<Measured> {
    let rss = || pid.and_then(|p| process_kib(p, "VmRSS").ok());
    let fds = || pid.and_then(|p| process_fds(p).ok());
    let mut memory = Memory::default();
    let program = phases::warm_up(api, adapter, raw, &format!("{prefix}-warm")).await?;
    memory.after_warm_up = rss();
    let ctx = Ctx {
        api,
        adapter,
        raw,
        concurrency: args.concurrency,
        reuse_rounds: args.reuse_rounds,
        program: program.clone(),
        payload: phases::payload(),
    };
    let process_plan = phases::ProcessPlan {
        lines: args.process_lines,
        stream_mib: args.process_stream_mib,
        stream_auto: !args.no_process_stream_auto,
        starts: args.process_starts,
    };
    let live = move |chat: String| async move {
        let rss = move || pid.and_then(|p| process_kib(p, "VmRSS").ok());
        phases::processes::processes(api, &chat, process_plan, rss).await
    };
    if args.only == Some(Only::Processes) {
        let processes = Some(live(format!("{prefix}-proc")).await?);
        memory.after_cleanup = rss();
        memory.peak = pid.and_then(|p| process_kib(p, "VmHWM").ok());
        return Ok(Measured {
            figs: Figures::default(),
            program,
            memory,
            idle: None,
            latency: None,
            load: None,
            processes,
            pool: None,
        });
    }
    let chats: Vec<String> = (0..args.chats).map(|i| format!("{prefix}-c{i}")).collect();
    let half = args.chats / 2;
    let mut figs = Figures::default();
    // Service, adapter, raw, raw, adapter, service: drift on the machine
    // weighs on every side alike.
    phases::service_round(&ctx, &chats[..half], &mut figs).await?;
    phases::adapter_round(&ctx, half, &mut figs).await?;
    phases::raw_round(&ctx, half, &mut figs).await?;
    phases::raw_round(&ctx, args.chats - half, &mut figs).await?;
    phases::adapter_round(&ctx, args.chats - half, &mut figs).await?;
    phases::service_round(&ctx, &chats[half..], &mut figs).await?;
    memory.after_rounds = rss();
    let latency = if args.exec_samples > 0 {
        let plan = phases::LatencyPlan {
            execs: args.exec_samples,
            docker_execs: args.docker_exec_samples,
            programs: args.program_samples,
        };
        Some(phases::exec_latency(&ctx, &format!("{prefix}-lat"), plan).await?)
    } else {
        None
    };
    let plan = phases::LoadPlan {
        burst: args.burst,
        fleet: args.fleet,
        fleet_concurrency: args.fleet_concurrency,
    };
    let load = phases::load(&ctx, prefix, plan).await?;
    let processes = Some(live(format!("{prefix}-proc")).await?);
    let idle = if args.idle > 0 {
        let idle = phases::idle_and_cleanup(
            api,
            raw,
            (args.idle, args.resumes),
            args.concurrency,
            prefix,
            rss,
            fds,
        )
        .await?;
        memory.with_idle = idle.rss_idle_kib;
        Some(idle)
    } else {
        None
    };
    memory.after_cleanup = rss();
    memory.peak = pid.and_then(|p| process_kib(p, "VmHWM").ok());
    Ok(Measured {
        figs,
        program,
        memory,
        idle,
        latency,
        load: Some(load),
        processes,
        pool: None,
    })
}

/// `sandboxer-bench image`: the image `run` would use, for the drills.
pub async fn print_image() -> anyhow::Result<()> {
    let docker = sandboxer_docker::testing::raw_docker().await;
    let (image, note) = choose_image(&docker, None).await?;
    println!("{image}");
    eprintln!("image: {image} ({note})");
    Ok(())
}

async fn choose_image(
    docker: &Docker,
    wanted: Option<String>,
) -> anyhow::Result<(String, &'static str)> {
    if let Some(image) = wanted {
        return Ok((image, "chosen with --image"));
    }
    if docker.inspect_image(DEFAULT_IMAGE).await.is_ok() {
        return Ok((
            DEFAULT_IMAGE.to_owned(),
            "the default image, Debian bookworm with python3",
        ));
    }
    let tag = tokio::task::spawn_blocking(sandboxer_docker::testing::ensure_test_image).await?;
    Ok((
        tag,
        "the busybox test image: sandboxer-base:bookworm is not built here",
    ))
}
