//! Where the service's time goes, from its own `/metrics`: every span feeds
//! the histogram `sandboxer_operation_duration_seconds{operation=<span>}`,
//! so scraping it before and after a phase gives, per span, how many calls
//! the phase made and the mean time spent in them.

use std::collections::BTreeMap;

use anyhow::Context;
use reqwest::Method;

use crate::api::{Api, Body};

const HISTOGRAM: &str = "sandboxer_operation_duration_seconds";
/// Spans of the scrape itself, not of the phase.
const SCRAPE_SPANS: &[&str] = &["GET /metrics", "SqliteSessionStore.count_active"];

/// Span name -> (seconds in it, calls).
pub type Spans = BTreeMap<String, (f64, u64)>;

pub async fn scrape(api: &Api) -> anyhow::Result<Spans> {
    let a = api.send(Method::GET, "/metrics", Body::None).await?;
    a.expect(200, "metrics")?;
    parse(std::str::from_utf8(&a.body).context("metrics are not UTF-8")?)
}

/// The sums and counts of the span histogram, added over results.
pub fn parse(text: &str) -> anyhow::Result<Spans> {
    let mut spans = Spans::new();
    for line in text.lines() {
        let (is_sum, rest) = if let Some(r) = line.strip_prefix(&format!("{HISTOGRAM}_sum{{")) {
            (true, r)
        } else if let Some(r) = line.strip_prefix(&format!("{HISTOGRAM}_count{{")) {
            (false, r)
        } else {
            continue;
        };
        let Some(name) = rest
            .split("operation=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("unreadable metric line {line:?}"))?;
        let entry = spans.entry(name.to_owned()).or_default();
        if is_sum {
            entry.0 += value;
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let calls = value as u64;
            entry.1 += calls;
        }
    }
    Ok(spans)
}

/// What happened between two scrapes, the scrape's own spans aside.
pub fn delta(before: &Spans, after: &Spans) -> Spans {
    after
        .iter()
        .filter(|(name, _)| !SCRAPE_SPANS.contains(&name.as_str()))
        .filter_map(|(name, (sum, count))| {
            let (s0, c0) = before.get(name).copied().unwrap_or_default();
            (*count > c0).then(|| (name.clone(), (sum - s0, count - c0)))
        })
        .collect()
}

pub fn add(into: &mut Spans, more: Spans) {
    for (name, (sum, count)) in more {
        let entry = into.entry(name).or_default();
        entry.0 += sum;
        entry.1 += count;
    }
}

/// `span mean ms x calls per request`, the longest first.
pub fn describe(spans: &Spans, requests: usize) -> Vec<String> {
    let mut rows: Vec<(&String, f64, f64)> = spans
        .iter()
        .map(|(name, (sum, count))| {
            #[allow(clippy::cast_precision_loss)]
            let (count, requests) = (*count as f64, requests.max(1) as f64);
            (name, sum / count * 1000.0, count / requests)
        })
        .collect();
    rows.sort_by(|a, b| (b.1 * b.2).total_cmp(&(a.1 * a.2)));
    rows.iter()
        .map(|(name, mean, per)| format!("{name} {mean:.3} ms x{per:.2}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_span_histogram_and_takes_deltas() {
        let before = parse(
            "# TYPE sandboxer_operation_duration_seconds histogram\n\
             sandboxer_operation_duration_seconds_bucket{operation=\"A\",result=\"ok\",le=\"0.001\"} 1\n\
             sandboxer_operation_duration_seconds_sum{operation=\"A\",result=\"ok\"} 0.5\n\
             sandboxer_operation_duration_seconds_count{operation=\"A\",result=\"ok\"} 2\n",
        )
        .unwrap();
        let after = parse(
            "sandboxer_operation_duration_seconds_sum{operation=\"A\",result=\"ok\"} 0.75\n\
             sandboxer_operation_duration_seconds_count{operation=\"A\",result=\"ok\"} 3\n\
             sandboxer_operation_duration_seconds_sum{operation=\"A\",result=\"failed\"} 1\n\
             sandboxer_operation_duration_seconds_count{operation=\"A\",result=\"failed\"} 1\n\
             sandboxer_operation_duration_seconds_sum{operation=\"GET /metrics\",result=\"ok\"} 1\n\
             sandboxer_operation_duration_seconds_count{operation=\"GET /metrics\",result=\"ok\"} 1\n",
        )
        .unwrap();
        assert_eq!(before["A"], (0.5, 2));
        let d = delta(&before, &after);
        assert_eq!(d.len(), 1);
        assert_eq!(d["A"], (1.25, 2));
        assert_eq!(describe(&d, 2), vec!["A 625.000 ms x1.00".to_owned()]);
    }
}
