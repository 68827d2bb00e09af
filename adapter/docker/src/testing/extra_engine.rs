//! A second Docker Engine on this machine, for multi-node tests: a dockerd
//! of its own in a network namespace of its own, run by
//! `scripts/extra-dockerd.sh` (root only). Blocking, as it runs the script.
//! Dropping it stops the engine and removes everything of it, also when the
//! test panicked.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use uuid::Uuid;

/// The longest prefix that keeps the name within the script's 32 bytes.
const MAX_PREFIX: usize = 23;

/// An extra engine, stopped and removed when dropped.
#[derive(Debug)]
pub struct ExtraEngine {
    /// The script's name for it: the prefix and a random suffix.
    pub name: String,
    /// Its `DOCKER_HOST`: `unix:///run/sandboxer-engines/NAME/docker.sock`,
    /// or `tcp://IP:2376` (mutual TLS) when started with TCP.
    pub host: String,
    /// With TCP: the client's `ca.pem`, `cert.pem` and `key.pem`, laid out
    /// as `DOCKER_CERT_PATH` expects.
    pub cert_dir: Option<PathBuf>,
}

impl ExtraEngine {
    /// Starts an engine named `name_prefix-<random>` (so parallel tests
    /// never collide), reachable over TCP with TLS when `tcp`, and copies
    /// `images` into it from the host engine (there is no registry here).
    ///
    /// # Panics
    /// When the prefix is not 1-23 of `[a-z0-9-]`, or the engine does not
    /// start or take the images (what was started is stopped again).
    pub fn start(name_prefix: &str, tcp: bool, images: &[&str]) -> ExtraEngine {
        assert!(
            !name_prefix.is_empty()
                && name_prefix.len() <= MAX_PREFIX
                && name_prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "an engine name prefix is 1-{MAX_PREFIX} of [a-z0-9-]: {name_prefix:?}"
        );
        // A v7 uuid ends in random bits; its start is the clock.
        let uuid = Uuid::now_v7().simple().to_string();
        let name = format!("{name_prefix}-{}", &uuid[uuid.len() - 8..]);
        let mut start = vec!["start", name.as_str()];
        if tcp {
            start.push("--tcp");
        }
        // The script takes down a start that fails.
        let host = script(&start);
        // From here on, Drop stops it whatever fails.
        let mut engine = ExtraEngine {
            name,
            host,
            cert_dir: None,
        };
        if tcp {
            engine.cert_dir = Some(PathBuf::from(script(&["certs", &engine.name])));
        }
        if !images.is_empty() {
            let mut load = vec!["load", engine.name.as_str()];
            load.extend_from_slice(images);
            script(&load);
        }
        engine
    }

    /// Stops the daemon and waits for it to exit; its data, namespace and
    /// running containers (`--live-restore`) stay. For "a node's daemon is
    /// away" drills.
    ///
    /// # Panics
    /// When the script fails.
    pub fn pause(&self) {
        script(&["pause", &self.name]);
    }

    /// Starts the daemon again with the same flags and waits until it
    /// answers; the containers that ran before `pause` are running.
    ///
    /// # Panics
    /// When the daemon does not come back.
    pub fn resume(&self) {
        script(&["resume", &self.name]);
    }

    /// The `docker` CLI pointed at this engine (with the client certificate
    /// when over TCP); add the subcommand.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        if let Some(certs) = &self.cert_dir {
            command
                .arg("--tlsverify")
                .arg("--tlscacert")
                .arg(certs.join("ca.pem"))
                .arg("--tlscert")
                .arg(certs.join("cert.pem"))
                .arg("--tlskey")
                .arg(certs.join("key.pem"));
        }
        command.args(["-H", &self.host]);
        command
    }
}

impl Drop for ExtraEngine {
    fn drop(&mut self) {
        // Never panic here: this may run while a failed test unwinds.
        if let Err(e) = run(&["stop", &self.name]) {
            eprintln!("extra engine {} not stopped: {e}", self.name);
        }
    }
}

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/extra-dockerd.sh")
}

fn script(args: &[&str]) -> String {
    run(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The script's stdout, trimmed; its stderr in the error.
fn run(args: &[&str]) -> Result<String, String> {
    let output = Command::new("bash")
        .arg(script_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("extra-dockerd.sh does not run: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "extra-dockerd.sh {}: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ))
    }
}
