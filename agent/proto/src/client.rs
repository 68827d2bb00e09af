//! A client of one agent over one byte stream: many requests in flight, each
//! reply routed to its caller by request id. A reply whose caller is gone
//! (timed out, or asked over an earlier connection) is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

use crate::frame::{Decoded, EncodeError, FrameCodec, encode_frame};
use crate::message::{Reply, Request};

/// Frames queued for the writer; a caller waits for room past this.
const WRITE_QUEUE: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The stream ended or broke; the request may or may not have run.
    #[error("the agent connection is closed: {0}")]
    Closed(String),
    /// No reply within the caller's deadline; the request may still run.
    #[error("the agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the request is too large: {0}")]
    TooLarge(String),
    /// The agent answered bytes that are not a reply.
    #[error("the agent answered garbage: {0}")]
    Protocol(String),
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Reply, ClientError>>>>;

struct Shared {
    pending: Pending,
    closed: AtomicBool,
    why_closed: Mutex<Option<String>>,
}

impl Shared {
    fn close(&self, why: String) {
        self.closed.store(true, Ordering::Release);
        let mut reason = self.why_closed.lock().unwrap_or_else(|e| e.into_inner());
        reason.get_or_insert(why.clone());
        drop(reason);
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, waiter) in pending {
            let _ = waiter.send(Err(ClientError::Closed(why.clone())));
        }
    }

    fn closed_error(&self) -> ClientError {
        let why = self.why_closed.lock().unwrap_or_else(|e| e.into_inner());
        ClientError::Closed(why.clone().unwrap_or_else(|| "closed".into()))
    }
}

/// Cheap to clone; every clone shares the connection. The connection's two
/// tasks end when the stream ends or the last clone is dropped.
#[derive(Clone)]
pub struct AgentClient {
    shared: Arc<Shared>,
    writes: mpsc::Sender<Vec<u8>>,
    next_id: Arc<AtomicU64>,
    max_frame: usize,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Removes a request from the pending map however its caller leaves.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl AgentClient {
    /// Speaks to the agent at the other end of `reader` / `writer`; must be
    /// called within a tokio runtime (it spawns the reader and the writer).
    pub fn new<R, W>(reader: R, writer: W, max_frame: usize) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            why_closed: Mutex::new(None),
        });
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(write_loop(writer, queue, Arc::clone(&shared)));
        tokio::spawn(read_loop(reader, Arc::clone(&shared), max_frame));
        // Ids differ from those of earlier connections to the same agent,
        // whose late replies may still arrive on this stream.
        let first = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self {
            shared,
            writes,
            next_id: Arc::new(AtomicU64::new(first)),
            max_frame,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends `request` and waits up to `timeout` for its reply.
    ///
    /// # Errors
    /// `Closed`, `Timeout`, `TooLarge`, `Protocol` (see [`ClientError`]).
    pub async fn call(&self, request: &Request, timeout: Duration) -> Result<Reply, ClientError> {
        if self.is_closed() {
            return Err(self.shared.closed_error());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(id, request, self.max_frame).map_err(|e| match e {
            EncodeError::TooLarge { .. } => ClientError::TooLarge(e.to_string()),
            EncodeError::Encode(m) => ClientError::Protocol(m),
        })?;
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        let exchange = async {
            self.writes
                .send(frame)
                .await
                .map_err(|_| self.shared.closed_error())?;
            match rx.await {
                Ok(answer) => answer,
                Err(_) => Err(self.shared.closed_error()),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = queue.recv().await {
        if let Err(e) = writer.write_all(&frame).await {
            shared.close(format!("write failed: {e}"));
            return;
        }
        // Flush only when nothing else is queued: a burst goes out together.
        if queue.is_empty()
            && let Err(e) = writer.flush().await
        {
            shared.close(format!("flush failed: {e}"));
            return;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(reader: R, shared: Arc<Shared>, max_frame: usize) {
    let mut frames = FramedRead::new(reader, FrameCodec::new(max_frame));
    let why = loop {
        match frames.next().await {
            None => break "the agent's stream ended".to_owned(),
            Some(Err(e)) => break format!("read failed: {e}"),
            Some(Ok(Decoded::Garbage(n))) => {
                tracing::debug!(bytes = n, "skipped bytes that were not a frame");
            }
            Some(Ok(Decoded::Oversized { id, len })) => {
                deliver(
                    &shared,
                    id,
                    Err(ClientError::Protocol(format!(
                        "a {len}-byte reply is over the cap"
                    ))),
                );
            }
            Some(Ok(Decoded::Frame { id, body })) => {
                let reply = postcard::from_bytes::<Reply>(&body)
                    .map_err(|e| ClientError::Protocol(format!("undecodable reply: {e}")));
                deliver(&shared, id, reply);
            }
        }
    };
    shared.close(why);
}

fn deliver(shared: &Shared, id: u64, reply: Result<Reply, ClientError>) {
    let waiter = shared
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    if let Some(waiter) = waiter {
        let _ = waiter.send(reply);
    }
}
