//! One CLIENT span per port call, parented on the caller's current span:
//! the core's traced step with the call's `sandbox.operation`.

use sandboxer_core::port::{SpanKind, Tracer};
use sandboxer_core::trace::{Step, attr};

pub(crate) fn call(tracer: &dyn Tracer, name: &'static str, operation: &'static str) -> Step {
    Step::new(tracer, name, SpanKind::Client).attr(attr::key::OPERATION, operation)
}
