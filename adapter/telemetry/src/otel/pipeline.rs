//! Builds the export pipeline: OTLP exporter (gRPC or HTTP/protobuf) behind
//! the SDK's batch span processor, with resource and sampler, and the
//! handle that flushes it at shutdown.
//!
//! A slow or absent collector never reaches a request: ending a span only
//! enqueues it (a full queue drops it), exports run on the processor's own
//! thread with a bounded timeout, and flush/shutdown are bounded too.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use sandboxer_core::port::tracer::Tracer;
use sandboxer_core::trace::NoopTracer;

use crate::TelemetryError;
use crate::config::{Protocol, SamplerConfig, TelemetryConfig};
use crate::otel::OtelTracer;

/// The tracer to inject into the use cases and adapters, and the guard of
/// its export pipeline. Call `shutdown` before the Tokio runtime ends so
/// buffered spans are sent; dropping the handle shuts down in the
/// background instead.
pub struct TracerHandle {
    tracer: Arc<dyn Tracer>,
    provider: Option<SdkTracerProvider>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for TracerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracerHandle")
            .field("enabled", &self.is_enabled())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds the tracer `config` asks for. Off gives the core's `NoopTracer`
/// and builds nothing else. On, with gRPC, it must run inside a Tokio
/// runtime, whose tasks then carry the exporter's connection.
///
/// # Errors
/// `NoRuntime` for gRPC outside a runtime; `Config` for an endpoint that
/// cannot be used; `Exporter` when the OTLP exporter cannot be built.
pub fn init_tracer(config: &TelemetryConfig) -> Result<TracerHandle, TelemetryError> {
    if !config.enabled {
        return Ok(TracerHandle {
            tracer: Arc::new(NoopTracer),
            provider: None,
            shutdown_timeout: config.shutdown_timeout,
        });
    }
    let exporter = build_exporter(config)?;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.batch.max_queue_size)
        .with_max_export_batch_size(config.batch.max_export_batch_size)
        .with_scheduled_delay(config.batch.scheduled_delay)
        .build();
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new(
            "service.version",
            config.service_version.clone(),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        )
        .with_sampler(sampler(config.sampler))
        .with_resource(resource)
        .build();
    let scope = InstrumentationScope::builder("sandboxer")
        .with_version(config.service_version.clone())
        .build();
    let tracer = OtelTracer::new(provider.tracer_with_scope(scope));
    Ok(TracerHandle {
        tracer: Arc::new(tracer),
        provider: Some(provider),
        shutdown_timeout: config.shutdown_timeout,
    })
}

fn build_exporter(config: &TelemetryConfig) -> Result<SpanExporter, TelemetryError> {
    let url = with_scheme(config.resolved_endpoint());
    if url.starts_with("https://") {
        // TLS would pull in a crypto provider; collectors are expected on a
        // trusted local hop (sidecar or node agent).
        return Err(TelemetryError::config(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{url}: https is not supported by this build, use http://"),
        ));
    }
    let timeout = config.export_timeout;
    let built = match config.protocol {
        Protocol::Grpc => {
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(TelemetryError::NoRuntime);
            }
            // Our own channel so connecting is bounded too: a collector that
            // accepts and never answers must not hold the export thread.
            let channel = tonic::transport::Endpoint::from_shared(url.clone())
                .map_err(|e| {
                    TelemetryError::config("OTEL_EXPORTER_OTLP_ENDPOINT", format!("{url}: {e}"))
                })?
                .timeout(timeout)
                .connect_timeout(timeout)
                .connect_lazy();
            SpanExporter::builder()
                .with_tonic()
                .with_channel(channel)
                .with_timeout(timeout)
                .build()
        }
        Protocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(timeout)
            .build(),
    };
    built.map_err(|e| TelemetryError::Exporter(e.to_string()))
}

/// gRPC endpoints may come without a scheme (`collector:4317`); without TLS
/// support plain http is the only thing we can speak.
fn with_scheme(url: String) -> String {
    if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    }
}

fn sampler(config: SamplerConfig) -> Sampler {
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    match config {
        SamplerConfig::AlwaysOn => Sampler::AlwaysOn,
        SamplerConfig::AlwaysOff => Sampler::AlwaysOff,
        SamplerConfig::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
        SamplerConfig::ParentBasedAlwaysOn => parent_based(Sampler::AlwaysOn),
        SamplerConfig::ParentBasedAlwaysOff => parent_based(Sampler::AlwaysOff),
        SamplerConfig::ParentBasedTraceIdRatio(r) => parent_based(Sampler::TraceIdRatioBased(r)),
    }
}

impl TracerHandle {
    /// The tracer to hand to use cases and adapters.
    pub fn tracer(&self) -> Arc<dyn Tracer> {
        Arc::clone(&self.tracer)
    }

    /// False when tracing is off and the tracer is the noop one.
    pub fn is_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every span ended so far (bounded by the SDK's 5 s).
    ///
    /// # Errors
    /// `Flush` when the export failed or timed out.
    pub async fn force_flush(&self) -> Result<(), TelemetryError> {
        let Some(provider) = self.provider.clone() else {
            return Ok(());
        };
        // The SDK call blocks; on a current-thread runtime blocking here
        // would starve the exporter's own connection task.
        off_thread(move || provider.force_flush())
            .await
            .map_err(TelemetryError::Flush)?
            .map_err(|e| TelemetryError::Flush(e.to_string()))
    }

    /// Flushes what is buffered and stops exporting, within the configured
    /// shutdown timeout. Spans ended afterwards are dropped.
    ///
    /// # Errors
    /// `Shutdown` when the final export failed or did not finish in time.
    pub async fn shutdown(mut self) -> Result<(), TelemetryError> {
        let Some(provider) = self.provider.take() else {
            return Ok(());
        };
        let timeout = self.shutdown_timeout;
        off_thread(move || provider.shutdown_with_timeout(timeout))
            .await
            .map_err(TelemetryError::Shutdown)?
            .map_err(|e| TelemetryError::Shutdown(e.to_string()))
    }
}

impl Drop for TracerHandle {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let timeout = self.shutdown_timeout;
            // Never block the dropping thread (it may be a runtime worker).
            let _ = std::thread::Builder::new()
                .name("sandboxer-otel-shutdown".into())
                .spawn(move || provider.shutdown_with_timeout(timeout));
        }
    }
}

async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sandboxer-otel-flush".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| format!("could not start a thread: {e}"))?;
    rx.await
        .map_err(|_| "the flushing thread panicked".to_owned())
}
