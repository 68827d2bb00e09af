//! Trace context across boundaries: a caller's `traceparent` parents the
//! HTTP span, and JSON log lines of a request carry its trace and span ids.

use reqwest::{Method, StatusCode};

use crate::calls::{log_lines, put, send, trace_id};
use crate::support::{Options, chat};
use crate::traces::wait_for_trace;
use crate::{CREATE, PUT_SANDBOX, traced};

#[tokio::test(flavor = "multi_thread")]
async fn a_callers_traceparent_is_the_parent_of_the_http_span() {
    let (collector, service) = traced(Options::default()).await;
    let caller_trace = uuid::Uuid::now_v7().simple().to_string();
    let caller_span = uuid::Uuid::now_v7().simple().to_string()[16..].to_owned();
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let c = chat("trace-parent");
    let (status, headers, made) = send(
        &service,
        Method::PUT,
        &format!("/v1/chats/{c}/sandbox"),
        "",
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        trace_id(&headers),
        caller_trace,
        "x-trace-id is the caller's"
    );
    let trace = wait_for_trace(&collector, &caller_trace, &[PUT_SANDBOX, CREATE]).await;
    let http = trace.one(PUT_SANDBOX);
    assert_eq!(http.trace_id, caller_trace);
    assert_eq!(http.parent_span_id.as_deref(), Some(caller_span.as_str()));
    assert_ne!(http.span_id, caller_span);
    assert_eq!(
        headers["traceparent"].to_str().unwrap(),
        format!("00-{caller_trace}-{}-01", http.span_id)
    );
    trace.child(http, CREATE);
    trace.assert_rooted_at(http);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_of_a_request_carry_its_trace_id() {
    let (collector, service) = traced(Options::default().arg("--log-format", "json")).await;
    let c = chat("trace-log");
    let (status, headers, made) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = trace_id(&headers);
    let trace = wait_for_trace(&collector, &id, &[CREATE]).await;
    let create = trace.one(CREATE);
    let line = log_lines(&service, "sandbox created")
        .into_iter()
        .find(|l| l["chat.id"] == c.as_str())
        .unwrap_or_else(|| panic!("no `sandbox created` line for {c}:\n{}", service.log()));
    assert_eq!(line["trace_id"], id.as_str(), "{line}");
    assert_eq!(line["span_id"], create.span_id.as_str(), "{line}");
    assert_eq!(line["session.id"], made["session_id"], "{line}");
    assert_eq!(line["level"], "INFO", "{line}");

    // The next request's line carries the next request's trace.
    let (status, headers, _) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::OK);
    let next = trace_id(&headers);
    assert_ne!(next, id);
    let line = log_lines(&service, "sandbox reused")
        .into_iter()
        .find(|l| l["chat.id"] == c.as_str())
        .unwrap_or_else(|| panic!("no `sandbox reused` line for {c}:\n{}", service.log()));
    assert_eq!(line["trace_id"], next.as_str(), "{line}");
}
