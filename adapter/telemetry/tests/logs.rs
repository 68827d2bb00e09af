//! Log lines written inside a core span context carry its trace and span
//! ids, in text and JSON; lines outside carry none. Output is captured
//! through a `MakeWriter`.

use std::io;
use std::sync::{Arc, Mutex};

use sandboxer_core::port::tracer::{self, SpanKind};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_core::trace::{SpanContext, in_context, in_span};
use sandboxer_telemetry::{LogFormat, log_subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

/// Logs `outside`, then `inside` within a context, then `after`.
fn log_around_a_context(format: LogFormat) -> Vec<String> {
    let out = Captured::default();
    let subscriber = log_subscriber(format, EnvFilter::new("info"), out.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let ctx = SpanContext::from_traceparent(&format!("00-{TRACE}-{SPAN}-01"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        tracing::info!(chat.id = "web:42", "outside");
        in_context(ctx, async {
            tokio::task::yield_now().await;
            tracing::warn!(chat.id = "web:42", "inside");
            tracing::debug!("filtered out");
        })
        .await;
        tracing::info!("after");
    });
    out.lines()
}

#[test]
fn text_lines_carry_the_ids_inside_a_context() {
    let lines = log_around_a_context(LogFormat::Text);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let [outside, inside, after] = [&lines[0], &lines[1], &lines[2]];
    assert!(inside.contains("inside"), "{inside}");
    assert!(inside.contains("WARN"), "{inside}");
    assert!(inside.contains("chat.id=\"web:42\""), "{inside}");
    assert!(
        inside.ends_with(&format!("trace_id={TRACE} span_id={SPAN}")),
        "{inside}"
    );
    for line in [outside, after] {
        assert!(!line.contains("trace_id"), "{line}");
    }
    assert!(!inside.contains('\x1b'), "no colour codes: {inside:?}");
}

#[test]
fn json_lines_carry_the_ids_as_fields() {
    let lines = log_around_a_context(LogFormat::Json);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let inside = &parsed[1];
    assert_eq!(inside["message"], "inside");
    assert_eq!(inside["level"], "WARN");
    assert_eq!(inside["chat.id"], "web:42");
    assert_eq!(inside["trace_id"], TRACE);
    assert_eq!(inside["span_id"], SPAN);
    for outside in [&parsed[0], &parsed[2]] {
        assert!(outside.get("trace_id").is_none(), "{outside}");
    }
}

/// With a tracer, the ids in the log are those of the span the code runs in.
#[test]
fn the_ids_are_those_of_the_enclosing_span() {
    let out = Captured::default();
    let _guard = tracing::subscriber::set_default(log_subscriber(
        LogFormat::Json,
        EnvFilter::new("info"),
        out.clone(),
    ));
    let tracer = RecordingTracer::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ctx = rt.block_on(async {
        let span = tracer::start(&tracer, "CreateSandbox.execute", SpanKind::Internal);
        in_span(&*span, async { tracing::info!("creating") }).await;
        span.context().unwrap()
    });
    let line: serde_json::Value = serde_json::from_str(&out.lines()[0]).unwrap();
    assert_eq!(line["trace_id"], ctx.trace_id_hex());
    assert_eq!(line["span_id"], ctx.span_id_hex());
}
