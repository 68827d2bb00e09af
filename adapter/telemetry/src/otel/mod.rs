//! The OpenTelemetry side: the `Tracer` port on the SDK (`tracer`) and the
//! OTLP export pipeline that feeds it (`pipeline`).

mod pipeline;
mod tracer;

pub use pipeline::{TracerHandle, init_tracer};
pub use tracer::OtelTracer;
