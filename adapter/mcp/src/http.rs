//! Streamable HTTP at `/mcp`: the SDK's service with stateful sessions (the
//! SDK default, so clients of the session-based handshake keep working;
//! requests of the current protocol are served statelessly by the SDK), as
//! an axum router the HTTP adapter mounts behind its bearer token.

use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::SandboxerMcp;

/// The path the service answers MCP on.
pub const PATH: &str = "/mcp";

#[derive(Debug, Clone)]
pub struct McpHttpConfig {
    /// `Host` values accepted (DNS-rebinding protection); `None` accepts any.
    pub allowed_hosts: Option<Vec<String>>,
    /// Largest JSON-RPC message accepted (a `write_file` carries the file).
    pub max_request_bytes: usize,
    /// Cancelled at shutdown: ends every session and its streams.
    pub cancel: CancellationToken,
}

/// The `Host` allow-list for a service listening on `listen`. On loopback,
/// the SDK's loopback names; on one address, that address too. On every
/// address (`0.0.0.0`, `::`) the names callers use cannot be known, and the
/// check is off: such a listener needs a token (the service refuses to
/// start without one), which a rebinding web page does not have.
pub fn allowed_hosts_for(listen: SocketAddr) -> Option<Vec<String>> {
    let ip = listen.ip();
    if ip.is_unspecified() {
        return None;
    }
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !ip.is_loopback() {
        hosts.push(ip.to_string());
        hosts.push(format!("[{ip}]"));
    }
    Some(hosts)
}

/// The `/mcp` route (and its sub-paths) serving `server`.
pub fn router(server: SandboxerMcp, config: McpHttpConfig) -> axum::Router {
    let mut http = StreamableHttpServerConfig::default()
        .with_cancellation_token(config.cancel)
        .with_max_request_body_bytes(config.max_request_bytes);
    http = match config.allowed_hosts {
        Some(hosts) => http.with_allowed_hosts(hosts),
        None => http.disable_allowed_hosts(),
    };
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        http,
    );
    axum::Router::new().nest_service(PATH, service)
}
