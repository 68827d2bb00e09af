//! OtelTracer against a real OTLP receiver, over gRPC and HTTP/protobuf:
//! one request's trace (SERVER from a remote traceparent, INTERNAL use case,
//! CLIENT call from a spawned task) arrives whole, with parenting, kinds,
//! attributes, error status, resource, and is flushed by shutdown.

mod common;

use std::borrow::Cow;
use std::sync::Arc;

use sandboxer_core::port::tracer::{self, Parent, SpanKind, Tracer};
use sandboxer_core::trace::attr::{ErrorClass, key, result, span};
use sandboxer_core::trace::{SpanContext, current, in_context, in_span};
use sandboxer_telemetry::testing::{CollectedKind, CollectedStatus, CollectedValue, OtlpCollector};
use sandboxer_telemetry::{Protocol, TelemetryConfig, TelemetryError, init_tracer};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const ROUTE: &str = "PUT /v1/chats/{chat_id}/sandbox";
const DOCKER_CREATE: &str = "DockerSandboxRuntime.create";

/// Ids as the process saw them, to compare with what the receiver got.
struct Seen {
    server: SpanContext,
    internal: SpanContext,
    client: SpanContext,
}

/// One user action: HTTP request -> use case -> Docker call (failing).
async fn one_request(tracer: Arc<dyn Tracer>) -> Seen {
    let caller = SpanContext::from_traceparent(CALLER).unwrap();
    let mut server = tracer.start_span(
        Cow::Borrowed(ROUTE),
        SpanKind::Server,
        Parent::Remote(caller),
    );
    server.set_attribute("http.request.method", "PUT".into());
    server.set_attribute("http.route", "/v1/chats/{chat_id}/sandbox".into());
    let seen = in_span(&*server, async {
        let mut internal = tracer::start(&*tracer, span::CREATE_SANDBOX, SpanKind::Internal);
        internal.set_attribute(key::CHAT_ID, "web:42".to_owned().into());
        internal.set_attribute(key::GENERATION, 3_i64.into());
        let client = in_span(&*internal, async {
            // A spawned task loses the task-local unless it is carried over.
            let tracer = Arc::clone(&tracer);
            tokio::spawn(in_context(current(), async move {
                let mut client = tracer.start_span(
                    Cow::Borrowed(DOCKER_CREATE),
                    SpanKind::Client,
                    Parent::Current,
                );
                client.set_attribute("container.image.name", "sandboxer/python:3".into());
                client.set_attribute(key::EXEC_TIMED_OUT, false.into());
                client.set_error(
                    ErrorClass::ImageNotFound.as_str(),
                    "image sandboxer/python:3 not found",
                );
                let ctx = client.context().unwrap();
                client.end();
                ctx
            }))
            .await
            .unwrap()
        })
        .await;
        internal.set_attribute(key::RESULT, result::CREATED.into());
        let ctx = internal.context().unwrap();
        internal.end();
        Seen {
            server: server.context().unwrap(),
            internal: ctx,
            client,
        }
    })
    .await;
    server.set_attribute("http.response.status_code", 200_i64.into());
    server.end();
    seen
}

