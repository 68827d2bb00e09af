//! The defaults of `sandboxer serve` and the CLI clients, each written once:
//! the core's own where the core has one (policy, sandbox spec, limits, exec
//! output), the binary's otherwise. `config` falls back to these, `--help`
//! shows them (built from here), and a test holds the README's
//! configuration table to both.

use sandboxer_core::domain::{ResourceLimits, exec, policy, spec, workspace};
use sandboxer_core::usecase;

use crate::config::LogFormat;

const MIB: u64 = 1024 * 1024;

pub const LISTEN: &str = "127.0.0.1:7070";
/// Where the clients look for the service: `LISTEN`, over HTTP.
pub const URL: &str = "http://127.0.0.1:7070";
pub const DATABASE: &str = "sandboxer.db";
/// The image a chat gets unless it asks for another (`sandboxer image build` makes it).
pub const IMAGE: &str = "sandboxer-base:bookworm";
pub const RUNTIME: &str = spec::DEFAULT_RUNTIME;
pub const TTL_SECONDS: u64 = policy::DEFAULT_IDLE_TTL.as_secs();
pub const MAX_LIFETIME_SECONDS: u64 = policy::DEFAULT_MAX_LIFETIME.as_secs();
pub const RETENTION_SECONDS: u64 = workspace::DEFAULT_RETENTION.as_secs();
pub const MAX_HIBERNATED: u64 = workspace::DEFAULT_MAX_HIBERNATED;
pub const WARM_POOL_SIZE: usize = usecase::DEFAULT_POOL_SIZE;
pub const WARM_POOL_MAX_AGE_SECONDS: u64 = usecase::DEFAULT_POOL_MAX_AGE.as_secs();
pub const CLEANUP_INTERVAL_SECONDS: u64 = 60;
pub const ALLOW_REMOTE_WITHOUT_TOKEN: bool = false;
pub const MEMORY_MB: u64 = ResourceLimits::DEFAULT.memory_bytes / MIB;
// Exact: the core's quota is a whole number of CPUs.
#[allow(clippy::cast_precision_loss)]
pub const CPUS: f64 = ResourceLimits::DEFAULT.nano_cpus as f64 / 1e9;
pub const PIDS_LIMIT: u64 = ResourceLimits::DEFAULT.pids;
pub const TMP_MB: u64 = ResourceLimits::DEFAULT.tmp_bytes / MIB;
pub const USER: &str = spec::DEFAULT_USER;
pub const NETWORK: &str = spec::DEFAULT_NETWORK;
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
pub const EXEC_OUTPUT_BYTES: usize = exec::DEFAULT_OUTPUT_LIMIT;
pub const MAX_PROCESSES: u32 = sandboxer_core::usecase::DEFAULT_MAX_PROCESSES;
pub const PROCESS_BUFFER_BYTES: u64 = sandboxer_core::usecase::DEFAULT_PROCESS_BUFFER_BYTES;
pub const ORPHAN_GRACE_SECONDS: u64 = 30;
pub const CLEANUP_CONCURRENCY: usize = 8;
pub const DOCKER_TIMEOUT_SECONDS: u64 = 30;
pub const PREPARE_IMAGE: bool = true;
pub const LOG_FORMAT: LogFormat = LogFormat::Text;

/// A flag's help line with its default in clap's own `[default: ...]`
/// form. The settings stay `Option`s without a clap default, because a
/// flag clap filled in could not be told from one given and would hide the
/// config file's value.
pub fn help(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

/// `CPUS` as the README and `--help` write it (`1.0`, not `1`).
pub fn cpus() -> String {
    format!("{CPUS:?}")
}

/// `LOG_FORMAT` by the name the flag takes.
pub fn log_format() -> String {
    clap::ValueEnum::to_possible_value(&LOG_FORMAT)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "defaults_agree.rs"]
mod defaults_agree;
