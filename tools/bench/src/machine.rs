//! The machine the figures come from: cores, memory, kernel, Docker
//! version and storage driver, load average.

use bollard::Docker;

pub struct Machine {
    pub cores: usize,
    pub memory_mib: u64,
    pub kernel: String,
    pub docker_version: String,
    pub storage_driver: String,
    pub cgroup: String,
}

pub async fn describe(docker: &Docker) -> Machine {
    let info = docker.info().await.ok();
    let version = docker.version().await.ok();
    Machine {
        cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        memory_mib: meminfo_kib("MemTotal").unwrap_or(0) / 1024,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        docker_version: version
            .and_then(|v| v.version)
            .unwrap_or_else(|| "?".into()),
        storage_driver: info
            .as_ref()
            .and_then(|i| i.driver.clone())
            .unwrap_or_else(|| "?".into()),
        cgroup: info
            .as_ref()
            .map(|i| {
                format!(
                    "{} {}",
                    name_of(i.cgroup_driver.as_ref()),
                    name_of(i.cgroup_version.as_ref())
                )
            })
            .unwrap_or_default(),
    }
}

/// An engine enum as the API spells it (`cgroupfs`, `1`).
fn name_of<T: serde::Serialize>(value: Option<&T>) -> String {
    value
        .and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

impl Machine {
    /// Cores, Docker and its storage driver: a chart's caption.
    pub fn short(&self) -> String {
        format!(
            "{} cores, Docker {}, {}",
            self.cores, self.docker_version, self.storage_driver
        )
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cores, {} MiB RAM, kernel {}, Docker {} (storage driver {}, cgroup {})",
            self.cores,
            self.memory_mib,
            self.kernel,
            self.docker_version,
            self.storage_driver,
            self.cgroup
        )
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    field_kib(&text, key)
}

/// `key:   123 kB` in a `/proc` status-like text, in KiB.
pub fn field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// A process's `/proc/<pid>/status` field (`VmRSS`, `VmHWM`) in KiB.
pub fn process_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    field_kib(&text, key).ok_or_else(|| anyhow::anyhow!("no {key} in /proc/{pid}/status"))
}

/// How many file descriptors a process has open.
pub fn process_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let status = "Name:\tsandboxer\nVmHWM:\t   41234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(field_kib(status, "VmRSS"), Some(40000));
        assert_eq!(field_kib(status, "VmHWM"), Some(41234));
        assert_eq!(field_kib(status, "VmSwap"), None);
    }
}
