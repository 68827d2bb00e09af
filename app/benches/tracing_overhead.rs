//! What exporting traces costs a request: two `sandboxer serve` from the
//! same (release) binary, one exporting over OTLP/gRPC to an in-process
//! collector and one with tracing off, each with one chat sandbox. The
//! reuse path (`PUT /v1/chats/<chat>/sandbox` for the existing chat) is timed
//! on both in small interleaved batches, alternating which goes first, so
//! machine noise hits both alike. Prints p50 / p90 / p99 per service, the
//! on/off ratios (target: at most 1.05) and the service CPU per request.
//! To tell the cost of a span from the cost of shipping spans, the requests
//! of the exporting service during which an export batch reached the
//! collector are also counted and summarised apart.
//!
//! `cargo bench -p sandboxer --bench tracing_overhead`
//!
//! Environment: `TRACING_BENCH_REQUESTS` (timed requests per service, 2000),
//! `TRACING_BENCH_BATCH` (requests per batch, 10), `TRACING_BENCH_WARMUP`
//! (untimed requests per service first, 200). Needs the Docker Engine and
//! busybox-static (for the test image), like the black-box tests.

#[path = "../tests/support/mod.rs"]
mod support;
// The percentiles every bench shares; this one uses part of it.
#[allow(dead_code)]
#[path = "../../tools/bench/src/stats.rs"]
mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use sandboxer_telemetry::testing::OtlpCollector;
use stats::Samples;
use support::{Options, Service, chat};

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a count")),
        Err(_) => default,
    }
}

fn main() {
    let requests = env_usize("TRACING_BENCH_REQUESTS", 2000);
    let batch = env_usize("TRACING_BENCH_BATCH", 10).max(1);
    let warmup = env_usize("TRACING_BENCH_WARMUP", 200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(requests, batch, warmup));
}

/// One service under test and what was measured on it.
struct Side {
    label: &'static str,
    service: Service,
    url: String,
    client: Client,
    samples: Samples,
    /// The collector this side exports to, if any.
    collector: Option<Arc<OtlpCollector>>,
    /// Samples during which an export batch arrived at the collector.
    overlapped: Samples,
    /// The other samples.
    quiet: Samples,
}

impl Side {
    async fn start(
        label: &'static str,
        options: Options,
        collector: Option<Arc<OtlpCollector>>,
    ) -> Self {
        // Production log level: the per-request debug lines stay off.
        let service = Service::start(options.env("RUST_LOG", "info")).await;
        let url = format!("{}/v1/chats/{}/sandbox", service.url, chat("bench"));
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("an HTTP client");
        let mut side = Self {
            label,
            service,
            url,
            client,
            samples: Samples::default(),
            collector,
            overlapped: Samples::default(),
            quiet: Samples::default(),
        };
        let status = side.request().await.0;
        assert_eq!(status, StatusCode::CREATED, "{label}: the first PUT");
        side
    }

    /// One reuse-path PUT, timed from send to the last body byte.
    async fn request(&mut self) -> (StatusCode, Duration) {
        let started = Instant::now();
        let response = self
            .client
            .put(&self.url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.label));
        let status = response.status();
        response.bytes().await.expect("a body");
        (status, started.elapsed())
    }

    async fn batch(&mut self, n: usize, keep: bool) {
        let exports = |side: &Self| side.collector.as_ref().map(|c| c.export_requests());
        for _ in 0..n {
            let before = exports(self);
            let (status, took) = self.request().await;
            assert_eq!(status, StatusCode::OK, "{}: a reuse PUT", self.label);
            if keep {
                self.samples.push(took);
                if exports(self) != before {
                    self.overlapped.push(took);
                } else {
                    self.quiet.push(took);
                }
            }
        }
    }

    /// User + system CPU the service process used so far.
    fn cpu(&self) -> Duration {
        let pid = self.service.pid().expect("a running service");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
        // Fields after the `(comm)`; utime and stime are the 14th and 15th.
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10) // CLK_TCK is 100 on Linux
    }
}

