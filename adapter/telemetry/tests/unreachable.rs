//! A collector that is down or hangs must not slow requests: ending spans
//! only enqueues, exports are bounded by the export timeout, shutdown by its
//! own bound.

mod common;

use std::time::{Duration, Instant};

use sandboxer_core::port::tracer::{self, SpanKind};
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::trace::in_span;
use sandboxer_telemetry::{Protocol, TelemetryConfig, init_tracer};

const SPANS: usize = 10_000;
/// Generous: far above the milliseconds this takes, far below the 10 s
/// export timeout a blocking span end would wait for.
const SPANS_BOUND: Duration = Duration::from_secs(4);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

async fn spans_stay_fast(label: &str, endpoint: String, protocol: Protocol) {
    let config = TelemetryConfig {
        export_timeout: Duration::from_secs(10),
        shutdown_timeout: SHUTDOWN_TIMEOUT,
        ..common::config(&endpoint, protocol)
    };
    let handle = init_tracer(&config).unwrap();
    let tracer = handle.tracer();

    let started = Instant::now();
    for i in 0..SPANS / 2 {
        let mut parent = tracer::start(&*tracer, span::CREATE_SANDBOX, SpanKind::Internal);
        parent.set_attribute(key::CHAT_ID, "web:42".into());
        parent.set_attribute(key::GENERATION, (i as i64).into());
        in_span(&*parent, async {
            let mut child = tracer::start(&*tracer, span::EXEC, SpanKind::Client);
            child.set_attribute(key::EXEC_TIMED_OUT, false.into());
            child.end();
        })
        .await;
        parent.end();
    }
    let spans_took = started.elapsed();

    let started = Instant::now();
    let shutdown = handle.shutdown().await;
    let shutdown_took = started.elapsed();
    println!(
        "{label}: {SPANS} spans in {spans_took:?} ({:?}/span); shutdown {shutdown_took:?} ({shutdown:?})",
        spans_took / SPANS as u32
    );
    assert!(
        spans_took < SPANS_BOUND,
        "{label}: {SPANS} spans took {spans_took:?}"
    );
    assert!(
        shutdown_took < SHUTDOWN_TIMEOUT + Duration::from_millis(1500),
        "{label}: shutdown took {shutdown_took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_to_a_closed_port() {
    spans_stay_fast("grpc closed port", closed_endpoint(), Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_to_a_collector_that_never_answers() {
    let endpoint = blackhole_endpoint().await;
    spans_stay_fast("grpc blackhole", endpoint, Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_a_closed_port() {
    spans_stay_fast(
        "http closed port",
        closed_endpoint(),
        Protocol::HttpProtobuf,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_a_collector_that_never_answers() {
    let endpoint = blackhole_endpoint().await;
    spans_stay_fast("http blackhole", endpoint, Protocol::HttpProtobuf).await;
}

/// One export to a silent collector gives up at the export timeout, so the
/// export thread is free again (a flush returns well before the SDK's own
/// 5 s flush bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_to_a_silent_collector_is_bounded_by_the_export_timeout() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let endpoint = blackhole_endpoint().await;
        let config = TelemetryConfig {
            export_timeout: Duration::from_millis(300),
            shutdown_timeout: SHUTDOWN_TIMEOUT,
            ..common::config(&endpoint, protocol)
        };
        let handle = init_tracer(&config).unwrap();
        tracer::start(&*handle.tracer(), span::EXEC, SpanKind::Internal).end();
        let started = Instant::now();
        let flushed = handle.force_flush().await;
        let took = started.elapsed();
        println!("{protocol:?}: flush to a silent collector: {flushed:?} after {took:?}");
        assert!(
            flushed.is_err(),
            "{protocol:?}: nothing answered, yet {flushed:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{protocol:?}: flush took {took:?}"
        );
        let _ = handle.shutdown().await;
    }
}

/// An endpoint where nothing listens (a port just released).
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// An endpoint that accepts connections and never answers on them.
async fn blackhole_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}
