//! Live processes (DESIGN section 10) in one warm sandbox: how long a line
//! a process writes takes to reach an HTTP follower, the streamed
//! throughput of a process writing a lot to stdout (with the service's RSS
//! growth meanwhile), and the start of a background process. Their text,
//! targets and JSON are here too.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_exec;
use crate::api::{Api, Body, processes_path, sandbox_path};
use crate::metrics::{self, Spans};
use crate::report::{Verdict, cell, p, samples_json, verdict};
use crate::stats::{Samples, ms};

const TARGET_LINE_P50_MS: f64 = 5.0;
const TARGET_STREAM_MB_S: f64 = 100.0;
const TARGET_STREAM_RSS_MB: f64 = 50.0;
const TARGET_START_P50_MS: f64 = 3.0;

/// How often the side task reads the service's RSS during a stream.
const RSS_EVERY: Duration = Duration::from_millis(50);
/// Between two timestamped lines.
const LINE_GAP_S: f64 = 0.02;
/// Before the first line, so the follower is attached when it comes.
const FIRST_LINE_AFTER_S: f64 = 0.5;

/// What the phase does (0 skips a part).
#[derive(Debug, Clone, Copy)]
pub struct ProcessPlan {
    /// Timestamped lines followed over HTTP.
    pub lines: usize,
    /// MiB a process writes to stdout (`head -c {n}M /dev/zero`).
    pub stream_mib: u64,
    /// Also follow that stream in the default (`auto`) encoding.
    pub stream_auto: bool,
    /// Starts of `true` at concurrency 1.
    pub starts: usize,
}

/// One followed stream of zeros, to its exit line.
#[derive(Debug, Clone)]
pub struct Streamed {
    pub encoding: &'static str,
    /// Decoded bytes, all zeros and contiguous.
    pub bytes: u64,
    /// Bytes on the wire (the NDJSON).
    pub wire: u64,
    pub events: u64,
    /// From the start request to the exit line.
    pub took: Duration,
    /// The start request alone.
    pub start: Duration,
    /// From the start request to the first output byte.
    pub first_byte: Option<Duration>,
    pub rss_before_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
}

impl Streamed {
    pub fn mb_per_s(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let b = self.bytes as f64;
        b / 1e6 / self.took.as_secs_f64()
    }

    pub fn rss_growth_mb(&self) -> Option<f64> {
        let (before, peak) = (self.rss_before_kib?, self.rss_peak_kib?);
        #[allow(clippy::cast_precision_loss)]
        let grown = peak.saturating_sub(before) as f64;
        Some(grown * 1024.0 / 1e6)
    }
}

#[derive(Debug, Default)]
pub struct Processes {
    pub plan: Option<ProcessPlan>,
    /// Write-to-follower latency of each line.
    pub lines: Samples,
    /// Lines received before their printed time (clock skew); counted as 0.
    pub lines_early: usize,
    /// The most negative such difference, in microseconds.
    pub lines_earliest_us: i64,
    /// Lines printed before the follower's answer came (left out).
    pub lines_before_follow: usize,
    /// Whether the image has python3 (the lines part needs it).
    pub python: bool,
    pub stream: Option<Streamed>,
    pub stream_auto: Option<Streamed>,
    /// `POST .../processes` of `true`, to the last byte of the answer.
    pub starts: Samples,
    /// Starts answered 429 (too many running) and retried.
    pub start_retries: usize,
    /// The service's spans during the starts (from its `/metrics`).
    pub start_spans: Option<Spans>,
}

/// The measuring in one sandbox, removed afterwards, also on failure.
pub async fn processes(
    api: &Api,
    chat: &str,
    plan: ProcessPlan,
    rss: impl Fn() -> Option<u64> + Send + Sync + 'static,
) -> anyhow::Result<Processes> {
    api.send(Method::PUT, &sandbox_path(chat), Body::None)
        .await?
        .expect(201, "processes create")?;
    let measured = measure(api, chat, plan, Arc::new(rss)).await;
    let stopped = api
        .send(Method::DELETE, &sandbox_path(chat), Body::None)
        .await;
    let m = measured?;
    stopped?.expect(204, "processes stop")?;
    Ok(m)
}

