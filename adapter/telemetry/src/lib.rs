//! Tracing, logs and metrics: the OpenTelemetry tracer, log setup and Prometheus metrics.
