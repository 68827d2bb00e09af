//! MetricsTracer: span durations and failures in the Prometheus text, with
//! the span's own `result` and `error.type` as labels. Each test records
//! into its own local recorder.

use std::borrow::Cow;
use std::sync::Arc;

use sandboxer_core::port::tracer::{self, Parent, SpanKind, Tracer};
use sandboxer_core::testing::{RecordingTracer, SpanStatus};
use sandboxer_core::trace::attr::{ErrorClass, key, result, span};
use sandboxer_core::trace::{NoopTracer, in_span};
use sandboxer_telemetry::metric::names;
use sandboxer_telemetry::{
    LocalMetrics, MetricsTracer, set_active_sandboxes, set_hibernated_sandboxes, set_node,
    set_workspace_bytes,
};

const DOCKER_CREATE: &str = "DockerSandboxRuntime.create";
const DOCKER_STOP: &str = "DockerSandboxRuntime.stop";

fn ended(tracer: &dyn Tracer, name: &'static str, attrs: &[(&'static str, &'static str)]) {
    let mut span = tracer::start(tracer, name, SpanKind::Internal);
    for (k, v) in attrs {
        span.set_attribute(k, (*v).into());
    }
    span.end();
}

fn failed(tracer: &dyn Tracer, name: &'static str, error: &'static str) {
    let mut span = tracer.start_span(Cow::Borrowed(name), SpanKind::Client, Parent::Current);
    span.set_attribute(key::RESULT, result::FAILED.into());
    span.set_error(error, "it broke");
    span.end();
}

/// The sample line `name{labels} value`, panicking with the whole text if absent.
fn sample(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    line[series.len()..].trim().parse().unwrap()
}

#[test]
fn use_case_and_docker_spans_feed_histograms_and_failures() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        ended(
            &tracer,
            span::CREATE_SANDBOX,
            &[(key::RESULT, result::CREATED)],
        );
        ended(
            &tracer,
            span::CREATE_SANDBOX,
            &[(key::RESULT, result::REUSED)],
        );
        ended(
            &tracer,
            span::CREATE_SANDBOX,
            &[(key::RESULT, result::REUSED)],
        );
        failed(
            &tracer,
            span::CREATE_SANDBOX,
            ErrorClass::ImageNotFound.as_str(),
        );
        ended(&tracer, span::EXEC, &[]);
        ended(&tracer, span::CLEANUP, &[(key::RESULT, result::OK)]);
        ended(&tracer, DOCKER_STOP, &[(key::RESULT, result::ALREADY_GONE)]);
        failed(&tracer, DOCKER_CREATE, ErrorClass::ImageNotFound.as_str());
        failed(&tracer, DOCKER_CREATE, ErrorClass::ImageNotFound.as_str());
        failed(
            &tracer,
            DOCKER_CREATE,
            ErrorClass::RuntimeUnavailable.as_str(),
        );
    });
    let text = metrics.handle().render();

    let create = names::CREATE_DURATION;
    assert_eq!(
        sample(&text, &format!("{create}_count{{result=\"created\"}}")),
        1.0
    );
    assert_eq!(
        sample(&text, &format!("{create}_count{{result=\"reused\"}}")),
        2.0
    );
    assert_eq!(
        sample(&text, &format!("{create}_count{{result=\"failed\"}}")),
        1.0
    );
    // Fast spans land in the smallest bucket; the top bucket counts all.
    assert_eq!(
        sample(
            &text,
            &format!("{create}_bucket{{result=\"reused\",le=\"60\"}}")
        ),
        2.0
    );
    assert!(text.contains(&format!(
        "{create}_bucket{{result=\"reused\",le=\"0.0001\"}}"
    )));
    assert!(text.contains(&format!("# TYPE {create} histogram")));

    assert_eq!(
        sample(
            &text,
            &format!("{}_count{{result=\"ok\"}}", names::EXEC_DURATION)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("{}_count{{result=\"ok\"}}", names::CLEANUP_DURATION)
        ),
        1.0
    );
    let op = names::OPERATION_DURATION;
    assert_eq!(
        sample(
            &text,
            &format!("{op}_count{{operation=\"{DOCKER_STOP}\",result=\"already_gone\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("{op}_count{{operation=\"{DOCKER_CREATE}\",result=\"failed\"}}")
        ),
        3.0
    );
    assert!(
        !text.contains(&format!(
            "{op}_count{{operation=\"{}\"",
            span::CREATE_SANDBOX
        )),
        "use cases with their own histogram are not counted twice"
    );

    let failures = names::FAILURES;
    assert_eq!(
        sample(
            &text,
            &format!("{failures}{{operation=\"{DOCKER_CREATE}\",error_type=\"image_not_found\"}}")
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "{failures}{{operation=\"{DOCKER_CREATE}\",error_type=\"runtime_unavailable\"}}"
            )
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "{failures}{{operation=\"{}\",error_type=\"image_not_found\"}}",
                span::CREATE_SANDBOX
            )
        ),
        1.0
    );
    assert!(
        !text.contains(&format!("{failures}{{operation=\"{DOCKER_STOP}\"")),
        "a span without error is no failure"
    );
}

