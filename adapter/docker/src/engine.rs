//! The bollard client with every call bounded in time, and the odd GET
//! made on a connection of our own.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::InspectContainerOptions;
use bollard::{API_DEFAULT_VERSION, Docker};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sandboxer_core::port::RuntimeError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::config::TlsFiles;
use crate::errors::{Fault, Subject};

/// bollard's own timeout (whole seconds, response headers only). Calls are
/// bounded by `Engine::call`; this is only a backstop.
const BOLLARD_TIMEOUT_SECS: u64 = 600;

/// Where the engine listens, for the connections the adapter makes itself
/// (the event stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

#[derive(Clone)]
pub(crate) struct Engine {
    pub(crate) docker: Docker,
    pub(crate) call_timeout: Duration,
    /// The engine listens on a local unix socket: its containers' processes
    /// are this host's processes (for runc).
    pub(crate) local: bool,
    pub(crate) endpoint: Endpoint,
}

impl Engine {
    /// Builds the client for `host` and negotiates the API version (1.41 and
    /// newer engines), within `call_timeout`.
    pub(crate) async fn connect(
        host: &str,
        tls: Option<&TlsFiles>,
        call_timeout: Duration,
    ) -> Result<Self, RuntimeError> {
        let (docker, endpoint) =
            if let (Some(tls), Some(address)) = (tls, host.strip_prefix("tcp://")) {
                let address = address.split('/').next().unwrap_or_default().to_owned();
                (
                    Docker::connect_with_ssl(
                        host,
                        &tls.key,
                        &tls.cert,
                        &tls.ca,
                        BOLLARD_TIMEOUT_SECS,
                        API_DEFAULT_VERSION,
                    ),
                    Endpoint::Tcp(address),
                )
            } else if let Some(path) = host.strip_prefix("unix://") {
                (
                    Docker::connect_with_unix(path, BOLLARD_TIMEOUT_SECS, API_DEFAULT_VERSION),
                    Endpoint::Unix(path.into()),
                )
            } else if host.starts_with('/') {
                (
                    Docker::connect_with_unix(host, BOLLARD_TIMEOUT_SECS, API_DEFAULT_VERSION),
                    Endpoint::Unix(host.into()),
                )
            } else if let Some(address) = host
                .strip_prefix("tcp://")
                .or_else(|| host.strip_prefix("http://"))
            {
                let address = address.split('/').next().unwrap_or_default().to_owned();
                (
                    Docker::connect_with_http(host, BOLLARD_TIMEOUT_SECS, API_DEFAULT_VERSION),
                    Endpoint::Tcp(address),
                )
            } else {
                return Err(RuntimeError::Rejected(format!(
                    "unsupported Docker host {host:?}: use unix:///path or tcp://host:port"
                )));
            };
        let docker = docker.map_err(|e| Fault::from(e).on(Subject::Engine))?;
        let engine = Self {
            docker: docker.clone(),
            call_timeout,
            local: matches!(endpoint, Endpoint::Unix(_)),
            endpoint,
        };
        // Negotiation updates the version shared by every clone of the client.
        engine
            .call("version negotiation", docker.negotiate_version())
            .await
            .map_err(|f| f.on(Subject::Engine))?;
        Ok(engine)
    }

    /// Runs one engine call within `call_timeout`.
    pub(crate) async fn call<T, F>(&self, what: &'static str, fut: F) -> Result<T, Fault>
    where
        F: Future<Output = Result<T, bollard::errors::Error>>,
    {
        self.call_within(what, self.call_timeout, fut).await
    }

    /// Inspects a container by id or name, within `call_timeout`.
    pub(crate) async fn inspect_container(
        &self,
        container: &str,
    ) -> Result<ContainerInspectResponse, Fault> {
        self.call(
            "inspect container",
            self.docker
                .inspect_container(container, None::<InspectContainerOptions>),
        )
        .await
    }

    /// GETs `path` (below `/v<negotiated API>`) on a connection of our own,
    /// within `limit`: for answers whose shape bollard's models no longer
    /// read (the disk usage of engines before API 1.52).
    pub(crate) async fn get_json(
        &self,
        what: &'static str,
        path: &str,
        limit: Duration,
    ) -> Result<serde_json::Value, Fault> {
        let version = self.docker.client_version();
        let path = format!(
            "/v{}.{}{path}",
            version.major_version, version.minor_version
        );
        let exchange = async {
            match &self.endpoint {
                Endpoint::Unix(socket) => get(UnixStream::connect(socket).await, &path).await,
                Endpoint::Tcp(address) => {
                    get(TcpStream::connect(address.as_str()).await, &path).await
                }
            }
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| Fault::timeout(what, limit))?
    }

    pub(crate) async fn call_within<T, F>(
        &self,
        what: &'static str,
        limit: Duration,
        fut: F,
    ) -> Result<T, Fault>
    where
        F: Future<Output = Result<T, bollard::errors::Error>>,
    {
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(match Fault::from(err) {
                Fault::Timeout { .. } => Fault::timeout(what, limit),
                other => other,
            }),
            Err(_) => Err(Fault::timeout(what, limit)),
        }
    }
}

/// One GET on a fresh connection; the answer as JSON, an error status as
/// the `Fault` bollard's would be.
async fn get<T>(io: std::io::Result<T>, path: &str) -> Result<serde_json::Value, Fault>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let unavailable = |e: &dyn std::fmt::Display| Fault::Unavailable(format!("GET {path}: {e}"));
    let io = io.map_err(|e| unavailable(&e))?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| unavailable(&e))?;
    let connection = tokio::spawn(conn);
    let request = Request::get(path)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Fault::Other(format!("GET {path}: {e}")))?;
    let answer = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unavailable(&e))?
            .to_bytes();
        Ok::<_, Fault>((status, body))
    };
    let answered = answer.await;
    connection.abort();
    let (status, body) = answered?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(Fault::from(
            bollard::errors::Error::DockerResponseServerError {
                status_code: status.as_u16(),
                message,
            },
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| Fault::Other(format!("GET {path}: the answer is not JSON: {e}")))
}