/// The `p`th percentile of samples known not to be empty.
fn percentile(samples: &Samples, p: f64) -> Duration {
    samples.pct(p).expect("timed requests")
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn run(requests: usize, batch: usize, warmup: usize) {
    println!("binary: {}", env!("CARGO_BIN_EXE_sandboxer"));
    println!("load before: {}", load());
    let collector = Arc::new(OtlpCollector::start_grpc().await);
    collector.count_only();
    let mut on = Side::start(
        "export on",
        Options::default().env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        Some(Arc::clone(&collector)),
    )
    .await;
    let mut off = Side::start("export off", Options::default(), None).await;
    println!(
        "pids (for a profiler): export on {}, export off {}",
        on.service.pid().unwrap_or_default(),
        off.service.pid().unwrap_or_default()
    );

    for _ in 0..warmup.div_ceil(batch) {
        on.batch(batch, false).await;
        off.batch(batch, false).await;
    }
    let cpu_before = (on.cpu(), off.cpu());
    let started = Instant::now();
    for round in 0..requests.div_ceil(batch) {
        let n = batch.min(requests - round * batch);
        if round % 2 == 0 {
            on.batch(n, true).await;
            off.batch(n, true).await;
        } else {
            off.batch(n, true).await;
            on.batch(n, true).await;
        }
    }
    let wall = started.elapsed();
    let cpu = (on.cpu() - cpu_before.0, off.cpu() - cpu_before.1);
    println!("load after:  {}", load());

    // A clean shutdown flushes the exporter: every span sent is counted.
    let sent_requests = 1 + warmup.div_ceil(batch) * batch + requests;
    on.service.terminate().await;
    let spans = collector.span_count();
    let exports = collector.export_requests();
    assert!(spans > 0, "the exporting service sent no spans");

    println!(
        "\n{requests} timed reuse PUTs per service in batches of {batch} \
         (after {warmup} untimed), {:.1} s in all",
        wall.as_secs_f64()
    );
    println!(
        "{:<11} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "service", "p50 µs", "p90 µs", "p99 µs", "mean µs", "CPU µs/req"
    );
    let mut rows = Vec::new();
    for (side, cpu) in [(&on, cpu.0), (&off, cpu.1)] {
        let s = &side.samples;
        let mean = s.mean().expect("timed requests");
        let row = (
            percentile(s, 50.0),
            percentile(s, 90.0),
            percentile(s, 99.0),
            mean,
            cpu / u32::try_from(s.len()).unwrap(),
        );
        println!(
            "{:<11} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>12.0}",
            side.label,
            micros(row.0),
            micros(row.1),
            micros(row.2),
            micros(row.3),
            micros(row.4)
        );
        rows.push(row);
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let (r_on, r_off) = (rows[0], rows[1]);
    println!(
        "on/off      p50 {:.3}   p90 {:.3}   p99 {:.3}   mean {:.3}   CPU {:.3}   (target <= 1.05)",
        ratio(r_on.0, r_off.0),
        ratio(r_on.1, r_off.1),
        ratio(r_on.2, r_off.2),
        ratio(r_on.3, r_off.3),
        ratio(r_on.4, r_off.4),
    );
    println!(
        "spans exported: {spans} for {sent_requests} requests ({:.1} per request), \
         in {exports} export requests",
        spans as f64 / sent_requests as f64
    );
    // Where the tail of `export on` comes from.
    let quiet = &on.quiet;
    if !on.overlapped.is_empty() && !quiet.is_empty() {
        println!(
            "export on: {} of {} timed requests overlapped an export batch arriving \
             (their p50 {:.0} µs); without them p50 {:.0} µs, p99 {:.0} µs, \
             p99 on/off {:.3}",
            on.overlapped.len(),
            on.samples.len(),
            micros(percentile(&on.overlapped, 50.0)),
            micros(percentile(quiet, 50.0)),
            micros(percentile(quiet, 99.0)),
            ratio(percentile(quiet, 99.0), r_off.2),
        );
    }
}
