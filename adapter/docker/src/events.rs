//! The engine's event stream, kept open in a background task to feed the
//! liveness cache: every container event of our sandboxes that may end
//! "running" removes the container's entry; a break in the stream forgets
//! them all until it is back (reconnects with backoff).
//!
//! bollard's `events()` is not used: its stream says nothing until the first
//! event, and the cache must know when the subscription is in place. This
//! talks HTTP/1.1 to the same socket with hyper and counts the stream as
//! connected when the engine's response headers arrive. The engine flushes
//! those just before it subscribes us, so the request asks for the events
//! since a moment before it was sent (`since`, replayed from the engine's
//! buffer of recent events): none falls between "connected" and the
//! subscription.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;

use crate::container::{LABEL_INSTANCE, LABEL_MANAGED};
use crate::engine::Endpoint;
use crate::liveness::{LivenessCache, may_end_running};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// How far back `since` reaches: covers the time between reading the clock
/// and the subscription, and modest clock skew with a remote engine.
/// Replayed old events can only remove entries, never add one.
const SINCE_MARGIN: Duration = Duration::from_secs(2);
/// A line longer than this is not an event: the stream is treated as broken.
const MAX_LINE: usize = 1 << 20;

/// What the stream is about: our sandboxes (of this instance, if any).
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub endpoint: Endpoint,
    /// `major.minor` of the negotiated API.
    pub api_version: String,
    pub instance: Option<String>,
    /// Bound on connecting and on the response headers.
    pub call_timeout: Duration,
}

/// Ends the task when dropped.
#[derive(Debug)]
pub(crate) struct EventTask(JoinHandle<()>);

impl Drop for EventTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the background subscription; returns at once.
pub(crate) fn spawn(subscription: Subscription, cache: Arc<LivenessCache>) -> EventTask {
    EventTask(tokio::spawn(follow(subscription, cache)))
}

/// Marks the stream down when the task ends in any way (aborted, or its
/// tokio runtime shut down), so that no one trusts a stream nobody reads.
struct Down(Arc<LivenessCache>);

impl Drop for Down {
    fn drop(&mut self) {
        self.0.disconnected();
    }
}

async fn follow(subscription: Subscription, cache: Arc<LivenessCache>) {
    let _down = Down(Arc::clone(&cache));
    let mut retry = FIRST_RETRY;
    // A failure to connect is logged once, then quietly retried.
    let mut reported = false;
    loop {
        let began = Instant::now();
        let ended = match &subscription.endpoint {
            Endpoint::Unix(path) => match bounded(&subscription, UnixStream::connect(path)).await {
                Ok(io) => stream(io, &subscription, &cache).await,
                Err(err) => Err(err),
            },
            Endpoint::Tcp(address) => {
                match bounded(&subscription, TcpStream::connect(address.as_str())).await {
                    Ok(io) => stream(io, &subscription, &cache).await,
                    Err(err) => Err(err),
                }
            }
        };
        let stats = cache.stats();
        cache.disconnected();
        let reason = ended
            .err()
            .unwrap_or_else(|| "the engine ended it".to_owned());
        if stats.connected {
            tracing::warn!(%reason, "the Docker event stream broke; inspects ask the engine until it is back");
        } else if reported {
            tracing::debug!(%reason, "the Docker event stream is still down");
        } else {
            tracing::info!(%reason, "the Docker event stream did not connect; inspects ask the engine");
        }
        reported = true;
        if began.elapsed() >= STABLE {
            retry = FIRST_RETRY;
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

async fn bounded<T>(
    subscription: &Subscription,
    fut: impl Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(subscription.call_timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("connecting: {err}")),
        Err(_) => Err(format!(
            "connecting took longer than {:?}",
            subscription.call_timeout
        )),
    }
}

/// One connection: subscribe, then apply events until the stream ends.
async fn stream<T>(io: T, subscription: &Subscription, cache: &LivenessCache) -> Result<(), String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limit = subscription.call_timeout;
    let (mut sender, conn) = tokio::time::timeout(limit, http1::handshake(TokioIo::new(io)))
        .await
        .map_err(|_| "the HTTP handshake timed out".to_owned())?
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let mut conn = std::pin::pin!(conn);
    let request = Request::get(events_path(subscription, SystemTime::now()))
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let response = tokio::time::timeout(limit, async {
        tokio::select! {
            response = sender.send_request(request) => response.map_err(|e| format!("request: {e}")),
            closed = &mut conn => Err(format!("connection closed before the answer: {closed:?}")),
        }
    })
    .await
    .map_err(|_| format!("no answer within {limit:?}"))??;
    if !response.status().is_success() {
        return Err(format!("the engine answered {}", response.status()));
    }
    cache.connected();
    tracing::debug!("the Docker event stream is connected");
    let mut body = response.into_body();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            closed = &mut conn => return Err(format!("connection closed: {closed:?}")),
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = frame.map_err(|e| format!("reading: {e}"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        pending.extend_from_slice(data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            apply(&line, cache)?;
        }
        if pending.len() > MAX_LINE {
            return Err("an event longer than 1 MiB".to_owned());
        }
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "Type", default)]
    typ: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: Actor,
}

#[derive(Debug, Default, Deserialize)]
struct Actor {
    #[serde(rename = "ID", default)]
    id: String,
}

/// Applies one line of the stream. A line that does not parse breaks the
/// stream: an event could have been missed.
fn apply(line: &[u8], cache: &LivenessCache) -> Result<(), String> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(());
    }
    let event: Event =
        serde_json::from_slice(line).map_err(|e| format!("an event that does not parse: {e}"))?;
    if event.typ == "container" && may_end_running(&event.action) {
        cache.invalidate(&event.actor.id);
    }
    Ok(())
}

