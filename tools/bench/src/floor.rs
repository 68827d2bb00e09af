//! The attach-stream floor: the agent protocol spoken straight to the agent
//! of a raw container (made with the service's own create body, so the
//! agent is its PID 1), over one `attach` as the adapter opens it. What a
//! call costs here is what no service on this channel can go under: the
//! engine's attach plumbing (dockerd, containerd-shim, the pipes) and the
//! agent itself, without HTTP, the store or the adapter.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bollard::Docker;
use sandboxer_agent_proto::{AgentClient, ExecSpec, PROTOCOL_VERSION, Reply, Request};
use sandboxer_core::domain::ExecRequest;

/// How long one call may take before the floor counts as broken.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The adapter's grace between TERM and KILL (`agent/calls.rs`), so the
/// floor's request is byte for byte the one the service sends.
const KILL_GRACE_MS: u64 = 500;

pub struct Floor {
    client: AgentClient,
}

/// One exec over the floor.
pub struct FloorExec {
    pub took: Duration,
    pub exit_code: i64,
    /// The agent's own spawn-to-exit time of the command (`duration_us`).
    pub in_agent: Duration,
}

impl Floor {
    /// Attaches to `container`'s agent (stdin, stdout and stderr, stream,
    /// no logs: the adapter's options) and checks it says hello.
    pub async fn attach(docker: &Docker, container: &str) -> anyhow::Result<Self> {
        let client = sandboxer_docker::testing::agent_channel(docker, container)
            .await
            .context("attach to the raw container's agent")?;
        match client.call(&Request::Hello, CALL_TIMEOUT).await? {
            Reply::Hello(info) if info.protocol == PROTOCOL_VERSION => Ok(Self { client }),
            other => bail!("the raw container's agent answered hello with {other:?}"),
        }
    }

    /// One `Hello` round trip: the channel and the agent's dispatch alone.
    pub async fn hello(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let reply = self.client.call(&Request::Hello, CALL_TIMEOUT).await?;
        let took = started.elapsed();
        match reply {
            Reply::Hello(_) => Ok(took),
            other => bail!("hello answered {other:?}"),
        }
    }

    /// Runs `argv` as the adapter would (the core's defaults for env,
    /// workdir, timeout and output cap).
    pub async fn exec(&self, argv: &[&str]) -> anyhow::Result<FloorExec> {
        let request = ExecRequest::new(argv.iter().map(|s| (*s).to_owned()).collect())?;
        let spec = ExecSpec {
            argv: request.argv,
            env: request.env.into_iter().collect(),
            workdir: request.workdir,
            stdin: None,
            timeout_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            output_limit: request.output_limit as u64,
            kill_grace_ms: KILL_GRACE_MS,
        };
        let call = Request::Exec(spec);
        let started = Instant::now();
        let reply = self.client.call(&call, CALL_TIMEOUT).await?;
        let took = started.elapsed();
        match reply {
            Reply::Exec(done) => Ok(FloorExec {
                took,
                exit_code: done.exit_code,
                in_agent: Duration::from_micros(done.duration_us),
            }),
            other => bail!("exec {argv:?} answered {other:?}"),
        }
    }
}