#[test]
fn a_span_is_measured_once_however_it_ends() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        let mut twice = tracer::start(&tracer, span::EXEC, SpanKind::Internal);
        twice.end();
        twice.end();
        drop(twice);
        let _dropped = tracer::start(&tracer, span::EXEC, SpanKind::Internal);
    });
    let text = metrics.handle().render();
    assert_eq!(
        sample(
            &text,
            &format!("{}_count{{result=\"ok\"}}", names::EXEC_DURATION)
        ),
        2.0
    );
}

#[test]
fn a_span_lasting_longer_lands_in_a_higher_bucket() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        let span = tracer::start(&tracer, span::CLEANUP, SpanKind::Internal);
        std::thread::sleep(std::time::Duration::from_millis(30));
        drop(span);
    });
    let text = metrics.handle().render();
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(
                "{}_bucket{{result=\"ok\",le=\"{le}\"}}",
                names::CLEANUP_DURATION
            ),
        )
    };
    assert_eq!(bucket("0.025"), 0.0);
    assert_eq!(bucket("0.05"), 1.0);
    let sum = sample(
        &text,
        &format!("{}_sum{{result=\"ok\"}}", names::CLEANUP_DURATION),
    );
    assert!((0.03..1.0).contains(&sum), "{sum}");
}

/// The decorator is transparent: the wrapped tracer sees the same spans,
/// attributes, errors and parenting.
#[tokio::test]
async fn the_wrapped_tracer_sees_everything() {
    let recording = RecordingTracer::new();
    let tracer = MetricsTracer::new(Arc::new(recording.clone()));
    let mut parent = tracer::start(&tracer, span::CREATE_SANDBOX, SpanKind::Internal);
    parent.set_attribute(key::GENERATION, 7_i64.into());
    in_span(&*parent, async {
        failed(&tracer, DOCKER_CREATE, ErrorClass::Timeout.as_str());
    })
    .await;
    parent.end();
    let parent = recording.one(span::CREATE_SANDBOX);
    let child = recording.one(DOCKER_CREATE);
    assert!(child.is_child_of(&parent));
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(parent.int(key::GENERATION), Some(7));
    assert_eq!(child.error_type(), Some("timeout"));
    assert_eq!(child.status, SpanStatus::Error("it broke".into()));
}

