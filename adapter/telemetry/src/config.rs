//! Telemetry settings, read from the standard `OTEL_*` variables and then
//! open to the app's own config (file, `SANDBOXER_*`, flags) to override.
//!
//! Tracing is on when an OTLP endpoint is set or the app says so, and off
//! otherwise: off means the noop tracer, with no exporter and no connection.

use std::str::FromStr;
use std::time::Duration;

use crate::TelemetryError;

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Export spans. When false nothing is built and nothing is dialled.
    pub enabled: bool,
    /// Base OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`); for http/protobuf
    /// `/v1/traces` is appended to it.
    pub endpoint: Option<String>,
    /// Full traces URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), used as is;
    /// wins over `endpoint`.
    pub traces_endpoint: Option<String>,
    pub protocol: Protocol,
    /// `service.name` of the resource.
    pub service_name: String,
    /// `service.version` of the resource.
    pub service_version: String,
    /// Bound on one export, retries included.
    pub export_timeout: Duration,
    /// Bound on the final flush at shutdown.
    pub shutdown_timeout: Duration,
    pub sampler: SamplerConfig,
    pub batch: BatchSettings,
}

/// OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Grpc,
    HttpProtobuf,
}

/// Head sampler (`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SamplerConfig {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    #[default]
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// Batch span processor settings (`OTEL_BSP_*`). A full queue drops spans
/// rather than slowing the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub scheduled_delay: Duration,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_secs(5),
        }
    }
}

pub const DEFAULT_SERVICE_NAME: &str = "sandboxer";
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
const TRACES_PATH: &str = "/v1/traces";

impl Default for TelemetryConfig {
    /// Off, gRPC, `service.name = sandboxer`, 10 s export timeout (the OTLP
    /// default), 5 s shutdown bound, `parentbased_always_on`.
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: None,
            traces_endpoint: None,
            protocol: Protocol::Grpc,
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            service_version: env!("CARGO_PKG_VERSION").to_owned(),
            export_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            sampler: SamplerConfig::default(),
            batch: BatchSettings::default(),
        }
    }
}

