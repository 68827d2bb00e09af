//! `sandboxer serve` configuration: a TOML file, overridden by `SANDBOXER_*`
//! variables, overridden by flags (clap reads flags and variables; the file
//! fills what both left unset; then the defaults).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// The image a chat gets unless it asks for another (`sandboxer image build` makes it).
pub const DEFAULT_IMAGE: &str = "sandboxer-base:bookworm";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `sandboxer serve`. Each may also come from its variable or the
/// config file (same name, snake_case); flags win over variables, variables
/// over the file.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// Address to listen on (`127.0.0.1:7070`). Port 0 picks a free port.
    #[arg(long, env = "SANDBOXER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// SQLite database file, created on first start (`sandboxer.db`).
    #[arg(long, env = "SANDBOXER_DATABASE")]
    pub database: Option<String>,
    /// Default sandbox image (`sandboxer-base:bookworm`).
    #[arg(long, env = "SANDBOXER_IMAGE")]
    pub image: Option<String>,
    /// Container runtime: `runc`, or `runsc` for gVisor (`runc`).
    #[arg(long, env = "SANDBOXER_RUNTIME")]
    pub runtime: Option<String>,
    /// Idle TTL of a sandbox in seconds (1800).
    #[arg(long, env = "SANDBOXER_TTL_SECONDS")]
    pub ttl_seconds: Option<u64>,
    /// Max lifetime of a sandbox in seconds (86400).
    #[arg(long, env = "SANDBOXER_MAX_LIFETIME_SECONDS")]
    pub max_lifetime_seconds: Option<u64>,
    /// Seconds between background cleanup runs (60).
    #[arg(long, env = "SANDBOXER_CLEANUP_INTERVAL_SECONDS")]
    pub cleanup_interval_seconds: Option<u64>,
    /// Bearer token every /v1 call must carry (none: no auth, loopback only).
    #[arg(long, env = "SANDBOXER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Listen beyond loopback without a token (you take the risk).
    #[arg(long, env = "SANDBOXER_ALLOW_REMOTE_WITHOUT_TOKEN")]
    pub allow_remote_without_token: Option<bool>,
    /// Memory limit per sandbox in MiB (512).
    #[arg(long, env = "SANDBOXER_MEMORY_MB")]
    pub memory_mb: Option<u64>,
    /// CPUs per sandbox (1.0).
    #[arg(long, env = "SANDBOXER_CPUS")]
    pub cpus: Option<f64>,
    /// Process limit per sandbox (256).
    #[arg(long, env = "SANDBOXER_PIDS_LIMIT")]
    pub pids_limit: Option<u64>,
    /// Size of each sandbox's /tmp in MiB (64).
    #[arg(long, env = "SANDBOXER_TMP_MB")]
    pub tmp_mb: Option<u64>,
    /// Non-root `uid:gid` the sandbox runs as (`1000:1000`).
    #[arg(long, env = "SANDBOXER_USER")]
    pub user: Option<String>,
    /// Docker network of the sandboxes (`none`).
    #[arg(long, env = "SANDBOXER_NETWORK")]
    pub network: Option<String>,
    /// Largest file upload or download in bytes (67108864).
    #[arg(long, env = "SANDBOXER_MAX_FILE_BYTES")]
    pub max_file_bytes: Option<usize>,
    /// Output kept per stream of an exec, in bytes (1048576).
    #[arg(long, env = "SANDBOXER_EXEC_OUTPUT_BYTES")]
    pub exec_output_bytes: Option<usize>,
    /// Seconds a container without a session is spared by cleanup (30).
    #[arg(long, env = "SANDBOXER_ORPHAN_GRACE_SECONDS")]
    pub orphan_grace_seconds: Option<u64>,
    /// Sandboxes stopped at once by cleanup (8).
    #[arg(long, env = "SANDBOXER_CLEANUP_CONCURRENCY")]
    pub cleanup_concurrency: Option<usize>,
    /// Bound of each Docker Engine call in seconds (30).
    #[arg(long, env = "SANDBOXER_DOCKER_TIMEOUT_SECONDS")]
    pub docker_timeout_seconds: Option<u64>,
    /// Build the default image on first start when it is missing (true).
    #[arg(long, env = "SANDBOXER_PREPARE_IMAGE")]
    pub prepare_image: Option<bool>,
    /// Log format (text).
    #[arg(long, env = "SANDBOXER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Export traces to this OTLP endpoint (also OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "SANDBOXER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Name of this service instance; its sandboxes carry it as a label and
    /// it only ever touches those (default: derived from the database path).
    #[arg(long, env = "SANDBOXER_INSTANCE")]
    pub instance: Option<String>,
}

/// The settings in force, every field decided.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub database: String,
    pub image: String,
    pub runtime: String,
    pub ttl: Duration,
    pub max_lifetime: Duration,
    pub cleanup_interval: Duration,
    pub token: Option<String>,
    pub memory_bytes: u64,
    pub nano_cpus: u64,
    pub pids_limit: u64,
    pub tmp_bytes: u64,
    pub user: String,
    pub network: String,
    pub max_file_bytes: usize,
    pub exec_output_bytes: usize,
    pub orphan_grace: Duration,
    pub cleanup_concurrency: usize,
    pub docker_timeout: Duration,
    pub prepare_image: bool,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    pub instance: Option<String>,
}

