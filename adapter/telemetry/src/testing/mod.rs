//! In-process OTLP receivers for tests (feature `testing`): a gRPC one
//! (`OtlpCollector::start_grpc`) and an HTTP/protobuf one (`start_http`),
//! both on `127.0.0.1:0`, keeping every span they receive.
//!
//! ```text
//! let collector = OtlpCollector::start_grpc().await;
//! // run the code under test with OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint()
//! let span = collector.wait_for_span("CreateSandbox.execute", Duration::from_secs(10)).await;
//! ```

mod collector;
mod grpc;
mod http;
mod span;

pub use collector::OtlpCollector;
pub use span::{CollectedKind, CollectedSpan, CollectedStatus, CollectedValue};
