//! `sandboxer-bench fire`: many concurrent requests at a service, for the
//! drills. Prints one JSON summary: statuses, error codes, 503s without
//! `Retry-After`, transport errors, latency percentiles and max, how many
//! different sessions each chat was given, and the answers' `result` and
//! `pool` values (PUT .../sandbox).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use reqwest::Method;
use reqwest::header::RETRY_AFTER;
use serde_json::json;

use crate::api::{Api, Body};
use crate::stats::{Samples, ms};

#[derive(Debug, Clone, Args)]
pub struct FireArgs {
    /// Base URL of the service.
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value = "PUT")]
    pub method: String,
    /// Request path; `{chat}` becomes `<chat-prefix>-<chat-offset + n mod chats>`
    /// for the nth request.
    #[arg(long)]
    pub path: String,
    #[arg(long, default_value = "fire")]
    pub chat_prefix: String,
    /// Distinct chats the requests are spread over.
    #[arg(long, default_value_t = 1)]
    pub chats: usize,
    /// First chat number (`<chat-prefix>-<offset + n mod chats>`).
    #[arg(long, default_value_t = 0)]
    pub chat_offset: usize,
    /// Requests to send (default: as many as fit in --duration-secs).
    #[arg(long)]
    pub count: Option<usize>,
    /// Keep sending until this much time has passed.
    #[arg(long)]
    pub duration_secs: Option<f64>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// JSON body to send.
    #[arg(long)]
    pub body: Option<String>,
    /// Pause of each worker between its requests, in ms (light load).
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u64,
    /// Client-side bound of one request.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Also write `chat session status` here for every answer that named a
    /// session, one per line.
    #[arg(long)]
    pub sessions_out: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Tally {
    latency: Samples,
    status: BTreeMap<String, u64>,
    codes: BTreeMap<String, u64>,
    missing_retry_after: u64,
    transport_errors: u64,
    error_samples: Vec<String>,
    sessions: HashMap<String, HashSet<String>>,
    answers: Vec<String>,
    /// `result` and `pool` of the answers that carry them (PUT .../sandbox).
    results: BTreeMap<String, u64>,
    pool: BTreeMap<String, u64>,
}

pub async fn fire(args: FireArgs) -> anyhow::Result<()> {
    if args.count.is_none() && args.duration_secs.is_none() {
        bail!("say how much: --count or --duration-secs");
    }
    let method: Method = args.method.to_uppercase().parse()?;
    let api = Api::new(&args.url, Duration::from_secs(args.timeout_secs))?;
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = args
        .duration_secs
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (api, next, tally, args, method) = (
            api.clone(),
            Arc::clone(&next),
            Arc::clone(&tally),
            args.clone(),
            method.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if args.count.is_some_and(|c| n >= c)
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return;
                }
                let chat = format!(
                    "{}-{}",
                    args.chat_prefix,
                    args.chat_offset + n % args.chats.max(1)
                );
                let path = args.path.replace("{chat}", &chat);
                let body = match &args.body {
                    Some(b) if b.trim_start().starts_with('{') => {
                        Body::Json(b.clone().into_bytes())
                    }
                    Some(b) => Body::Bytes(Bytes::from(b.clone())),
                    None => Body::None,
                };
                let sent = Instant::now();
                let answer = api.send(method.clone(), &path, body).await;
                let took = sent.elapsed();
                {
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    t.latency.push(took);
                    match answer {
                        Ok(a) => {
                            *t.status.entry(a.status.as_str().to_owned()).or_default() += 1;
                            if let Some(code) = a.code() {
                                *t.codes.entry(code).or_default() += 1;
                            }
                            if a.status.as_u16() == 503 && !a.headers.contains_key(RETRY_AFTER) {
                                t.missing_retry_after += 1;
                            }
                            let v = a.json();
                            if let Some(r) = v["result"].as_str() {
                                *t.results.entry(r.to_owned()).or_default() += 1;
                            }
                            if let Some(p) = v["pool"].as_str() {
                                *t.pool.entry(p.to_owned()).or_default() += 1;
                            }
                            if let Some(s) = v["session_id"].as_str() {
                                let line = format!("{chat} {s} {}", a.status.as_u16());
                                t.answers.push(line);
                                t.sessions.entry(chat).or_default().insert(s.to_owned());
                            }
                        }
                        Err(err) => {
                            t.transport_errors += 1;
                            if t.error_samples.len() < 3 {
                                t.error_samples.push(format!("{err:#}"));
                            }
                        }
                    }
                }
                if args.pause_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let q = |p: f64| t.latency.pct(p).map(ms);
    let summary = json!({
        "sent": t.latency.len(),
        "elapsed_s": started.elapsed().as_secs_f64(),
        "status": t.status,
        "codes": t.codes,
        "missing_retry_after": t.missing_retry_after,
        "transport_errors": t.transport_errors,
        "error_samples": t.error_samples,
        "latency_ms": {"p50": q(50.0), "p95": q(95.0), "p99": q(99.0), "max": t.latency.max().map(ms)},
        "chats_with_session": t.sessions.len(),
        "max_sessions_per_chat": t.sessions.values().map(HashSet::len).max().unwrap_or(0),
        "results": t.results,
        "pool": t.pool,
    });
    println!("{summary}");
    if let Some(path) = &args.sessions_out {
        let mut text = t.answers.join("\n");
        text.push('\n');
        std::fs::write(path, text)?;
    }
    Ok(())
}
