//! `sandboxer-bench docker-proxy`: a unix-socket proxy in front of the
//! Docker socket that a drill can take away and give back, without
//! touching the machine's daemon. Signals switch it:
//! SIGUSR1 cuts it (open connections dropped, socket removed: callers get
//! "connection refused"); SIGHUP makes it a black hole (connections
//! accepted, never answered: callers time out); SIGUSR2 restores it;
//! SIGTERM / SIGINT end it. Each switch is printed on stdout.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// Socket to listen on (give the service `DOCKER_HOST=unix://<this>`).
    #[arg(long)]
    pub listen: PathBuf,
    /// The engine's socket (default: `DOCKER_HOST` if unix, else /var/run/docker.sock).
    #[arg(long)]
    pub upstream: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    BlackHole,
}

struct Proxy {
    listen: PathBuf,
    upstream: PathBuf,
    mode: Arc<Mutex<Mode>>,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    fn drop_connections(&self) {
        for c in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            c.abort();
        }
    }

    fn stop_listening(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        let _ = std::fs::remove_file(&self.listen);
    }

    fn listen(&mut self, mode: Mode) -> anyhow::Result<()> {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
        if self.accept.is_some() {
            return Ok(());
        }
        let _ = std::fs::remove_file(&self.listen);
        let listener = UnixListener::bind(&self.listen)
            .with_context(|| format!("binding {}", self.listen.display()))?;
        let (upstream, mode, connections) = (
            self.upstream.clone(),
            Arc::clone(&self.mode),
            Arc::clone(&self.connections),
        );
        self.accept = Some(tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let now = *mode.lock().unwrap_or_else(|e| e.into_inner());
                let upstream = upstream.clone();
                let task = tokio::spawn(serve(inbound, upstream, now));
                let mut all = connections.lock().unwrap_or_else(|e| e.into_inner());
                all.retain(|c| !c.is_finished());
                all.push(task);
            }
        }));
        Ok(())
    }
}

async fn serve(mut inbound: UnixStream, upstream: PathBuf, mode: Mode) {
    match mode {
        Mode::Pass => {
            if let Ok(mut outbound) = UnixStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        }
        Mode::BlackHole => {
            // Read and drop whatever comes; never answer.
            let mut sink = [0u8; 4096];
            while matches!(inbound.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    }
}

fn upstream_default() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

fn say(what: &str, path: &Path) {
    println!("docker-proxy: {what} {}", path.display());
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let mut proxy = Proxy {
        listen: args.listen.clone(),
        upstream: args.upstream.clone().unwrap_or_else(upstream_default),
        mode: Arc::new(Mutex::new(Mode::Pass)),
        accept: None,
        connections: Arc::default(),
    };
    let (mut cut, mut hole, mut restore) = (
        signal(SignalKind::user_defined1())?,
        signal(SignalKind::hangup())?,
        signal(SignalKind::user_defined2())?,
    );
    let (mut term, mut int) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    proxy.listen(Mode::Pass)?;
    say("listening", &proxy.listen);
    loop {
        tokio::select! {
            _ = cut.recv() => {
                proxy.stop_listening();
                proxy.drop_connections();
                say("cut", &proxy.listen);
            }
            _ = hole.recv() => {
                proxy.drop_connections();
                proxy.listen(Mode::BlackHole)?;
                say("black hole", &proxy.listen);
            }
            _ = restore.recv() => {
                proxy.drop_connections();
                proxy.listen(Mode::Pass)?;
                say("restored", &proxy.listen);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    proxy.stop_listening();
    proxy.drop_connections();
    say("stopped", &proxy.listen);
    Ok(())
}
