//! The process-wide recorder (its own test binary: one per process).

use std::sync::Arc;

use sandboxer_core::port::tracer::{self, SpanKind};
use sandboxer_core::trace::NoopTracer;
use sandboxer_core::trace::attr::{ErrorClass, span};
use sandboxer_telemetry::metric::names;
use sandboxer_telemetry::{MetricsTracer, install_prometheus, set_active_sandboxes};

#[test]
fn install_once_then_render_what_spans_recorded() {
    let handle = install_prometheus().unwrap();
    let tracer = MetricsTracer::new(Arc::new(NoopTracer));
    let mut span = tracer::start(&tracer, span::EXEC, SpanKind::Internal);
    span.set_error(ErrorClass::Timeout.as_str(), "exec ran past its timeout");
    span.end();
    set_active_sandboxes(2);

    let text = handle.render();
    assert!(
        text.contains(&format!(
            "{}_count{{result=\"failed\"}} 1",
            names::EXEC_DURATION
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}{{operation=\"{}\",error_type=\"timeout\"}} 1",
            names::FAILURES,
            span::EXEC
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} 2", names::ACTIVE_SANDBOXES)),
        "{text}"
    );
    assert!(
        text.contains(&format!("# HELP {} ", names::EXEC_DURATION)),
        "metrics are described: {text}"
    );
    assert!(
        install_prometheus().is_err(),
        "a second recorder is refused"
    );
}
