//! `sandboxer serve` configuration: a TOML file, overridden by `SANDBOXER_*`
//! variables, overridden by flags (clap reads flags and variables; the file
//! fills what both left unset; then the defaults, all in `defaults`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use sandboxer_core::domain::{Policy, ResourceLimits, Retention, SandboxSpec};
use serde::Deserialize;

use crate::defaults::{self as default, help};
use crate::nodes::{self, NodeSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `sandboxer serve`. Each may also come from its variable or the
/// config file (same name, snake_case); flags win over variables, variables
/// over the file. A field's help names its default (`defaults`), which
/// `resolve` falls back to.
#[derive(Debug, Default, Clone, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    #[arg(long, env = "SANDBOXER_LISTEN", help = help("Address to listen on; port 0 picks a free port", default::LISTEN))]
    pub listen: Option<SocketAddr>,
    #[arg(long, env = "SANDBOXER_DATABASE", help = help("SQLite database file, created on first start, or a postgres:// URL (replicas share one)", default::DATABASE))]
    pub database: Option<String>,
    #[arg(long, env = "SANDBOXER_IMAGE", help = help("Default sandbox image", default::IMAGE))]
    pub image: Option<String>,
    #[arg(long, env = "SANDBOXER_RUNTIME", help = help("Container runtime: `runc`, or `runsc` for gVisor", default::RUNTIME))]
    pub runtime: Option<String>,
    #[arg(long, env = "SANDBOXER_TTL_SECONDS", help = help("Idle TTL of a sandbox in seconds", default::TTL_SECONDS))]
    pub ttl_seconds: Option<u64>,
    #[arg(long, env = "SANDBOXER_MAX_LIFETIME_SECONDS", help = help("Max lifetime of a sandbox in seconds", default::MAX_LIFETIME_SECONDS))]
    pub max_lifetime_seconds: Option<u64>,
    #[arg(long, env = "SANDBOXER_RETENTION_SECONDS", help = help("Seconds a hibernated chat's files are kept (0: no hibernation, an idle sandbox is deleted)", default::RETENTION_SECONDS))]
    pub retention_seconds: Option<u64>,
    #[arg(long, env = "SANDBOXER_MAX_HIBERNATED", help = help("Hibernated chats kept at most; past it the oldest are deleted", default::MAX_HIBERNATED))]
    pub max_hibernated: Option<u64>,
    #[arg(long, env = "SANDBOXER_WARM_POOL_SIZE", help = help("Warm sandboxes of the default spec kept ready for new chats (0: no pool)", default::WARM_POOL_SIZE))]
    pub warm_pool_size: Option<usize>,
    #[arg(long, env = "SANDBOXER_WARM_POOL_MAX_AGE_SECONDS", help = help("Seconds after which a warm sandbox nobody claimed is recycled", default::WARM_POOL_MAX_AGE_SECONDS))]
    pub warm_pool_max_age_seconds: Option<u64>,
    #[arg(long, env = "SANDBOXER_CLEANUP_INTERVAL_SECONDS", help = help("Seconds between background cleanup runs", default::CLEANUP_INTERVAL_SECONDS))]
    pub cleanup_interval_seconds: Option<u64>,
    /// Bearer token every /v1 call must carry (none: no auth, loopback only).
    #[arg(long, env = "SANDBOXER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "SANDBOXER_ALLOW_REMOTE_WITHOUT_TOKEN", help = help("Listen beyond loopback without a token (you take the risk)", default::ALLOW_REMOTE_WITHOUT_TOKEN))]
    pub allow_remote_without_token: Option<bool>,
    #[arg(long, env = "SANDBOXER_MEMORY_MB", help = help("Memory limit per sandbox in MiB", default::MEMORY_MB))]
    pub memory_mb: Option<u64>,
    #[arg(long, env = "SANDBOXER_CPUS", help = help("CPUs per sandbox", default::cpus()))]
    pub cpus: Option<f64>,
    #[arg(long, env = "SANDBOXER_PIDS_LIMIT", help = help("Process limit per sandbox", default::PIDS_LIMIT))]
    pub pids_limit: Option<u64>,
    #[arg(long, env = "SANDBOXER_TMP_MB", help = help("Size of each sandbox's /tmp in MiB", default::TMP_MB))]
    pub tmp_mb: Option<u64>,
    #[arg(long, env = "SANDBOXER_USER", help = help("Non-root `uid:gid` the sandbox runs as", default::USER))]
    pub user: Option<String>,
    #[arg(long, env = "SANDBOXER_NETWORK", help = help("Docker network of the sandboxes", default::NETWORK))]
    pub network: Option<String>,
    #[arg(long, env = "SANDBOXER_MAX_FILE_BYTES", help = help("Largest file upload or download in bytes", default::MAX_FILE_BYTES))]
    pub max_file_bytes: Option<usize>,
    #[arg(long, env = "SANDBOXER_EXEC_OUTPUT_BYTES", help = help("Output kept per stream of an exec, in bytes", default::EXEC_OUTPUT_BYTES))]
    pub exec_output_bytes: Option<usize>,
    #[arg(long, env = "SANDBOXER_MAX_PROCESSES", help = help("Live processes running at once per sandbox", default::MAX_PROCESSES))]
    pub max_processes: Option<u32>,
    #[arg(long, env = "SANDBOXER_PROCESS_BUFFER_BYTES", help = help("Output buffered per stream of a live process, in bytes", default::PROCESS_BUFFER_BYTES))]
    pub process_buffer_bytes: Option<u64>,
    #[arg(long, env = "SANDBOXER_ORPHAN_GRACE_SECONDS", help = help("Seconds a container without a session is spared by cleanup", default::ORPHAN_GRACE_SECONDS))]
    pub orphan_grace_seconds: Option<u64>,
    #[arg(long, env = "SANDBOXER_CLEANUP_CONCURRENCY", help = help("Sandboxes stopped at once by cleanup", default::CLEANUP_CONCURRENCY))]
    pub cleanup_concurrency: Option<usize>,
    #[arg(long, env = "SANDBOXER_DOCKER_TIMEOUT_SECONDS", help = help("Bound of each Docker Engine call in seconds", default::DOCKER_TIMEOUT_SECONDS))]
    pub docker_timeout_seconds: Option<u64>,
    #[arg(long, env = "SANDBOXER_PREPARE_IMAGE", help = help("Build the default image on first start when it is missing", default::PREPARE_IMAGE))]
    pub prepare_image: Option<bool>,
    #[arg(long, env = "SANDBOXER_LOG_FORMAT", value_enum, help = help("Log format", default::log_format()))]
    pub log_format: Option<LogFormat>,
    /// Export traces to this OTLP endpoint (also OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "SANDBOXER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Name of this service instance; its sandboxes carry it as a label and
    /// it only ever touches those (default: derived from the database path).
    #[arg(long, env = "SANDBOXER_INSTANCE")]
    pub instance: Option<String>,
    /// Several Docker Engines (nodes): `name=unix:///path,name=tcp://host:port`
    /// (default: the one engine of DOCKER_HOST). The config file's
    /// `[[nodes]]` tables say more (TLS, capacity, draining).
    #[arg(long, env = "SANDBOXER_DOCKER_HOSTS")]
    pub docker_hosts: Option<String>,
    /// `[[nodes]]` of the config file only.
    #[arg(skip)]
    pub nodes: Option<Vec<NodeSettings>>,
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
    pub retention: Duration,
    pub max_hibernated: u64,
    pub warm_pool_size: usize,
    pub warm_pool_max_age: Duration,
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
    pub max_processes: u32,
    pub process_buffer_bytes: u64,
    pub orphan_grace: Duration,
    pub cleanup_concurrency: usize,
    pub docker_timeout: Duration,
    pub prepare_image: bool,
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    pub instance: Option<String>,
    /// Empty: the one engine of DOCKER_HOST.
    pub nodes: Vec<NodeSettings>,
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

pub(crate) fn resolve(flags: ServeSettings, file: ServeSettings) -> anyhow::Result<ServeConfig> {
    let cpus: f64 = pick!(flags, file, cpus, default::CPUS);
    if !(cpus > 0.0 && cpus <= 1024.0) {
        bail!("cpus must be above 0, got {cpus}");
    }
    let listen = default::LISTEN
        .parse()
        .context("the default listen address")?;
    let config = ServeConfig {
        listen: pick!(flags, file, listen, listen),
        database: pick!(flags, file, database, default::DATABASE.to_owned()),
        image: pick!(flags, file, image, default::IMAGE.to_owned()),
        runtime: pick!(flags, file, runtime, default::RUNTIME.to_owned()),
        ttl: secs(pick!(flags, file, ttl_seconds, default::TTL_SECONDS)),
        max_lifetime: secs(pick!(
            flags,
            file,
            max_lifetime_seconds,
            default::MAX_LIFETIME_SECONDS
        )),
        retention: secs(pick!(
            flags,
            file,
            retention_seconds,
            default::RETENTION_SECONDS
        )),
        max_hibernated: pick!(flags, file, max_hibernated, default::MAX_HIBERNATED),
        warm_pool_size: pick!(flags, file, warm_pool_size, default::WARM_POOL_SIZE),
        warm_pool_max_age: secs(pick!(
            flags,
            file,
            warm_pool_max_age_seconds,
            default::WARM_POOL_MAX_AGE_SECONDS
        )),
        cleanup_interval: secs(pick!(
            flags,
            file,
            cleanup_interval_seconds,
            default::CLEANUP_INTERVAL_SECONDS
        )),
        token: flags.token.or(file.token).filter(|t| !t.is_empty()),
        memory_bytes: pick!(flags, file, memory_mb, default::MEMORY_MB) * MIB,
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        nano_cpus: (cpus * 1e9) as u64,
        pids_limit: pick!(flags, file, pids_limit, default::PIDS_LIMIT),
        tmp_bytes: pick!(flags, file, tmp_mb, default::TMP_MB) * MIB,
        user: pick!(flags, file, user, default::USER.to_owned()),
        network: pick!(flags, file, network, default::NETWORK.to_owned()),
        max_file_bytes: pick!(flags, file, max_file_bytes, default::MAX_FILE_BYTES),
        exec_output_bytes: pick!(flags, file, exec_output_bytes, default::EXEC_OUTPUT_BYTES),
        max_processes: pick!(flags, file, max_processes, default::MAX_PROCESSES).max(1),
        // At least a page: a smaller ring would expire cursors at once.
        process_buffer_bytes: pick!(
            flags,
            file,
            process_buffer_bytes,
            default::PROCESS_BUFFER_BYTES
        )
        .max(4096),
        orphan_grace: secs(pick!(
            flags,
            file,
            orphan_grace_seconds,
            default::ORPHAN_GRACE_SECONDS
        )),
        cleanup_concurrency: pick!(
            flags,
            file,
            cleanup_concurrency,
            default::CLEANUP_CONCURRENCY
        )
        .max(1),
        docker_timeout: secs(pick!(
            flags,
            file,
            docker_timeout_seconds,
            default::DOCKER_TIMEOUT_SECONDS
        )),
        prepare_image: pick!(flags, file, prepare_image, default::PREPARE_IMAGE),
        log_format: pick!(flags, file, log_format, default::LOG_FORMAT),
        otlp_endpoint: flags.otlp_endpoint.or(file.otlp_endpoint),
        instance: flags.instance.or(file.instance),
        nodes: match flags.docker_hosts.or(file.docker_hosts) {
            Some(list) => nodes::parse_hosts(&list)?,
            None => file.nodes.unwrap_or_default(),
        },
    };
    nodes::validate(&config.nodes)?;
    let open = pick!(
        flags,
        file,
        allow_remote_without_token,
        default::ALLOW_REMOTE_WITHOUT_TOKEN
    );
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

const MIB: u64 = 1024 * 1024;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl ServeConfig {
    /// The lifecycle policy these settings ask for.
    ///
    /// # Errors
    /// A TTL or max lifetime under a second.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        Ok(Policy::new(self.ttl, self.max_lifetime)?)
    }

    pub fn retention(&self) -> Retention {
        Retention {
            period: self.retention,
            max_hibernated: self.max_hibernated,
        }
    }

    /// The spec a chat gets unless it chooses otherwise: the core's
    /// defaults with what the operator set laid over them.
    pub fn sandbox_defaults(&self) -> SandboxSpec {
        SandboxSpec {
            runtime: self.runtime.clone(),
            user: self.user.clone(),
            limits: ResourceLimits {
                memory_bytes: self.memory_bytes,
                nano_cpus: self.nano_cpus,
                pids: self.pids_limit,
                tmp_bytes: self.tmp_bytes,
            },
            network: self.network.clone(),
            ..SandboxSpec::with_defaults(self.image.clone())
        }
    }
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
