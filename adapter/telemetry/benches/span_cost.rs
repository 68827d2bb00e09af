//! Cost of one span as the use cases pay it (start, 3 attributes, end) for
//! the noop tracer, `MetricsTracer` over noop (global Prometheus recorder),
//! and `OtelTracer` with the batch exporter sending over gRPC to an
//! in-process collector, both with room in its queue (the normal case) and
//! with the queue full (overload: spans are dropped).
//! Run: `cargo bench -p sandboxer-telemetry`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sandboxer_core::port::tracer::{self, SpanKind, Tracer};
use sandboxer_core::trace::NoopTracer;
use sandboxer_core::trace::attr::{key, result, span};
use sandboxer_telemetry::testing::OtlpCollector;
use sandboxer_telemetry::{
    MetricsTracer, Protocol, TelemetryConfig, init_tracer, install_prometheus,
};

fn one_span(tracer: &dyn Tracer, i: u64) {
    let mut span = tracer::start(tracer, span::CREATE_SANDBOX, SpanKind::Internal);
    span.set_attribute(key::RESULT, result::REUSED.into());
    span.set_attribute(key::GENERATION, black_box(i).into());
    span.set_attribute(key::EXEC_TIMED_OUT, false.into());
    span.end();
}

fn bench(c: &mut Criterion) {
    let noop: Arc<dyn Tracer> = Arc::new(NoopTracer);
    c.bench_function("span/noop", |b| b.iter(|| one_span(&*noop, 1)));

    let metrics_handle = install_prometheus().expect("first recorder of this process");
    let metrics = MetricsTracer::new(Arc::clone(&noop));
    c.bench_function("span/metrics(noop)", |b| b.iter(|| one_span(&metrics, 1)));
    assert!(
        metrics_handle
            .render()
            .contains("sandboxer_create_duration_seconds_count")
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let collector = rt.block_on(OtlpCollector::start_grpc());
    collector.count_only();
    let config = TelemetryConfig {
        enabled: true,
        endpoint: Some(collector.endpoint().to_owned()),
        protocol: Protocol::Grpc,
        ..TelemetryConfig::default()
    };
    let handle = {
        let _in_runtime = rt.enter();
        init_tracer(&config).unwrap()
    };
    let otel = handle.tracer();

    // Normal load: the queue has room, every span is enqueued and exported.
    // Spans are timed in chunks smaller than the queue, and the queue is
    // drained (untimed) between chunks.
    let started = AtomicU64::new(0);
    c.bench_function("span/otel(batch, grpc, queue with room)", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(1024);
                let t = Instant::now();
                for _ in 0..chunk {
                    one_span(&*otel, started.fetch_add(1, Ordering::Relaxed));
                }
                timed += t.elapsed();
                left -= chunk;
                rt.block_on(handle.force_flush()).unwrap();
            }
            timed
        });
    });
    let enqueued = started.load(Ordering::Relaxed);
    let exported = collector.span_count();
    println!("otel, queue with room: {enqueued} spans ended, {exported} exported");
    assert_eq!(
        enqueued as usize, exported,
        "no span may be dropped while the queue has room"
    );

    // Overload: spans end far faster than they can be exported, the queue
    // stays full and the excess is dropped.
    let started = AtomicU64::new(0);
    c.bench_function("span/otel(batch, grpc, queue full)", |b| {
        b.iter(|| one_span(&*otel, started.fetch_add(1, Ordering::Relaxed)));
    });
    rt.block_on(handle.shutdown()).unwrap();
    let started = started.load(Ordering::Relaxed);
    let received = collector.span_count() - exported;
    println!(
        "otel, queue full: {started} spans ended, {received} exported ({:.1}%), the rest dropped",
        100.0 * received as f64 / started.max(1) as f64
    );
    assert!(received > 0, "the collector received nothing");
}

criterion_group! {
    name = spans;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(spans);
