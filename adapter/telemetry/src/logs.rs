//! Log setup: `tracing` events to stderr, as text or JSON lines, filtered by
//! `RUST_LOG` (or a default). A line logged inside a task that carries a
//! core span context gets that span's `trace_id` and `span_id`, so a log line
//! leads to its trace and back.

use std::fmt;
use std::str::FromStr;

use sandboxer_core::trace;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::TelemetryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, event fields at the top level.
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(TelemetryError::config(
                "log format",
                format!("{other:?} is not a log format (use text or json)"),
            )),
        }
    }
}

/// Installs the process-wide log subscriber, writing to stderr.
/// `default_filter` (e.g. `info`) applies when `RUST_LOG` is unset.
///
/// # Errors
/// `Config` for a filter that does not parse; `Logging` when a subscriber is
/// already installed.
pub fn init_logging(format: LogFormat, default_filter: &str) -> Result<(), TelemetryError> {
    let subscriber = log_subscriber(format, env_filter(default_filter)?, std::io::stderr);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| TelemetryError::Logging(e.to_string()))
}

/// `RUST_LOG` when set, else `default_filter`.
///
/// # Errors
/// `Config` naming whichever of the two does not parse.
pub fn env_filter(default_filter: &str) -> Result<EnvFilter, TelemetryError> {
    filter_from(std::env::var("RUST_LOG").ok().as_deref(), default_filter)
}

fn filter_from(rust_log: Option<&str>, default_filter: &str) -> Result<EnvFilter, TelemetryError> {
    match rust_log {
        Some(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec).map_err(|e| TelemetryError::config("RUST_LOG", e.to_string()))
        }
        _ => EnvFilter::try_new(default_filter)
            .map_err(|e| TelemetryError::config("default log filter", e.to_string())),
    }
}

/// The subscriber `init_logging` installs, writing to `writer`; tests and
/// embedders install it themselves (`tracing::subscriber::set_default`).
pub fn log_subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> impl Subscriber + Send + Sync + for<'a> LookupSpan<'a>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // No ANSI colours: lines are rewritten as plain text to add the ids,
    // and stderr is usually collected by a log shipper anyway.
    let layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer)
            .event_format(WithTraceContext {
                inner: tracing_subscriber::fmt::format().with_ansi(false),
                json: false,
            })
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .event_format(WithTraceContext {
                inner: tracing_subscriber::fmt::format().json().flatten_event(true),
                json: true,
            })
            .boxed(),
    };
    tracing_subscriber::registry().with(filter).with(layer)
}

/// Wraps a formatter and adds the core's current `trace_id` / `span_id` to
/// the line: as fields at the end for text, as the first keys for JSON.
struct WithTraceContext<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceContext<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The task-local is readable here because formatting runs inside the
        // poll of the task that logged.
        let Some(span) = trace::current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line.as_str(), ""),
        };
        let (trace_id, span_id) = (span.trace_id_hex(), span.span_id_hex());
        if self.json
            && let Some(rest) = body.strip_prefix('{')
        {
            let sep = if rest.trim_start().starts_with('}') {
                ""
            } else {
                ","
            };
            return write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"{sep}{rest}{newline}"
            );
        }
        write!(
            writer,
            "{body} trace_id={trace_id} span_id={span_id}{newline}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_wins_over_the_default_and_bad_filters_name_their_source() {
        let filter = filter_from(Some("warn,sandboxer=trace"), "info").unwrap();
        assert_eq!(filter.to_string(), "sandboxer=trace,warn");
        assert_eq!(
            filter_from(Some("  "), "debug").unwrap().to_string(),
            "debug"
        );
        assert_eq!(filter_from(None, "info").unwrap().to_string(), "info");
        let err = filter_from(Some("info,=["), "info").unwrap_err();
        assert!(err.to_string().contains("RUST_LOG"), "{err}");
        let err = filter_from(None, "info,=[").unwrap_err();
        assert!(err.to_string().contains("default log filter"), "{err}");
    }

    #[test]
    fn log_formats_parse() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