/// Fills what flags and variables left unset from the file at `path`.
///
/// # Errors
/// The file cannot be read or holds unknown keys or wrong types.
pub fn load(flags: ServeSettings, path: Option<&Path>) -> anyhow::Result<ServeConfig> {
    let file = match path {
        Some(p) => read_file(p)?,
        None => ServeSettings::default(),
    };
    resolve(flags, file)
}

fn read_file(path: &Path) -> anyhow::Result<ServeSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

macro_rules! pick {
    ($flags:ident, $file:ident, $field:ident, $default:expr) => {
        $flags.$field.or($file.$field).unwrap_or($default)
    };
}

fn resolve(flags: ServeSettings, file: ServeSettings) -> anyhow::Result<ServeConfig> {
    let cpus: f64 = pick!(flags, file, cpus, 1.0);
    if !(cpus > 0.0 && cpus <= 1024.0) {
        bail!("cpus must be above 0, got {cpus}");
    }
    let config = ServeConfig {
        listen: pick!(
            flags,
            file,
            listen,
            SocketAddr::from(([127, 0, 0, 1], 7070))
        ),
        database: pick!(flags, file, database, "sandboxer.db".to_owned()),
        image: pick!(flags, file, image, DEFAULT_IMAGE.to_owned()),
        runtime: pick!(flags, file, runtime, "runc".to_owned()),
        ttl: secs(pick!(flags, file, ttl_seconds, 1800)),
        max_lifetime: secs(pick!(flags, file, max_lifetime_seconds, 86_400)),
        cleanup_interval: secs(pick!(flags, file, cleanup_interval_seconds, 60)),
        token: flags.token.or(file.token).filter(|t| !t.is_empty()),
        memory_bytes: pick!(flags, file, memory_mb, 512) * 1024 * 1024,
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        nano_cpus: (cpus * 1e9) as u64,
        pids_limit: pick!(flags, file, pids_limit, 256),
        tmp_bytes: pick!(flags, file, tmp_mb, 64) * 1024 * 1024,
        user: pick!(flags, file, user, "1000:1000".to_owned()),
        network: pick!(flags, file, network, "none".to_owned()),
        max_file_bytes: pick!(flags, file, max_file_bytes, 64 * 1024 * 1024),
        exec_output_bytes: pick!(flags, file, exec_output_bytes, 1024 * 1024),
        orphan_grace: secs(pick!(flags, file, orphan_grace_seconds, 30)),
        cleanup_concurrency: pick!(flags, file, cleanup_concurrency, 8).max(1),
        docker_timeout: secs(pick!(flags, file, docker_timeout_seconds, 30)),
        prepare_image: pick!(flags, file, prepare_image, true),
        log_format: pick!(flags, file, log_format, LogFormat::Text),
        otlp_endpoint: flags.otlp_endpoint.or(file.otlp_endpoint),
        instance: flags.instance.or(file.instance),
    };
    let open = pick!(flags, file, allow_remote_without_token, false);
    if config.token.is_none() && !config.listen.ip().is_loopback() && !open {
        bail!(
            "refusing to listen on {} without a token: set SANDBOXER_TOKEN, listen on loopback, \
             or pass --allow-remote-without-token true",
            config.listen
        );
    }
    if config.cleanup_interval.is_zero() {
        bail!("cleanup interval must be at least one second");
    }
    Ok(config)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `SANDBOXER_CONFIG` or `--config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigFile {
    /// TOML config file (keys as the flags, snake_case).
    #[arg(long = "config", env = "SANDBOXER_CONFIG")]
    pub path: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file: ServeSettings = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            ttl_seconds = 10
            image = "from-file:1"
            "#,
        )
        .unwrap();
        let flags = ServeSettings {
            image: Some("from-flag:1".into()),
            ..ServeSettings::default()
        };
        let c = resolve(flags, file).unwrap();
        assert_eq!(c.image, "from-flag:1");
        assert_eq!(c.ttl, Duration::from_secs(10));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_lifetime, Duration::from_secs(86_400));
        assert_eq!(c.runtime, "runc");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        assert!(toml::from_str::<ServeSettings>("ttl = 5").is_err());
        assert!(toml::from_str::<ServeSettings>("ttl_seconds = \"5\"").is_err());
    }

    #[test]
    fn remote_listening_needs_a_token() {
        let flags = ServeSettings {
            listen: Some("0.0.0.0:7070".parse().unwrap()),
            ..ServeSettings::default()
        };
        assert!(resolve(flags.clone(), ServeSettings::default()).is_err());
        let with_token = ServeSettings {
            token: Some("t".into()),
            ..flags
        };
        assert!(resolve(with_token, ServeSettings::default()).is_ok());
    }
}
