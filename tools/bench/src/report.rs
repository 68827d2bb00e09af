//! Printing the figures: the latency table with the service/raw ratios,
//! memory, cleanup, footprint, and each target met or missed. The same
//! figures as JSON for `--json`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::figures::{CREATE, EXEC_TRUE, Figures, RAW_CREATE, REUSE, ROWS, Side};
use crate::stats::{Samples, ms};

/// Memory of the service at the moments that matter, in KiB.
#[derive(Debug, Default, Clone, Copy)]
pub struct Memory {
    pub after_warm_up: Option<u64>,
    pub after_rounds: Option<u64>,
    pub with_idle: Option<u64>,
    pub after_cleanup: Option<u64>,
    pub peak: Option<u64>,
}

const TARGET_CREATE_RATIO: f64 = 1.10;
const TARGET_REUSE_MS: f64 = 1.0;
const TARGET_EXEC_RATIO: f64 = 1.10;
const TARGET_CLEANUP_PER_S: f64 = 20.0;
const TARGET_IDLE_RSS_BYTES: f64 = 100e6;

pub fn p(s: Option<&Samples>, pct: f64) -> Option<f64> {
    s.and_then(|s| s.pct(pct)).map(ms)
}

pub fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub fn table(figs: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "times in ms; adapter = DockerSandboxRuntime alone (reuse: its inspect); x = service / raw, a/r = adapter / raw"
    );
    let _ = writeln!(
        out,
        "{:<12} {:>4} {:>7} {:>7} {:>7} {:>6} | {:>7} {:>7} | {:<13} {:>7} {:>7} {:>7} | {:>5} {:>5} {:>5} {:>5}",
        "operation",
        "n",
        "p50",
        "p95",
        "p99",
        "ops/s",
        "adapt50",
        "adapt95",
        "raw call",
        "p50",
        "p95",
        "p99",
        "x50",
        "x95",
        "x99",
        "a/r50"
    );
    for (ours, theirs) in ROWS {
        let s = figs.samples(Side::Service, ours);
        let a = figs.samples(Side::Adapter, ours);
        let r = theirs.and_then(|t| figs.samples(Side::Raw, t));
        let [s50, s95, s99] = [50.0, 95.0, 99.0].map(|q| p(s, q));
        let [a50, a95] = [50.0, 95.0].map(|q| p(a, q));
        let [r50, r95, r99] = [50.0, 95.0, 99.0].map(|q| p(r, q));
        let _ = writeln!(
            out,
            "{:<12} {:>4} {:>7} {:>7} {:>7} {:>6} | {:>7} {:>7} | {:<13} {:>7} {:>7} {:>7} | {:>5} {:>5} {:>5} {:>5}",
            ours,
            s.map_or(0, Samples::len),
            cell(s50),
            cell(s95),
            cell(s99),
            figs.throughput(Side::Service, ours)
                .map_or_else(|| "-".into(), |t| format!("{t:.1}")),
            cell(a50),
            cell(a95),
            theirs.unwrap_or("-"),
            cell(r50),
            cell(r95),
            cell(r99),
            cell(ratio(s50, r50)),
            cell(ratio(s95, r95)),
            cell(ratio(s99, r99)),
            cell(ratio(a50, r50)),
        );
    }
    out
}

/// Where the service's time goes, per operation: the client's mean next to
/// the mean time in each of the service's own spans and their calls per
/// request (from its `/metrics`).
pub fn breakdown(figs: &Figures) -> String {
    let mut out = String::from(
        "where the time goes (means, from the service's span histograms; x = calls per request):\n",
    );
    for (op, _) in ROWS {
        let (Some(samples), Some(spans)) = (figs.samples(Side::Service, op), figs.spans(op)) else {
            continue;
        };
        let client = samples.mean().map_or(0.0, ms);
        let _ = writeln!(
            out,
            "  {op:<12} client {client:.3} ms: {}",
            crate::metrics::describe(spans, samples.len()).join("; ")
        );
    }
    out
}

/// One set of samples as JSON: count, p50, p90, p95, p99 and max in ms.
pub fn samples_json(s: &Samples) -> Value {
    json!({
        "n": s.len(),
        "p50_ms": p(Some(s), 50.0),
        "p90_ms": p(Some(s), 90.0),
        "p95_ms": p(Some(s), 95.0),
        "p99_ms": p(Some(s), 99.0),
        "max_ms": s.max().map(ms),
    })
}