async fn measure(
    api: &Api,
    chat: &str,
    plan: ProcessPlan,
    rss: Arc<dyn Fn() -> Option<u64> + Send + Sync>,
) -> anyhow::Result<Processes> {
    // Warm: the first exec opens the service's attach to the agent.
    http_exec(api, chat, &["true"]).await?;
    let (_, v) = http_exec(api, chat, &["python3", "-c", "pass"]).await?;
    let mut out = Processes {
        plan: Some(plan),
        python: v["exit_code"] == 0,
        ..Processes::default()
    };
    if plan.lines > 0 && out.python {
        lines(api, chat, plan.lines, &mut out).await?;
    }
    if plan.starts > 0 {
        starts(api, chat, plan.starts, &mut out).await?;
    }
    if plan.stream_mib > 0 {
        out.stream = Some(stream(api, chat, plan.stream_mib, "base64", &rss).await?);
        if plan.stream_auto {
            out.stream_auto = Some(stream(api, chat, plan.stream_mib, "auto", &rss).await?);
        }
    }
    Ok(out)
}

/// `POST .../processes`; the answer once it is a 201.
async fn start(api: &Api, chat: &str, id: &str, cmd: &[&str]) -> anyhow::Result<Duration> {
    let body = serde_json::to_vec(&json!({ "cmd": cmd, "process_id": id }))?;
    let a = api
        .send(Method::POST, &processes_path(chat), Body::Json(body))
        .await?;
    a.expect(201, "process start")?;
    Ok(a.took)
}

fn output_path(chat: &str, id: &str, encoding: &str) -> String {
    format!(
        "{}/{id}/output?follow=true&stdout_offset=0&stderr_offset=0&encoding={encoding}",
        processes_path(chat)
    )
}

/// One NDJSON line of a follow stream.
#[derive(Debug, Deserialize)]
struct Event<'a> {
    stream: Option<&'a str>,
    offset: Option<u64>,
    #[serde(borrow)]
    data: Option<Cow<'a, str>>,
    encoding: Option<&'a str>,
    status: Option<&'a str>,
    exit_code: Option<i64>,
    stdout_offset: Option<u64>,
    error: Option<Value>,
}

/// Complete NDJSON lines out of body chunks.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn push(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let scanned = self.buf.len();
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut from = scanned;
        while let Some(i) = self.buf[from..].iter().position(|&b| b == b'\n') {
            let end = from + i;
            each(&self.buf[start..end])?;
            start = end + 1;
            from = start;
        }
        self.buf.drain(..start);
        Ok(())
    }
}

fn now_us() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A python process prints its CLOCK_REALTIME in microseconds, one line
/// every 20 ms, flushed as written; the bench follows its output and takes
/// each line's arrival (its own CLOCK_REALTIME: under runc the sandbox
/// shares the host's kernel clock) minus the printed time.
async fn lines(api: &Api, chat: &str, n: usize, out: &mut Processes) -> anyhow::Result<()> {
    let script = format!(
        "import time\ntime.sleep({FIRST_LINE_AFTER_S})\nfor i in range({n}):\n    print(time.clock_gettime_ns(time.CLOCK_REALTIME)//1000, flush=True)\n    time.sleep({LINE_GAP_S})\n"
    );
    let id = "bench-lines";
    start(api, chat, id, &["python3", "-u", "-c", &script]).await?;
    let mut response = api.open(&output_path(chat, id, "auto")).await?;
    let followed_at = now_us();
    ensure!(
        response.status() == 200,
        "lines follow: {}",
        response.status()
    );
    let mut frames = Lines::default();
    let mut text = String::new();
    let mut got = 0usize;
    let mut exited = false;
    while let Some(chunk) = response.chunk().await? {
        // One arrival time for what came together.
        let arrived = now_us();
        frames.push(&chunk, |line| {
            let e: Event = serde_json::from_slice(line).context("a follow line")?;
            if let Some(err) = &e.error {
                bail!("lines follow ended with {err}");
            }
            if e.status == Some("exited") {
                ensure!(e.exit_code == Some(0), "the lines process: {e:?}");
                exited = true;
                return Ok(());
            }
            let (Some("stdout"), Some(data)) = (e.stream, e.data) else {
                return Ok(());
            };
            ensure!(
                e.encoding == Some("utf-8"),
                "lines came as {:?}",
                e.encoding
            );
            text.push_str(&data);
            while let Some(nl) = text.find('\n') {
                let printed: i64 = text[..nl].trim().parse().context("a printed time")?;
                text.drain(..=nl);
                got += 1;
                if printed < followed_at {
                    out.lines_before_follow += 1;
                    continue;
                }
                let late = arrived - printed;
                if late < 0 {
                    out.lines_early += 1;
                    out.lines_earliest_us = out.lines_earliest_us.min(late);
                }
                out.lines
                    .push(Duration::from_micros(u64::try_from(late).unwrap_or(0)));
            }
            Ok(())
        })?;
        if exited {
            break;
        }
    }
    ensure!(exited, "the lines stream ended without its exit line");
    ensure!(got == n, "{got} lines of {n}");
    Ok(())
}