/// Processes: a start that made one counts it started and running, its
/// end takes it off the running gauge, a kill counts killed; a repeated
/// start counts nothing.
#[test]
fn process_spans_feed_the_process_metrics() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        for _ in 0..3 {
            ended(
                &tracer,
                span::START_PROCESS,
                &[(key::RESULT, result::CREATED)],
            );
        }
        ended(
            &tracer,
            span::START_PROCESS,
            &[(key::RESULT, result::REUSED)],
        );
        ended(&tracer, span::PROCESS_EXITED, &[]);
        ended(&tracer, span::KILL_PROCESS, &[(key::RESULT, result::OK)]);
        failed(
            &tracer,
            span::KILL_PROCESS,
            ErrorClass::ProcessNotFound.as_str(),
        );
    });
    let text = metrics.handle().render();
    assert_eq!(sample(&text, names::PROCESSES_STARTED), 3.0);
    assert_eq!(sample(&text, names::PROCESSES_RUNNING), 2.0);
    assert_eq!(sample(&text, names::PROCESSES_KILLED), 1.0);
}

#[test]
fn the_sandbox_gauges_are_settable() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        set_active_sandboxes(5);
        set_active_sandboxes(3);
        set_hibernated_sandboxes(7);
        set_hibernated_sandboxes(4);
    });
    let text = metrics.handle().render();
    assert_eq!(sample(&text, names::ACTIVE_SANDBOXES), 3.0);
    assert!(text.contains(&format!("# TYPE {} gauge", names::ACTIVE_SANDBOXES)));
    assert_eq!(sample(&text, names::HIBERNATED_SANDBOXES), 4.0);
    assert!(text.contains(&format!("# TYPE {} gauge", names::HIBERNATED_SANDBOXES)));
}

/// A span with a cleanup run's counts of hibernated sandboxes and deleted workspaces.
fn cleanup_run(tracer: &dyn Tracer, name: &'static str, hibernated: i64, deleted: i64) {
    let mut span = tracer::start(tracer, name, SpanKind::Internal);
    span.set_attribute(key::CLEANUP_HIBERNATED, hibernated.into());
    span.set_attribute(key::CLEANUP_WORKSPACES_DELETED, deleted.into());
    span.end();
}

fn refill(tracer: &dyn Tracer, ready: i64, failed: i64) {
    let mut span = tracer::start(tracer, span::POOL_REFILL, SpanKind::Internal);
    span.set_attribute(key::POOL_SIZE, ready.into());
    span.set_attribute(key::CLEANUP_FAILED, failed.into());
    span.end();
}

/// Creates count pool hits and misses (not a pool that is off); a refill
/// sets the ready gauge and adds its failures.
#[test]
fn pool_spans_feed_the_pool_metrics() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        for used in ["hit", "hit", "miss", "off"] {
            ended(
                &tracer,
                span::CREATE_SANDBOX,
                &[(key::RESULT, result::CREATED), (key::POOL, used)],
            );
        }
        refill(&tracer, 3, 2);
        refill(&tracer, 4, 0);
    });
    let text = metrics.handle().render();
    let value = |line_start: &str| {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .to_owned()
    };
    assert_eq!(value("sandboxer_pool_claims_total{result=\"hit\"}"), "2");
    assert_eq!(value("sandboxer_pool_claims_total{result=\"miss\"}"), "1");
    assert!(!text.contains("result=\"off\""));
    assert_eq!(value("sandboxer_pool_ready"), "4");
    assert_eq!(value("sandboxer_pool_refill_failures_total"), "2");
}

/// A cleanup span's counts add to their counters, a run with none adds
/// zero (the counters exist from then on), and the same keys on another
/// span count nothing; `resumed` and `hibernated` are results like others.
#[test]
fn cleanup_counts_feed_their_counters() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        cleanup_run(&tracer, span::CLEANUP, 0, 0);
    });
    let text = metrics.handle().render();
    assert_eq!(sample(&text, names::CLEANUP_HIBERNATED), 0.0);
    assert_eq!(sample(&text, names::CLEANUP_WORKSPACES_DELETED), 0.0);
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        cleanup_run(&tracer, span::CLEANUP, 3, 1);
        cleanup_run(&tracer, span::CLEANUP, 2, 4);
        cleanup_run(&tracer, span::CLEANUP_SESSION, 100, 100);
        ended(
            &tracer,
            span::CREATE_SANDBOX,
            &[(key::RESULT, result::RESUMED)],
        );
        ended(
            &tracer,
            span::HIBERNATE_SANDBOX,
            &[(key::RESULT, result::HIBERNATED)],
        );
    });
    let text = metrics.handle().render();
    assert_eq!(sample(&text, names::CLEANUP_HIBERNATED), 5.0);
    assert_eq!(sample(&text, names::CLEANUP_WORKSPACES_DELETED), 5.0);
    assert_eq!(
        sample(
            &text,
            &format!("{}_count{{result=\"resumed\"}}", names::CREATE_DURATION)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "{}_count{{operation=\"{}\",result=\"hibernated\"}}",
                names::OPERATION_DURATION,
                span::HIBERNATE_SANDBOX
            )
        ),
        1.0
    );
}

