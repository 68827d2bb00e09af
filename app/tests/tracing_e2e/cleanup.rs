//! Cleanup runs: one asked for over HTTP hangs under its request's span,
//! one started by the background interval is a root span of its own; both
//! carry their counts and a `cleanup_session` child per expired session,
//! which hibernates it.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use sandboxer_telemetry::testing::{CollectedKind, CollectedSpan};

use crate::calls::{put, send, start_orphan, text, trace_id};
use crate::support::{Options, chat};
use crate::traces::{Trace, summary, wait_for, wait_for_trace};
use crate::{
    CLEANUP, CLEANUP_SESSION, DOCKER_LIST, DOCKER_STOP, POST_CLEANUP, RECONCILE, assert_http,
    assert_ok, traced,
};

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_on_demand_hangs_under_its_http_span_with_counts_and_one_child_per_session() {
    let (collector, service) = traced(Options::default()).await;
    let mut sessions = Vec::new();
    for prefix in ["trace-reap-a", "trace-reap-b"] {
        let (status, _, made) = put(&service, &chat(prefix), r#"{"ttl_seconds":1}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        sessions.push(made);
    }
    let (orphan, orphan_session) = start_orphan(&service);
    // Nothing to wait on: the TTL has to pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (status, headers, counts) = send(&service, Method::POST, "/v1/cleanup", "", &[]).await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    for (field, want) in [
        ("expired", 2),
        ("hibernated", 2),
        ("removed", 0),
        ("failed", 0),
        ("orphans_removed", 1),
    ] {
        assert_eq!(counts[field], want, "{field}: {counts}");
    }
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[POST_CLEANUP, CLEANUP, RECONCILE, DOCKER_LIST],
    )
    .await;
    let http = assert_http(&trace, POST_CLEANUP, "/v1/cleanup", status);
    let cleanup = trace.child(&http, CLEANUP);
    assert_cleanup_run(&trace, cleanup, &counts, &sessions);
    // Reconcile found the orphan and removed it.
    let reconcile = trace.child(cleanup, RECONCILE);
    assert_eq!(reconcile.int("sandbox.cleanup.orphans_removed"), Some(1));
    let list = trace.child(reconcile, DOCKER_LIST);
    assert_eq!(list.kind, CollectedKind::Client);
    assert_eq!(
        list.int("sandbox.active_sessions"),
        Some(1),
        "listed after the expired ones went: the orphan only"
    );
    let stop = trace.child(reconcile, DOCKER_STOP);
    assert_eq!(stop.str("container.id"), Some(orphan.as_str()));
    assert_eq!(stop.str("session.id"), Some(orphan_session.as_str()));
    trace.assert_rooted_at(&http);
    assert!(service.containers().is_empty(), "cleanup left containers");
    assert_eq!(
        service.volumes().len(),
        2,
        "the hibernated chats' workspaces stay"
    );
}

/// A cleanup run's span: its counts as the API reported them, and one
/// `cleanup_session` per expired session, each stopping its container.
fn assert_cleanup_run(trace: &Trace, cleanup: &CollectedSpan, counts: &Value, sessions: &[Value]) {
    assert_eq!(cleanup.kind, CollectedKind::Internal);
    assert_ok(cleanup);
    assert_eq!(cleanup.str("sandbox.operation"), Some("cleanup"));
    for (key, field) in [
        ("sandbox.cleanup.expired", "expired"),
        ("sandbox.cleanup.hibernated", "hibernated"),
        ("sandbox.cleanup.removed", "removed"),
        ("sandbox.cleanup.failed", "failed"),
        ("sandbox.cleanup.orphans_removed", "orphans_removed"),
    ] {
        assert_eq!(
            cleanup.int(key),
            counts[field].as_i64(),
            "{key}: {cleanup:?}"
        );
    }
    let per_session = trace.children(cleanup, CLEANUP_SESSION);
    assert_eq!(
        per_session.len(),
        sessions.len(),
        "one cleanup_session per expired session:\n{}",
        summary(&trace.spans)
    );
    let seen: BTreeSet<&str> = per_session
        .iter()
        .map(|s| s.str("session.id").unwrap_or("<none>"))
        .collect();
    let expected: BTreeSet<&str> = sessions.iter().map(|s| text(s, "session_id")).collect();
    assert_eq!(seen, expected);
    for span in per_session {
        let session = sessions
            .iter()
            .find(|s| span.str("session.id") == Some(text(s, "session_id")))
            .unwrap();
        assert_ok(span);
        assert_eq!(span.str("sandbox.result"), Some("hibernated"));
        assert_eq!(span.str("sandbox.operation"), Some("hibernate"));
        assert_eq!(span.str("chat.id"), Some(text(session, "chat_id")));
        assert_eq!(
            span.str("container.id"),
            Some(text(session, "container_id"))
        );
        let stop = trace.child(span, DOCKER_STOP);
        assert_eq!(stop.kind, CollectedKind::Client);
        assert_eq!(stop.str("sandbox.result"), Some("stopped"));
        assert_eq!(
            stop.str("container.id"),
            Some(text(session, "container_id"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_background_cleanup_run_is_a_trace_of_its_own() {
    let (collector, service) =
        traced(Options::default().arg("--cleanup-interval-seconds", 1)).await;
    let (status, headers, made) = put(&service, &chat("trace-bg"), r#"{"ttl_seconds":1}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let put_trace = trace_id(&headers);

    let reaping = wait_for(&collector, "a cleanup run that reaped", |spans| {
        spans
            .iter()
            .find(|s| s.name == CLEANUP && s.int("sandbox.cleanup.expired") == Some(1))
            .cloned()
    })
    .await;
    assert_eq!(
        reaping.parent_span_id, None,
        "a background run is a root span"
    );
    assert_ne!(reaping.trace_id, put_trace);
    let trace = wait_for_trace(
        &collector,
        &reaping.trace_id,
        &[
            CLEANUP,
            CLEANUP_SESSION,
            DOCKER_STOP,
            RECONCILE,
            DOCKER_LIST,
        ],
    )
    .await;
    let counts =
        json!({"expired": 1, "hibernated": 1, "removed": 0, "failed": 0, "orphans_removed": 0});
    assert_cleanup_run(&trace, trace.one(CLEANUP), &counts, &[made]);
    let reconcile = trace.child(&reaping, RECONCILE);
    trace.child(reconcile, DOCKER_LIST);
    trace.assert_rooted_at(&reaping);

    // Later runs (nothing to do) are traces of their own too.
    let runs = wait_for(&collector, "two more cleanup runs", |spans| {
        let runs: Vec<CollectedSpan> = spans
            .iter()
            .filter(|s| s.name == CLEANUP)
            .cloned()
            .collect();
        let later = runs.iter().filter(|s| s.span_id != reaping.span_id).count();
        (later >= 2).then_some(runs)
    })
    .await;
    let traces: BTreeSet<&str> = runs.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(
        traces.len(),
        runs.len(),
        "runs share a trace:\n{}",
        summary(&runs)
    );
    for run in &runs {
        assert_eq!(run.parent_span_id, None, "{run:?}");
    }
    assert!(!traces.contains(put_trace.as_str()));
}
