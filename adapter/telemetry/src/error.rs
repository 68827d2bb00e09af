//! Errors of telemetry setup. Library errors are turned into text here so
//! no OpenTelemetry, tonic or metrics type crosses the crate boundary.

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting (usually an `OTEL_*` variable) has a value we cannot use.
    #[error("invalid telemetry setting {name}: {reason}")]
    Config { name: &'static str, reason: String },
    /// The gRPC exporter's channel lives on a Tokio runtime.
    #[error("the OTLP gRPC exporter needs a Tokio runtime: call init_tracer from inside one")]
    NoRuntime,
    #[error("could not build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("flushing spans failed: {0}")]
    Flush(String),
    #[error("shutting the tracer down failed: {0}")]
    Shutdown(String),
    #[error("could not set up logging: {0}")]
    Logging(String),
    #[error("could not set up metrics: {0}")]
    Metrics(String),
}

impl TelemetryError {
    pub(crate) fn config(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Config {
            name,
            reason: reason.into(),
        }
    }
}