/// Whether the stream sees the events of a container with these labels
/// (the filter of `events_path`).
pub(crate) fn watched(labels: &HashMap<String, String>, instance: Option<&str>) -> bool {
    labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
        && instance.is_none_or(|i| labels.get(LABEL_INSTANCE).map(String::as_str) == Some(i))
}

/// `/v<api>/events?since=<a moment ago>&filters=<our sandboxes' containers>`.
fn events_path(subscription: &Subscription, now: SystemTime) -> String {
    let since = now
        .checked_sub(SINCE_MARGIN)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let mut labels = vec![format!("{LABEL_MANAGED}=true")];
    if let Some(instance) = &subscription.instance {
        labels.push(format!("{LABEL_INSTANCE}={instance}"));
    }
    let filters = serde_json::json!({ "type": ["container"], "label": labels });
    format!(
        "/v{}/events?since={}.{:09}&filters={}",
        subscription.api_version,
        since.as_secs(),
        since.subsec_nanos(),
        percent_encode(&filters.to_string())
    )
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(instance: Option<&str>) -> Subscription {
        Subscription {
            endpoint: Endpoint::Unix("/nope".into()),
            api_version: "1.41".into(),
            instance: instance.map(str::to_owned),
            call_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_path_names_our_sandboxes_and_a_moment_ago() {
        let now = UNIX_EPOCH + Duration::new(1_700_000_010, 5);
        let path = events_path(&subscription(Some("i-1")), now);
        assert!(
            path.starts_with("/v1.41/events?since=1700000008.000000005&filters="),
            "{path}"
        );
        let encoded = path.split("filters=").nth(1).unwrap();
        assert!(!encoded.contains(['{', '"', ' ', '=']), "{encoded}");
        assert!(encoded.contains("sandboxer.instance%3Di-1"), "{encoded}");
        let without = events_path(&subscription(None), now);
        assert!(!without.contains("instance"), "{without}");
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let began = Instant::now();
        while !done() {
            assert!(began.elapsed() < Duration::from_secs(5), "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Reads a request head off a fake engine's connection.
    async fn request_head(conn: &mut UnixStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            conn.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    async fn send(conn: &mut UnixStream, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        conn.write_all(bytes).await.unwrap();
    }

    /// Against a fake engine on a unix socket: connected only once the
    /// answer's headers arrive; events apply; a dropped connection means
    /// disconnected and a reconnect; an ended task leaves it disconnected.
    #[tokio::test(flavor = "multi_thread")]
    async fn follows_a_fake_engine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let cache = Arc::new(LivenessCache::new(true));
        let mut sub = subscription(Some("i-1"));
        sub.endpoint = Endpoint::Unix(path);
        let task = spawn(sub, Arc::clone(&cache));

        let (mut conn, _) = listener.accept().await.unwrap();
        let head = request_head(&mut conn).await;
        assert!(head.starts_with("GET /v1.41/events?since="), "{head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!cache.stats().connected, "connected before the answer");
        send(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
        until("connected", || cache.stats().connected).await;
        let seen = cache.begin("abc").unwrap();
        cache.finish(seen, true);
        assert!(cache.running(Some("abc")));
        let die = br#"{"Type":"container","Action":"die","Actor":{"ID":"abc"}}"#;
        // One event split over two chunks.
        let (a, b) = die.split_at(20);
        send(&mut conn, format!("{:x}\r\n", a.len()).as_bytes()).await;
        send(&mut conn, a).await;
        send(&mut conn, format!("\r\n{:x}\r\n", b.len() + 1).as_bytes()).await;
        send(&mut conn, b).await;
        send(&mut conn, b"\n\r\n").await;
        until("the die event applied", || !cache.running(Some("abc"))).await;

        drop(conn);
        until("disconnected", || !cache.stats().connected).await;
        let (mut conn, _) = listener.accept().await.unwrap();
        request_head(&mut conn).await;
        send(
            &mut conn,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
        until("reconnected", || cache.stats().connected).await;
        assert_eq!(cache.stats().connects, 2);

        drop(task);
        until("disconnected when the task ends", || {
            !cache.stats().connected
        })
        .await;
    }

    #[test]
    fn deaths_invalidate_and_garbage_breaks_the_stream() {
        let cache = LivenessCache::new(true);
        cache.connected();
        let seen = cache.begin("abc").unwrap();
        cache.finish(seen, true);
        let exec = br#"{"Type":"container","Action":"exec_die","Actor":{"ID":"abc","Attributes":{"name":"x"}}}"#;
        apply(exec, &cache).unwrap();
        assert!(cache.running(Some("abc")));
        let die = br#"{"status":"die","id":"abc","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137"}},"scope":"local","time":1,"timeNano":1}"#;
        apply(die, &cache).unwrap();
        assert!(!cache.running(Some("abc")));
        assert!(apply(b"{not json", &cache).is_err());
        assert!(apply(b"  \r\n", &cache).is_ok());
    }
}
