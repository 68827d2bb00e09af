//! Black-box test support: the real `sandboxer` binary on port 0 with a
//! temporary database, the locally built test image and an instance id of
//! its own, so it only ever touches what this test made. Dropping a
//! `Service` kills it and removes every container and volume of its
//! instance, even when the test failed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How to start a service.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub image: Option<String>,
    /// A database URL (PostgreSQL) instead of a file in the test's directory.
    pub database: Option<String>,
    /// Another service's instance id: a replica of the same deployment.
    pub instance: Option<String>,
}

// Builder steps: each test binary sets only what it needs.
#[allow(dead_code)]
impl Options {
    pub fn arg(mut self, flag: &str, value: impl ToString) -> Self {
        self.args.push(flag.to_owned());
        self.args.push(value.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = Some(image.to_owned());
        self
    }

    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_owned());
        self
    }

    /// A replica of `of`: its instance id (and the database it is given).
    pub fn replica_of(mut self, of: &Service) -> Self {
        self.instance = Some(of.instance.clone());
        self
    }

    /// No warm pool unless the test asks for one: its sandboxes would be
    /// in every count of containers and volumes.
    fn pool_default(&self) -> Vec<&'static str> {
        let asked = self.args.iter().any(|a| a == "--warm-pool-size")
            || self
                .env
                .iter()
                .any(|(k, _)| k == "SANDBOXER_WARM_POOL_SIZE");
        if asked {
            Vec::new()
        } else {
            vec!["--warm-pool-size", "0"]
        }
    }
}

pub struct Service {
    child: Option<Child>,
    pub url: String,
    pub instance: String,
    pub dir: tempfile::TempDir,
    pub options: Options,
    pub client: Client,
    starts: usize,
}

impl Service {
    /// Starts the binary and waits until it listens.
    pub async fn start(options: Options) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sandboxer-test-")
            .tempdir()
            .expect("a temporary directory");
        let instance = options
            .instance
            .clone()
            .unwrap_or_else(|| format!("test-{}", uuid::Uuid::now_v7().simple()));
        let mut service = Self {
            child: None,
            url: String::new(),
            instance,
            dir,
            options,
            client: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
            starts: 0,
        };
        service.launch().await;
        service
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("sandboxer.db")
    }

    /// What `--database` says: the test's file, or the URL it was given.
    fn database_arg(&self) -> String {
        self.options
            .database
            .clone()
            .unwrap_or_else(|| self.database().to_str().unwrap().to_owned())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("service-{}.log", self.starts))
    }

    /// What the service logged so far (its latest start).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn launch(&mut self) {
        self.starts += 1;
        let image = self
            .options
            .image
            .clone()
            .unwrap_or_else(sandboxer_docker::testing::ensure_test_image);
        let log = std::fs::File::create(self.log_path()).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sandboxer"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(["--database", &self.database_arg()])
            .args(["--instance", &self.instance])
            .args(["--image", &image])
            .args(&self.options.args)
            .args(self.options.pool_default())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env("RUST_LOG", "info,sandboxer=debug")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the sandboxer binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            other => panic!(
                "the service did not start ({other:?}); its log:\n{}",
                self.log()
            ),
        };
        self.url = line
            .strip_prefix("sandboxer listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body").to_vec();
        (status, headers, bytes)
    }

    /// Ids of the containers of this instance, running or not.
    pub fn containers(&self) -> Vec<String> {
        docker_lines(&["ps", "-aq", "--no-trunc", "--filter", &self.label()])
    }

    /// Names of the volumes of this instance.
    pub fn volumes(&self) -> Vec<String> {
        docker_lines(&["volume", "ls", "-q", "--filter", &self.label()])
    }

    fn label(&self) -> String {
        format!("label=sandboxer.instance={}", self.instance)
    }
}

/// JSON calls of the API: every binary but cli.rs, which goes through the
/// binary's own clients (tracing_e2e needs no `put_sandbox`).
#[allow(dead_code)]
impl Service {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value) {
        let (status, _, bytes) = self.raw(method, path, body, &[]).await;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, json)
    }

    pub async fn put_sandbox(&self, chat: &str, body: &str) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            &format!("/v1/chats/{chat}/sandbox"),
            Some(body.as_bytes().to_vec()),
        )
        .await
    }

    pub async fn exec(&self, chat: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/v1/chats/{chat}/exec"),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await
    }
}

/// Process control and container views that only some test binaries use
/// (service.rs restarts and kills; tracing_e2e terminates; the
/// tracing_overhead bench reads the pid).
#[allow(dead_code)]
impl Service {
    /// The process id of the running service.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL: no shutdown, no flush, requests cut.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM, then waits for a clean exit (0).
    pub async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().expect("a running child");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exited = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the service exits within 30 s of SIGTERM")
            .expect("wait works");
        assert!(
            exited.success(),
            "exit after SIGTERM: {exited}; log:\n{}",
            self.log()
        );
    }

    /// Starts again on the same database and instance.
    pub async fn restart(&mut self) {
        self.launch().await;
    }

    /// Stops (SIGTERM) and starts again with another default image.
    pub async fn restart_with_image(&mut self, image: &str) {
        self.terminate().await;
        self.options.image = Some(image.to_owned());
        self.launch().await;
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Ids of the running containers of this instance.
    pub fn running_containers(&self) -> Vec<String> {
        docker_lines(&["ps", "-q", "--no-trunc", "--filter", &self.label()])
    }

    /// `(chat id, session id)` labels of each container of this instance.
    pub fn container_sessions(&self) -> Vec<(String, String)> {
        docker_lines(&[
            "ps",
            "-a",
            "--filter",
            &self.label(),
            "--format",
            "{{.Label \"sandboxer.chat-id\"}} {{.Label \"sandboxer.session-id\"}}",
        ])
        .into_iter()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect()
    }
}

/// Lines a `docker` command printed (the CLI is beside the engine here).
pub fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let containers = self.containers();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(containers.iter().map(String::as_str));
            docker_lines(&args);
        }
        let volumes = self.volumes();
        if !volumes.is_empty() {
            let mut args = vec!["volume", "rm", "-f"];
            args.extend(volumes.iter().map(String::as_str));
            docker_lines(&args);
        }
    }
}

/// A chat id no other test uses.
pub fn chat(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}
