//! `inspect` latency on a running sandbox: p50 / p99 over N sequential calls
//! (after a warm-up), through `DockerSandboxRuntime` with the no-op tracer,
//! with the liveness cache off (every call asks the engine) and on (the
//! event stream connected first). N from `SANDBOXER_BENCH_N` (default 500).
//! Everything made is removed.
//!
//! `cargo bench -p sandboxer-docker --bench inspect`

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandboxer_core::domain::ContainerState;
use sandboxer_core::port::{SandboxRef, SandboxRuntime};
use sandboxer_core::trace::NoopTracer;
use sandboxer_docker::testing::{Cleanup, create_request, ensure_test_image, test_spec};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

const WARM_UP: usize = 50;
const CONNECT: Duration = Duration::from_secs(10);

// The percentiles every bench shares; this one uses part of it.
#[allow(dead_code)]
#[path = "../../../tools/bench/src/stats.rs"]
mod stats;

/// The `p`th percentile of samples known not to be empty.
fn pct(samples: &stats::Samples, p: f64) -> Duration {
    samples.pct(p).expect("N > 0 samples")
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let n: usize = std::env::var("SANDBOXER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let image = ensure_test_image();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for cache in [false, true] {
        rt.block_on(run(n, &image, cache));
    }
}

async fn run(n: usize, image: &str, cache: bool) {
    let cleanup = Cleanup::new();
    let config = DockerConfig {
        liveness_cache: cache,
        ..DockerConfig::default()
    };
    let runtime = DockerSandboxRuntime::connect(config, Arc::new(NoopTracer))
        .await
        .unwrap();
    let began = Instant::now();
    while cache && !runtime.liveness_stats().connected {
        assert!(
            began.elapsed() < CONNECT,
            "the event stream did not connect"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let request = create_request(test_spec(image, "runc"));
    cleanup.request(&request);
    let id = runtime.create(&request).await.unwrap();
    let sandbox = SandboxRef {
        session_id: request.session_id,
        chat_id: request.chat_id.clone(),
        container_id: Some(id),
    };
    let mut samples = stats::Samples::default();
    for i in 0..WARM_UP + n {
        let t = Instant::now();
        let state = runtime.inspect(&sandbox).await.unwrap();
        let took = t.elapsed();
        assert_eq!(state, ContainerState::Running);
        if i >= WARM_UP {
            samples.push(took);
        }
    }
    let stats = runtime.liveness_stats();
    println!(
        "inspect of a running sandbox, liveness cache {} ({} hits, {} real), N = {n}: \
         p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us",
        if cache { "on" } else { "off" },
        stats.hits,
        stats.real_inspects,
        us(pct(&samples, 50.0)),
        us(pct(&samples, 90.0)),
        us(pct(&samples, 99.0)),
        us(samples.max().expect("N > 0 samples")),
    );
    runtime.stop(&sandbox).await.unwrap();
    runtime
        .delete_workspace(&request.workspace.id())
        .await
        .unwrap();
    drop(cleanup);
}
