//! `sandboxer serve` started by the benchmark: the release binary on port 0,
//! a temporary database and an instance id of its own; stopped with SIGTERM
//! (SIGKILL if it does not exit in 30 s).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Spawned {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The `sandboxer` binary to start: `--sandboxer-bin`, else the one beside
/// this executable, rebuilt first when this runs under `cargo run` so it is
/// never older than the sources.
pub fn locate_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe().context("locating this executable")?;
    let dir = me.parent().context("this executable has no directory")?;
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "sandboxer", "--profile"]);
        build.arg(if profile == "debug" { "dev" } else { profile });
        if let Some(target) = dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        eprintln!("building the sandboxer binary ({profile})...");
        let status = build.status().context("running cargo build -p sandboxer")?;
        if !status.success() {
            bail!("cargo build -p sandboxer failed");
        }
    }
    let bin = dir.join("sandboxer");
    if !bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p sandboxer`, or pass --sandboxer-bin",
            bin.display()
        );
    }
    if profile != "release" {
        eprintln!("warning: {} is not a release build", bin.display());
    }
    Ok(bin)
}

impl Spawned {
    /// Starts `bin serve` and waits for its `sandboxer listening on` line.
    pub async fn start(
        bin: &Path,
        image: &str,
        instance: &str,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sandboxer-bench-")
            .tempdir()
            .context("a temporary directory")?;
        let log = dir.path().join("service.log");
        let database = dir.path().join("sandboxer.db");
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--database")
            .arg(&database)
            .args(["--instance", instance])
            .args(["--image", image])
            // Cleanup runs when the benchmark asks, never in the background.
            .args(["--cleanup-interval-seconds", "86400"])
            .args(["--prepare-image", "false"])
            .args(extra)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).context("the service log")?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the service has no pid")?;
        let stdout = child.stdout.take().context("the service's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            other => bail!(
                "the service did not start ({other:?}); its log:\n{}",
                tail(&log, 30)
            ),
        };
        let url = line
            .strip_prefix("sandboxer listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        // Keep draining stdout so the service never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            url,
            log,
            _dir: dir,
        })
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 30 s).
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.start_kill()?;
                let status = self.child.wait().await?;
                bail!("the service ignored SIGTERM for 30 s and was killed ({status})")
            }
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
