//! The bollard client with every call bounded in time.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::InspectContainerOptions;
use bollard::{API_DEFAULT_VERSION, Docker};
use sandboxer_core::port::RuntimeError;

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
    pub(crate) async fn connect(host: &str, call_timeout: Duration) -> Result<Self, RuntimeError> {
        let (docker, endpoint) = if let Some(path) = host.strip_prefix("unix://") {
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