impl TelemetryConfig {
    /// Reads the standard variables from the process environment.
    ///
    /// # Errors
    /// A variable with a value that cannot be used (`Config`).
    pub fn from_env() -> Result<Self, TelemetryError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the standard variables through `var` (tests pass a map).
    /// Empty values count as unset, as the OpenTelemetry spec asks.
    ///
    /// Honoured: `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` (`otlp`, `none`),
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`, `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`,
    /// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_MAX_QUEUE_SIZE`,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`. The
    /// exporter itself also reads `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS` and
    /// `..._COMPRESSION`, and the resource `OTEL_RESOURCE_ATTRIBUTES`.
    ///
    /// # Errors
    /// A variable with a value that cannot be used (`Config`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, TelemetryError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut config = Self {
            endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
            traces_endpoint: var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            ..Self::default()
        };
        config.enabled = config.endpoint.is_some() || config.traces_endpoint.is_some();

        if let Some(v) = var("OTEL_TRACES_EXPORTER") {
            match v.trim() {
                "otlp" => {}
                "none" => config.enabled = false,
                other => {
                    return Err(TelemetryError::config(
                        "OTEL_TRACES_EXPORTER",
                        format!("{other:?} is not supported (use otlp or none)"),
                    ));
                }
            }
        }
        if let Some(v) = var("OTEL_SDK_DISABLED")
            && v.trim().eq_ignore_ascii_case("true")
        {
            config.enabled = false;
        }
        if let Some((name, v)) = first(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ) {
            config.protocol = v
                .parse()
                .map_err(|reason| TelemetryError::config(name, reason))?;
        }
        if let Some((name, v)) = first(
            &var,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ) {
            config.export_timeout = Duration::from_millis(parse_number(name, &v)?);
        }
        if let Some(v) = var("OTEL_SERVICE_NAME") {
            config.service_name = v;
        }
        if let Some(v) = var("OTEL_TRACES_SAMPLER") {
            let arg = var("OTEL_TRACES_SAMPLER_ARG");
            config.sampler = SamplerConfig::parse(&v, arg.as_deref())?;
        }
        if let Some(v) = var("OTEL_BSP_MAX_QUEUE_SIZE") {
            config.batch.max_queue_size = parse_number("OTEL_BSP_MAX_QUEUE_SIZE", &v)?;
        }
        if let Some(v) = var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            config.batch.max_export_batch_size =
                parse_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?;
        }
        if let Some(v) = var("OTEL_BSP_SCHEDULE_DELAY") {
            config.batch.scheduled_delay =
                Duration::from_millis(parse_number("OTEL_BSP_SCHEDULE_DELAY", &v)?);
        }
        Ok(config)
    }

    /// The URL spans are sent to: the traces endpoint as is, else the base
    /// endpoint (plus `/v1/traces` for http/protobuf), else the protocol's
    /// default on localhost.
    pub fn resolved_endpoint(&self) -> String {
        if let Some(url) = &self.traces_endpoint {
            return url.clone();
        }
        let base = self.endpoint.as_deref();
        match self.protocol {
            Protocol::Grpc => base.unwrap_or(DEFAULT_GRPC_ENDPOINT).to_owned(),
            Protocol::HttpProtobuf => {
                let base = base.unwrap_or(DEFAULT_HTTP_ENDPOINT);
                format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
            }
        }
    }
}

fn first<F: Fn(&str) -> Option<String>>(
    var: &F,
    specific: &'static str,
    general: &'static str,
) -> Option<(&'static str, String)> {
    var(specific)
        .map(|v| (specific, v))
        .or_else(|| var(general).map(|v| (general, v)))
}

fn parse_number<T: FromStr>(name: &'static str, value: &str) -> Result<T, TelemetryError> {
    value
        .trim()
        .parse()
        .map_err(|_| TelemetryError::config(name, format!("{value:?} is not a whole number")))
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            "http/json" => Err("http/json is not supported (use grpc or http/protobuf)".into()),
            other => Err(format!(
                "{other:?} is not a protocol (use grpc or http/protobuf)"
            )),
        }
    }
}

impl SamplerConfig {
    /// Parses the spec's sampler names; the ratio samplers take `arg`
    /// (a number in [0, 1], 1 when absent).
    ///
    /// # Errors
    /// An unknown sampler name or a ratio outside [0, 1] (`Config`).
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Self, TelemetryError> {
        let ratio = || -> Result<f64, TelemetryError> {
            let Some(arg) = arg else { return Ok(1.0) };
            match arg.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(TelemetryError::config(
                    "OTEL_TRACES_SAMPLER_ARG",
                    format!("{arg:?} is not a ratio between 0 and 1"),
                )),
            }
        };
        Ok(match name.trim() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedTraceIdRatio(ratio()?),
            other => {
                return Err(TelemetryError::config(
                    "OTEL_TRACES_SAMPLER",
                    format!("{other:?} is not a supported sampler"),
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<TelemetryConfig, TelemetryError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TelemetryConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn off_without_an_endpoint() {
        let config = from(&[("OTEL_SERVICE_NAME", "x")]).unwrap();
        assert!(!config.enabled);
        assert_eq!(config.service_name, "x");
        assert_eq!(from(&[]).unwrap(), TelemetryConfig::default());
        let empty = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).unwrap();
        assert!(!empty.enabled, "an empty value counts as unset");
    }

    #[test]
    fn on_with_an_endpoint_unless_disabled() {
        let on = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]).unwrap();
        assert!(on.enabled);
        assert_eq!(on.resolved_endpoint(), "http://collector:4317");
        let traces = from(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/x")]).unwrap();
        assert!(traces.enabled);
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let config = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), off]).unwrap();
            assert!(!config.enabled, "{off:?}");
        }
    }

    #[test]
    fn http_endpoints_get_the_traces_path_unless_signal_specific() {
        let base = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(base.protocol, Protocol::HttpProtobuf);
        assert_eq!(base.resolved_endpoint(), "http://c:4318/v1/traces");
        let specific = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap();
        assert_eq!(specific.protocol, Protocol::HttpProtobuf);
        assert_eq!(specific.resolved_endpoint(), "http://t:9/custom");
        let default = TelemetryConfig {
            enabled: true,
            protocol: Protocol::HttpProtobuf,
            ..TelemetryConfig::default()
        };
        assert_eq!(
            default.resolved_endpoint(),
            "http://localhost:4318/v1/traces"
        );
    }

    #[test]
    fn timeouts_samplers_and_batches_are_read() {
        let config = from(&[
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ])
        .unwrap();
        assert_eq!(config.export_timeout, Duration::from_millis(2500));
        assert_eq!(config.sampler, SamplerConfig::ParentBasedTraceIdRatio(0.25));
        assert_eq!(config.batch.max_queue_size, 100);
        assert_eq!(config.batch.scheduled_delay, Duration::from_millis(50));
        let ratio = from(&[("OTEL_TRACES_SAMPLER", "traceidratio")]).unwrap();
        assert_eq!(ratio.sampler, SamplerConfig::TraceIdRatio(1.0));
    }

    #[test]
    fn unusable_values_are_errors_that_name_the_variable() {
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let err = from(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("OTEL_TRACES_SAMPLER_ARG"), "{err}");
    }
}
