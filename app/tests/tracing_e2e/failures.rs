//! A failure on the spans: a missing image marks the use case and Docker
//! spans as errors with its `error.type`, the 4xx HTTP span not, and the
//! failures metric carries the same values.

use reqwest::{Method, StatusCode};

use sandboxer_telemetry::testing::CollectedStatus;

use crate::calls::{metric_sample, put, trace_id};
use crate::support::{Options, chat, docker_lines};
use crate::traces::wait_for_trace;
use crate::{CREATE, DOCKER_CREATE, MISSING_IMAGE, PUT_SANDBOX, assert_http, traced};

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_fails_the_spans_with_image_not_found_and_the_metric_says_the_same() {
    assert!(
        docker_lines(&["images", "-q", MISSING_IMAGE]).is_empty(),
        "{MISSING_IMAGE} exists on this machine; remove it (docker rmi) for this test"
    );
    let (collector, service) = traced(Options::default()).await;
    let c = chat("trace-missing");
    let body = format!(r#"{{"image":"{MISSING_IMAGE}"}}"#);
    let (status, headers, answer) = put(&service, &c, &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("image_not_found")),
        "{answer}"
    );
    let trace = wait_for_trace(
        &collector,
        &trace_id(&headers),
        &[PUT_SANDBOX, CREATE, DOCKER_CREATE],
    )
    .await;
    let http = assert_http(&trace, PUT_SANDBOX, "/v1/chats/{chat_id}/sandbox", status);
    assert_eq!(http.str("error.type"), Some("image_not_found"));
    assert_eq!(
        http.status,
        CollectedStatus::Unset,
        "a 4xx is the caller's mistake, not a server error"
    );
    let create = trace.child(&http, CREATE);
    let docker = trace.child(create, DOCKER_CREATE);
    for span in [create, docker] {
        assert_eq!(span.str("error.type"), Some("image_not_found"), "{span:?}");
        assert_eq!(span.str("sandbox.result"), Some("failed"), "{span:?}");
        match &span.status {
            CollectedStatus::Error(why) => assert!(why.contains(MISSING_IMAGE), "{why}"),
            other => panic!("{}: status {other:?}, want Error", span.name),
        }
    }
    assert_eq!(create.str("chat.id"), Some(c.as_str()));
    assert_eq!(docker.str("container.image.name"), Some(MISSING_IMAGE));
    trace.assert_rooted_at(&http);
    assert!(
        service.containers().is_empty(),
        "a failed create left a container"
    );

    // The metric carries the spans' own error.type values.
    let (status, _, bytes) = service.raw(Method::GET, "/metrics", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(bytes).unwrap();
    for span in [create, docker] {
        let labels = [
            ("operation", span.name.as_str()),
            ("error_type", span.str("error.type").unwrap()),
        ];
        let count = metric_sample(&metrics, "sandboxer_failures_total", &labels);
        assert!(
            count.is_some_and(|n| n >= 1.0),
            "no sandboxer_failures_total{labels:?} in:\n{metrics}"
        );
    }
}