/// Rows of samples as JSON.
pub fn rows_json(figs: &Figures) -> Value {
    let one = |side: Side, op: &str| {
        figs.samples(side, op).map(|s| {
            let mut row = samples_json(s);
            row["ops_per_s"] = json!(figs.throughput(side, op));
            row
        })
    };
    Value::Array(
        ROWS.iter()
            .map(|(ours, theirs)| {
                json!({
                    "operation": ours,
                    "service_spans": figs.spans(ours).map(|spans| {
                        spans
                            .iter()
                            .map(|(name, (sum, count))| (name.clone(), json!({"seconds": sum, "calls": count})))
                            .collect::<serde_json::Map<_, _>>()
                    }),
                    "service": one(Side::Service, ours),
                    "adapter": one(Side::Adapter, ours),
                    "raw_call": theirs,
                    "raw": theirs.and_then(|t| one(Side::Raw, t)),
                })
            })
            .collect(),
    )
}

pub struct Verdict {
    pub name: String,
    pub measured: String,
    pub met: Option<bool>,
    pub by: String,
}

pub fn mib(kib: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let k = kib as f64;
    k / 1024.0
}

/// `value` against `limit`: met or missed, and by how much.
pub fn verdict(
    name: impl Into<String>,
    limit: f64,
    value: Option<f64>,
    unit: &str,
    higher_is_better: bool,
) -> Verdict {
    let met = value.map(|v| {
        if higher_is_better {
            v >= limit
        } else {
            v <= limit
        }
    });
    // A limit of 0 (no errors) has no percentage to be over by.
    let share = |over: f64| {
        if limit > 0.0 {
            format!(
                " ({:.0} % {})",
                over.abs() / limit * 100.0,
                if higher_is_better { "short" } else { "over" }
            )
        } else {
            String::new()
        }
    };
    let by = match (value, met) {
        (Some(v), Some(false)) => format!(
            "missed by {:.2}{unit}{}",
            (v - limit).abs(),
            share(v - limit)
        ),
        (Some(_), Some(true)) => "met".into(),
        _ => "not measured".into(),
    };
    Verdict {
        name: name.into(),
        measured: value.map_or_else(|| "-".into(), |v| format!("{v:.3}{unit}")),
        met,
        by,
    }
}

/// Each target of the brief, met or missed and by how much. Not asserted:
/// the figures are reported as measured.
pub fn targets(
    figs: &Figures,
    cleanup_per_s: Option<f64>,
    idle: usize,
    idle_rss_kib: Option<u64>,
) -> Vec<Verdict> {
    let svc = |op| p(figs.samples(Side::Service, op), 50.0);
    let raw = |op| p(figs.samples(Side::Raw, op), 50.0);
    let mut out = Vec::new();
    let create = ratio(svc(CREATE), raw(RAW_CREATE));
    out.push(verdict(
        "create p50 <= 1.10x raw create+start",
        TARGET_CREATE_RATIO,
        create,
        "x",
        false,
    ));
    out.push(verdict(
        "reuse p50 <= 1 ms",
        TARGET_REUSE_MS,
        svc(REUSE),
        " ms",
        false,
    ));
    let exec = ratio(svc(EXEC_TRUE), raw(EXEC_TRUE));
    out.push(verdict(
        "exec true p50 <= 1.10x raw exec",
        TARGET_EXEC_RATIO,
        exec,
        "x",
        false,
    ));
    out.push(verdict(
        "cleanup >= 20 sandboxes/s",
        TARGET_CLEANUP_PER_S,
        cleanup_per_s,
        "/s",
        true,
    ));
    #[allow(clippy::cast_precision_loss)]
    let rss_mb = idle_rss_kib.map(|k| k as f64 * 1024.0 / 1e6);
    let mut memory = verdict(
        "RSS < 100 MB with idle sandboxes",
        TARGET_IDLE_RSS_BYTES / 1e6,
        rss_mb,
        " MB",
        false,
    );
    memory.measured = format!("{} ({idle} idle)", memory.measured);
    out.push(memory);
    out
}
