//! A unix-socket proxy in front of the Docker socket that a test can cut and
//! restore, to take Docker away from a runtime or a service without touching
//! the machine's daemon; it counts the connections open through it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

pub struct DockerProxy {
    path: PathBuf,
    upstream: PathBuf,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    open: Arc<AtomicUsize>,
}

/// Counts one connection for as long as its pipe lives (also when aborted).
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl DockerProxy {
    /// Listens at `path`, forwarding to the engine's socket.
    pub fn start(path: &Path) -> Self {
        let upstream = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let proxy = Self {
            path: path.to_owned(),
            upstream,
            tasks: Arc::default(),
            open: Arc::default(),
        };
        proxy.restore();
        proxy
    }

    /// `DOCKER_HOST` value that reaches the engine through this proxy.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Docker is gone: open connections drop, new ones are refused.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Docker is back.
    pub fn restore(&self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).expect("the proxy socket binds");
        let upstream = self.upstream.clone();
        let tasks = Arc::clone(&self.tasks);
        let open = Arc::clone(&self.open);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let counted = Open::new(&open);
                let pipe = tokio::spawn(async move {
                    let _counted = counted;
                    if let Ok(mut outbound) = UnixStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
