//! Shared setup of the PostgreSQL store tests: a store on a throwaway
//! database, and a TCP proxy in front of the server that a test can cut
//! (the database "goes away") and restore.

#![allow(dead_code)] // each test file uses a part

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sandboxer_core::trace::NoopTracer;
use sandboxer_postgres::testing::TestDatabase;
use sandboxer_postgres::{PostgresSessionStore, PostgresStoreOptions};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub async fn open(url: &str, options: PostgresStoreOptions) -> PostgresSessionStore {
    PostgresSessionStore::open(url, options, Arc::new(NoopTracer))
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"))
}

/// `url` with its host and port replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    PgConnectOptions::from_str(url)
        .unwrap()
        .host(&addr.ip().to_string())
        .port(addr.port())
        .to_url_lossy()
        .to_string()
}

/// A proxy to the database's server. `cut` closes every connection through
/// it and refuses new ones until `restore`.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(db: &TestDatabase) -> Self {
        let target = PgConnectOptions::from_str(db.url()).unwrap();
        let upstream = format!("{}:{}", target.get_host(), target.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let task = tokio::spawn(serve(listener, upstream, up.clone(), generation.clone()));
        Self {
            addr,
            up,
            generation,
            task,
        }
    }

    pub fn url(&self, db: &TestDatabase) -> String {
        via(db.url(), self.addr)
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    upstream: String,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        if !up.load(Ordering::SeqCst) {
            drop(client); // refused: the server is "away"
            continue;
        }
        let upstream = upstream.clone();
        let mut cut = generation.subscribe();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = cut.changed() => {}
            }
        });
    }
}