/// `n` starts of `true`, each with its own process id, one at a time.
async fn starts(api: &Api, chat: &str, n: usize, out: &mut Processes) -> anyhow::Result<()> {
    // One untimed start: the first pays for whatever is set up once.
    start(api, chat, "bench-start-warm", &["true"]).await?;
    let before = metrics::scrape(api).await.ok();
    for i in 0..n {
        let id = format!("bench-start-{i}");
        let body = serde_json::to_vec(&json!({ "cmd": ["true"], "process_id": id }))?;
        loop {
            let a = api
                .send(
                    Method::POST,
                    &processes_path(chat),
                    Body::Json(body.clone()),
                )
                .await?;
            if a.status == 429 {
                // Too many still running: not a start, wait and retry.
                out.start_retries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            a.expect(201, "process start")?;
            out.starts.push(a.took);
            break;
        }
    }
    if let (Some(before), Ok(after)) = (before, metrics::scrape(api).await) {
        out.start_spans = Some(metrics::delta(&before, &after));
    }
    Ok(())
}

/// A process writes `mib` MiB of zeros to stdout; the bench follows it to
/// the exit line in `encoding`, checks every byte is there once, in order,
/// and reads the service's RSS every 50 ms meanwhile.
async fn stream(
    api: &Api,
    chat: &str,
    mib: u64,
    encoding: &'static str,
    rss: &Arc<dyn Fn() -> Option<u64> + Send + Sync>,
) -> anyhow::Result<Streamed> {
    let want = mib * 1024 * 1024;
    let id = format!("bench-stream-{encoding}");
    let rss_before_kib = rss();
    let peak = Arc::new(AtomicU64::new(rss_before_kib.unwrap_or(0)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, rss) = (peak.clone(), done.clone(), rss.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RSS_EVERY);
            while !done.load(Ordering::Relaxed) {
                every.tick().await;
                if let Some(kib) = rss() {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        })
    };
    let count = format!("{mib}M");
    let t0 = Instant::now();
    let followed = async {
        let start_took = start(api, chat, &id, &["head", "-c", &count, "/dev/zero"]).await?;
        let mut response = api.open(&output_path(chat, &id, encoding)).await?;
        ensure!(
            response.status() == 200,
            "stream follow: {}",
            response.status()
        );
        let mut s = Streamed {
            encoding,
            bytes: 0,
            wire: 0,
            events: 0,
            took: Duration::ZERO,
            start: start_took,
            first_byte: None,
            rss_before_kib,
            rss_peak_kib: None,
        };
        let mut frames = Lines::default();
        let mut exited = false;
        while let Some(chunk) = response.chunk().await? {
            s.wire += chunk.len() as u64;
            frames.push(&chunk, |line| {
                let e: Event = serde_json::from_slice(line).context("a follow line")?;
                if let Some(err) = &e.error {
                    bail!("the stream ended with {err}");
                }
                if e.status == Some("exited") {
                    ensure!(e.exit_code == Some(0), "the stream process: {e:?}");
                    ensure!(
                        e.stdout_offset == Some(s.bytes),
                        "exit line at {:?}, read {}",
                        e.stdout_offset,
                        s.bytes
                    );
                    exited = true;
                    return Ok(());
                }
                let (Some(which), Some(data)) = (e.stream, e.data) else {
                    return Ok(());
                };
                ensure!(which == "stdout", "output on {which}: {data:?}");
                ensure!(
                    e.offset == Some(s.bytes),
                    "a gap: data at {:?}, {} read",
                    e.offset,
                    s.bytes
                );
                let n = zeros(&data, e.encoding)?;
                if s.first_byte.is_none() && n > 0 {
                    s.first_byte = Some(t0.elapsed());
                }
                s.bytes += n;
                s.events += 1;
                Ok(())
            })?;
            if exited {
                break;
            }
        }
        s.took = t0.elapsed();
        ensure!(exited, "the stream ended without its exit line");
        ensure!(s.bytes == want, "read {} bytes of {want}", s.bytes);
        Ok(s)
    }
    .await;
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let mut s = followed?;
    s.rss_peak_kib = rss_before_kib.map(|_| peak.load(Ordering::Relaxed));
    Ok(s)
}

/// The bytes `data` stands for, all checked to be zeros: base64 of zeros is
/// `A`s (and `=` padding), text is NUL characters.
fn zeros(data: &str, encoding: Option<&str>) -> anyhow::Result<u64> {
    match encoding {
        Some("base64") => {
            let b = data.as_bytes();
            ensure!(
                b.len().is_multiple_of(4),
                "base64 of {} characters",
                b.len()
            );
            let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
            ensure!(
                pad <= 2 && b[..b.len() - pad].iter().all(|&c| c == b'A'),
                "not zeros in base64"
            );
            Ok((b.len() / 4 * 3 - pad) as u64)
        }
        Some("utf-8") => {
            ensure!(data.bytes().all(|c| c == 0), "not zeros in text");
            Ok(data.len() as u64)
        }
        other => bail!("unknown encoding {other:?}"),
    }
}

fn at(s: &Samples, q: f64) -> Option<f64> {
    p(Some(s), q)
}

fn kib_mb(kib: Option<u64>) -> String {
    #[allow(clippy::cast_precision_loss)]
    kib.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 * 1024.0 / 1e6))
}