/// The family a sample line belongs to: its name, less a histogram's suffix.
fn family<'a>(line: &'a str, histograms: &[&str]) -> &'a str {
    let name = line.split(['{', ' ']).next().unwrap_or(line);
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| {
            name.strip_suffix(suffix)
                .filter(|base| histograms.contains(base))
        })
        .unwrap_or(name)
}

/// After every kind of span and the gauge, the registry holds exactly the
/// families of `names::ALL`, each with its HELP and TYPE, named as
/// Prometheus asks (durations in `_seconds`, counters in `_total`).
#[test]
fn every_family_is_listed_described_and_typed() {
    let metrics = LocalMetrics::new();
    metrics.in_scope(|| {
        let tracer = MetricsTracer::new(Arc::new(NoopTracer));
        ended(
            &tracer,
            span::CREATE_SANDBOX,
            &[(key::RESULT, result::CREATED), (key::POOL, "hit")],
        );
        ended(&tracer, span::EXEC, &[]);
        cleanup_run(&tracer, span::CLEANUP, 1, 1);
        refill(&tracer, 2, 1);
        ended(
            &tracer,
            span::START_PROCESS,
            &[(key::RESULT, result::CREATED)],
        );
        ended(&tracer, span::KILL_PROCESS, &[(key::RESULT, result::OK)]);
        ended(&tracer, span::PROCESS_EXITED, &[]);
        let mut http = tracer.start_span(
            Cow::Borrowed("PUT /v1/chats/{chat_id}/sandbox"),
            SpanKind::Server,
            Parent::Root,
        );
        http.set_error(ErrorClass::RuntimeUnavailable.as_str(), "down");
        http.end();
        failed(
            &tracer,
            DOCKER_CREATE,
            ErrorClass::RuntimeUnavailable.as_str(),
        );
        set_active_sandboxes(1);
        set_hibernated_sandboxes(1);
        set_workspace_bytes(4096);
        set_node("n1", true, 1, 500, 512, 4096);
    });
    let text = metrics.handle().render();

    let mut types = std::collections::BTreeMap::new();
    let mut helps = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name, kind);
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            assert!(!help.trim().is_empty(), "{name} has an empty HELP");
            helps.insert(name);
        }
    }
    let histograms: Vec<&str> = types
        .iter()
        .filter(|(_, kind)| **kind == "histogram")
        .map(|(name, _)| *name)
        .collect();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = family(line, &histograms);
        assert!(types.contains_key(name), "{name} has no TYPE:\n{text}");
        assert!(helps.contains(name), "{name} has no HELP:\n{text}");
    }
    let listed: std::collections::BTreeMap<&str, &str> = names::ALL
        .iter()
        .map(|(name, kind, _)| (*name, kind.as_str()))
        .collect();
    assert_eq!(types, listed, "rendered families against names::ALL");
    for (name, kind) in listed {
        assert!(name.starts_with("sandboxer_"), "{name}");
        match kind {
            "histogram" => assert!(name.ends_with("_seconds"), "{name}: base unit"),
            "counter" => assert!(name.ends_with("_total"), "{name}: counters end in _total"),
            _ => assert!(
                !name.ends_with("_total"),
                "{name}: only counters end in _total"
            ),
        }
    }
}
