//! `sandboxer-bench`: figures and drill helpers for `sandboxer serve`.
//!
//! - `run`: latency (p50 / p95 / p99) of the service's calls next to the
//!   same work done with raw bollard calls on the same container config,
//!   exec latency down to the agent's attach floor (with an SVG chart),
//!   the service under concurrent load, live processes (line latency to a
//!   follower, stream throughput, starts; alone with `--only processes`),
//!   its memory (also with many idle sandboxes), one timed cleanup, and
//!   what is left in Docker afterwards.
//! - `fire`: concurrent requests with a JSON summary, for the drills.
//! - `docker-proxy`: a Docker socket proxy that signals cut and restore.

mod adapter;
mod agent_report;
mod api;
mod chart;
mod figures;
mod fire;
mod floor;
mod footprint;
mod machine;
mod metrics;
mod phases;
mod proxy;
mod raw;
mod report;
mod run;
mod spawn;
mod stats;
mod summary;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sandboxer-bench",
    about = "Figures and drill helpers for sandboxer serve."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure the service next to raw Docker calls (starts its own service
    /// unless --url is given); exits 1 when anything was left in Docker.
    Run(run::RunArgs),
    /// Send concurrent requests to a service and print a JSON summary.
    Fire(fire::FireArgs),
    /// A Docker socket proxy: SIGUSR1 cuts, SIGHUP black-holes, SIGUSR2 restores.
    DockerProxy(proxy::ProxyArgs),
    /// Print the sandbox image `run` would use (builds the busybox test
    /// image when sandboxer-base:bookworm is missing).
    Image,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sandboxer-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Fire(args) => fire::fire(args).await.map(|()| true),
            Command::DockerProxy(args) => proxy::run(args).await.map(|()| true),
            Command::Image => run::print_image().await.map(|()| true),
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("sandboxer-bench: something was left behind in Docker (see above)");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("sandboxer-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