async fn exports_one_whole_trace(protocol: Protocol) {
    let collector = match protocol {
        Protocol::Grpc => OtlpCollector::start_grpc().await,
        Protocol::HttpProtobuf => OtlpCollector::start_http().await,
    };
    let handle = init_tracer(&common::config(collector.endpoint(), protocol)).unwrap();
    assert!(handle.is_enabled());
    let seen = one_request(handle.tracer()).await;
    // The batch delay is 5 s: only shutdown's flush can have sent them by now.
    handle.shutdown().await.unwrap();

    let spans = collector.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(collector.connections() >= 1);
    let server = &collector.named(ROUTE)[0];
    let internal = &collector.named(span::CREATE_SANDBOX)[0];
    let client = &collector.named(DOCKER_CREATE)[0];

    for s in &spans {
        assert_eq!(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{}", s.name);
        assert_eq!(s.service_name.as_deref(), Some("sandboxer"));
        assert_eq!(
            s.resource.get("service.version"),
            Some(&CollectedValue::Str(env!("CARGO_PKG_VERSION").into()))
        );
    }
    assert_eq!(server.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(server.span_id, seen.server.span_id_hex());
    assert_eq!(internal.span_id, seen.internal.span_id_hex());
    assert_eq!(client.span_id, seen.client.span_id_hex());
    assert!(internal.is_child_of(server));
    assert!(client.is_child_of(internal));

    assert_eq!(server.kind, CollectedKind::Server);
    assert_eq!(internal.kind, CollectedKind::Internal);
    assert_eq!(client.kind, CollectedKind::Client);

    assert_eq!(server.str("http.request.method"), Some("PUT"));
    assert_eq!(server.int("http.response.status_code"), Some(200));
    assert_eq!(internal.str(key::CHAT_ID), Some("web:42"));
    assert_eq!(internal.int(key::GENERATION), Some(3));
    assert_eq!(internal.str(key::RESULT), Some("created"));
    assert_eq!(client.bool(key::EXEC_TIMED_OUT), Some(false));

    assert_eq!(
        client.status,
        CollectedStatus::Error("image sandboxer/python:3 not found".into())
    );
    assert_eq!(client.str(key::ERROR_TYPE), Some("image_not_found"));
    assert_eq!(internal.status, CollectedStatus::Unset);
    assert_eq!(server.status, CollectedStatus::Unset);
    assert_eq!(internal.str(key::ERROR_TYPE), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_carries_one_whole_trace() {
    exports_one_whole_trace(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_carries_one_whole_trace() {
    exports_one_whole_trace(Protocol::HttpProtobuf).await;
}

/// Shutdown from a current-thread runtime must not starve the gRPC channel
/// that lives on that same thread.
#[tokio::test(flavor = "current_thread")]
async fn shutdown_on_a_current_thread_runtime_flushes() {
    let collector = OtlpCollector::start_grpc().await;
    let handle = init_tracer(&common::config(collector.endpoint(), Protocol::Grpc)).unwrap();
    let tracer = handle.tracer();
    for _ in 0..5 {
        tracer::start(&*tracer, span::EXEC, SpanKind::Internal).end();
    }
    handle.shutdown().await.unwrap();
    assert_eq!(collector.named(span::EXEC).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_name_comes_from_the_environment_or_the_app() {
    let collector = OtlpCollector::start_grpc().await;
    let endpoint = collector.endpoint().to_owned();
    let from_env = TelemetryConfig::from_vars(|name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_SERVICE_NAME" => Some("sandboxer-staging".into()),
        _ => None,
    })
    .unwrap();
    assert!(from_env.enabled, "an endpoint turns tracing on");
    let by_app = TelemetryConfig {
        service_name: "sandboxer-eu".into(),
        service_version: "9.9.9".into(),
        ..from_env.clone()
    };
    for (config, name) in [(from_env, "sandboxer-staging"), (by_app, "sandboxer-eu")] {
        let handle = init_tracer(&config).unwrap();
        tracer::start(&*handle.tracer(), span::STOP_SANDBOX, SpanKind::Internal).end();
        handle.shutdown().await.unwrap();
        let last = collector.spans().pop().unwrap();
        assert_eq!(last.service_name.as_deref(), Some(name));
    }
    let last = collector.spans().pop().unwrap();
    assert_eq!(
        last.resource.get("service.version"),
        Some(&sandboxer_telemetry::testing::CollectedValue::Str(
            "9.9.9".into()
        ))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_and_orphan_spans_start_new_traces() {
    let collector = OtlpCollector::start_grpc().await;
    let handle = init_tracer(&common::config(collector.endpoint(), Protocol::Grpc)).unwrap();
    let tracer = handle.tracer();
    let caller = SpanContext::from_traceparent(CALLER);
    in_context(caller, async {
        tracer
            .start_span(Cow::Borrowed("root"), SpanKind::Internal, Parent::Root)
            .end();
    })
    .await;
    // No current context at all: a new trace too.
    tracer::start(&*tracer, span::CLEANUP, SpanKind::Internal).end();
    handle.shutdown().await.unwrap();
    for name in ["root", span::CLEANUP] {
        let s = &collector.named(name)[0];
        assert_eq!(s.parent_span_id, None, "{name}");
        assert_ne!(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{name}");
    }
}

/// A caller that did not sample: with the default parent-based sampler we
/// record nothing, but the context still flows so children agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_caller_is_honoured() {
    let collector = OtlpCollector::start_grpc().await;
    let handle = init_tracer(&common::config(collector.endpoint(), Protocol::Grpc)).unwrap();
    let tracer = handle.tracer();
    let unsampled = SpanContext::from_traceparent(&CALLER.replace("-01", "-00")).unwrap();
    let server = tracer.start_span(
        Cow::Borrowed(ROUTE),
        SpanKind::Server,
        Parent::Remote(unsampled),
    );
    let ctx = server
        .context()
        .expect("a non-recording span still has ids");
    assert_eq!(ctx.trace_id, unsampled.trace_id);
    assert!(!ctx.sampled);
    let child_ctx = in_span(&*server, async {
        tracer::start(&*tracer, span::EXEC, SpanKind::Internal).context()
    })
    .await
    .unwrap();
    assert!(!child_ctx.sampled);
    drop(server);
    // A sampled one right after, so "nothing arrived" is not just slowness.
    tracer::start(&*tracer, span::GET_FILE, SpanKind::Internal).end();
    handle.shutdown().await.unwrap();
    let names: Vec<String> = collector.spans().into_iter().map(|s| s.name).collect();
    assert_eq!(names, [span::GET_FILE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_spans_end_and_export_once() {
    let collector = OtlpCollector::start_grpc().await;
    let handle = init_tracer(&common::config(collector.endpoint(), Protocol::Grpc)).unwrap();
    let tracer = handle.tracer();
    {
        let _dropped = tracer::start(&*tracer, span::PUT_FILE, SpanKind::Internal);
    }
    let mut twice = tracer::start(&*tracer, span::GET_FILE, SpanKind::Internal);
    twice.end();
    twice.end();
    drop(twice);
    handle.force_flush().await.unwrap();
    let spans = collector.wait_for_spans(2, common::TIMEOUT).await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    handle.shutdown().await.unwrap();
    assert_eq!(collector.spans().len(), 2);
}

/// The gRPC channel lives on a Tokio runtime: outside one, a clear error
/// rather than a panic deep inside tonic.
#[test]
fn grpc_outside_a_runtime_is_a_clear_error() {
    let config = common::config("http://127.0.0.1:4317", Protocol::Grpc);
    let err = init_tracer(&config).unwrap_err();
    assert!(matches!(err, TelemetryError::NoRuntime), "{err}");
}

#[tokio::test]
async fn unusable_endpoints_are_refused_at_start() {
    for (endpoint, protocol) in [
        ("https://collector:4317", Protocol::Grpc),
        ("https://collector:4318", Protocol::HttpProtobuf),
        ("http://bad host:4317", Protocol::Grpc),
    ] {
        let err = init_tracer(&common::config(endpoint, protocol)).unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{endpoint}: {err}"
        );
    }
}