fn streamed_line(out: &mut String, s: &Streamed) {
    #[allow(clippy::cast_precision_loss)]
    let wire = s.wire as f64 / 1e6;
    let _ = writeln!(
        out,
        "  stream, encoding {:<6}: {} bytes ({:.1} MB on the wire, {} events) in {:.3} s = {:.1} MB/s; start {:.2} ms, first byte {} ms; service RSS {} MB before, {} MB at peak (+{} MB)",
        s.encoding,
        s.bytes,
        wire,
        s.events,
        s.took.as_secs_f64(),
        s.mb_per_s(),
        ms(s.start),
        cell(s.first_byte.map(ms)),
        kib_mb(s.rss_before_kib),
        kib_mb(s.rss_peak_kib),
        cell(s.rss_growth_mb()),
    );
}

pub fn text(m: &Processes) -> String {
    let mut out = String::from("live processes in one warm sandbox (times in ms):\n");
    let _ = writeln!(
        out,
        "  {:<40} {:>5} {:>8} {:>8} {:>8} {:>8}",
        "what", "n", "p50", "p90", "p99", "max"
    );
    let row = |out: &mut String, name: &str, s: &Samples| {
        let _ = writeln!(
            out,
            "  {name:<40} {:>5} {:>8} {:>8} {:>8} {:>8}",
            s.len(),
            cell(at(s, 50.0)),
            cell(at(s, 90.0)),
            cell(at(s, 99.0)),
            cell(s.max().map(ms)),
        );
    };
    if m.python {
        row(&mut out, "line written -> HTTP follower (NDJSON)", &m.lines);
        let _ = writeln!(
            out,
            "    {} lines received before their printed time (clock skew, counted as 0; earliest {} us); {} printed before the follower attached (left out)",
            m.lines_early, m.lines_earliest_us, m.lines_before_follow
        );
    } else {
        out.push_str("  line latency: skipped, the image has no python3\n");
    }
    row(&mut out, "start of `true` (POST .../processes)", &m.starts);
    if let Some(spans) = &m.start_spans {
        let _ = writeln!(
            out,
            "    where a start's time goes (means; x = calls per start): {}",
            metrics::describe(spans, m.starts.len()).join("; ")
        );
    }
    if m.start_retries > 0 {
        let _ = writeln!(
            out,
            "    {} starts answered 429 and retried",
            m.start_retries
        );
    }
    for s in [&m.stream, &m.stream_auto].into_iter().flatten() {
        streamed_line(&mut out, s);
    }
    out
}

