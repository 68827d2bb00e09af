//! Tracing off: the noop tracer, and nothing is built or dialled, even when
//! an endpoint is known.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use sandboxer_core::port::tracer::{self, Parent, SpanKind};
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::trace::{SpanContext, in_context};
use sandboxer_telemetry::testing::OtlpCollector;
use sandboxer_telemetry::{Protocol, TelemetryConfig, init_tracer};

/// No `OTEL_*` variables: off, and no Tokio runtime is even needed.
#[test]
fn without_an_endpoint_the_tracer_is_noop() {
    let config = TelemetryConfig::from_vars(|_| None).unwrap();
    assert!(!config.enabled);
    let handle = init_tracer(&config).unwrap();
    assert!(!handle.is_enabled());
    let tracer = handle.tracer();
    let caller =
        SpanContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
    for parent in [Parent::Current, Parent::Root, Parent::Remote(caller)] {
        let mut span = tracer.start_span(
            Cow::Borrowed(span::CREATE_SANDBOX),
            SpanKind::Server,
            parent,
        );
        span.set_attribute(key::CHAT_ID, "c".into());
        span.set_error("timeout", "slow");
        assert_eq!(span.context(), None, "{parent:?}");
        span.end();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_never_dials_even_a_known_endpoint() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let collector = match protocol {
            Protocol::Grpc => OtlpCollector::start_grpc().await,
            Protocol::HttpProtobuf => OtlpCollector::start_http().await,
        };
        let config = TelemetryConfig {
            enabled: false,
            ..common::config(collector.endpoint(), protocol)
        };
        let handle = init_tracer(&config).unwrap();
        assert!(!handle.is_enabled());
        let tracer = handle.tracer();
        let ctx = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        in_context(ctx, async {
            for _ in 0..100 {
                let span = tracer::start(&*tracer, span::EXEC, SpanKind::Internal);
                assert_eq!(span.context(), None);
            }
        })
        .await;
        handle.force_flush().await.unwrap();
        handle.shutdown().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(collector.connections(), 0, "{protocol:?}");
        assert_eq!(collector.export_requests(), 0, "{protocol:?}");
        assert!(collector.spans().is_empty());
    }
}