pub fn targets(m: Option<&Processes>) -> Vec<Verdict> {
    let stream = m.and_then(|m| m.stream.as_ref());
    let mib = m.and_then(|m| m.plan).map_or(0, |p| p.stream_mib);
    vec![
        verdict(
            "process line -> HTTP follower p50 <= 5 ms",
            TARGET_LINE_P50_MS,
            m.and_then(|m| at(&m.lines, 50.0)),
            " ms",
            false,
        ),
        verdict(
            format!("{mib} MiB stdout streamed >= 100 MB/s"),
            TARGET_STREAM_MB_S,
            stream.map(Streamed::mb_per_s),
            " MB/s",
            true,
        ),
        verdict(
            "RSS growth while streaming < 50 MB",
            TARGET_STREAM_RSS_MB,
            stream.and_then(Streamed::rss_growth_mb),
            " MB",
            false,
        ),
        verdict(
            "background process start p50 <= 3 ms",
            TARGET_START_P50_MS,
            m.and_then(|m| at(&m.starts, 50.0)),
            " ms",
            false,
        ),
    ]
}

fn streamed_json(s: &Streamed) -> Value {
    json!({
        "encoding": s.encoding,
        "bytes": s.bytes,
        "wire_bytes": s.wire,
        "events": s.events,
        "seconds": s.took.as_secs_f64(),
        "mb_per_s": s.mb_per_s(),
        "start_ms": ms(s.start),
        "first_byte_ms": s.first_byte.map(ms),
        "rss_before_kib": s.rss_before_kib,
        "rss_peak_kib": s.rss_peak_kib,
        "rss_growth_mb": s.rss_growth_mb(),
    })
}

pub fn json(m: Option<&Processes>) -> Value {
    m.map_or(Value::Null, |m| {
        json!({
            "line_to_follower": samples_json(&m.lines),
            "lines_early": m.lines_early,
            "lines_before_follow": m.lines_before_follow,
            "starts": samples_json(&m.starts),
            "start_retries": m.start_retries,
            "stream_base64": m.stream.as_ref().map(streamed_json),
            "stream_auto": m.stream_auto.as_ref().map(streamed_json),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks() {
        let mut l = Lines::default();
        let mut seen = Vec::new();
        for chunk in [&b"{\"a\":1}\n{\"b\""[..], b":2}", b"\n\n{}"] {
            l.push(chunk, |line| {
                seen.push(String::from_utf8(line.to_vec())?);
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(seen, ["{\"a\":1}", "{\"b\":2}", ""]);
        assert_eq!(l.buf, b"{}");
    }

    #[test]
    fn counts_zeros() {
        assert_eq!(zeros("AAAA", Some("base64")).unwrap(), 3);
        assert_eq!(zeros("AA==", Some("base64")).unwrap(), 1);
        assert_eq!(zeros("AAA=", Some("base64")).unwrap(), 2);
        assert!(zeros("AQ==", Some("base64")).is_err());
        assert_eq!(zeros("\0\0", Some("utf-8")).unwrap(), 2);
        assert!(zeros("a", Some("utf-8")).is_err());
    }
}
