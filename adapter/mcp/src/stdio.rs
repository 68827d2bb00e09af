//! `sandboxer mcp`: an MCP server on stdin/stdout that forwards every call
//! to a running service's `/mcp` over streamable HTTP (the SDK's client),
//! so a client that only spawns commands reaches the same tools.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StdioError {
    #[error("connecting to the service's MCP endpoint {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: Box<rmcp::service::ClientInitializeError>,
    },
    #[error("serving MCP on stdin/stdout: {0}")]
    Serve(#[source] Box<rmcp::service::ServerInitializeError>),
    #[error("the stdio session ended abnormally: {0}")]
    Session(#[from] tokio::task::JoinError),
}

/// Forwards to the upstream service; what it answers is passed on as is.
#[derive(Clone)]
struct Proxy {
    upstream: Arc<RunningService<RoleClient, ()>>,
}

fn upstream_error(error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(e) => e,
        other => ErrorData::internal_error(
            format!("the Sandboxer service did not answer: {other}"),
            None,
        ),
    }
}

impl ServerHandler for Proxy {
    fn get_info(&self) -> ServerConfig {
        let upstream = self.upstream.peer().peer_info();
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("sandboxer", env!("CARGO_PKG_VERSION")));
        if let Some(text) = upstream.and_then(|i| i.instructions.clone()) {
            info = info.with_instructions(text);
        }
        info
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.upstream
            .peer()
            .list_tools(request)
            .await
            .map_err(upstream_error)
    }

    // `_meta` (a caller's `traceparent` among it) travels with the request.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.upstream
            .peer()
            .call_tool_once(request)
            .await
            .map_err(upstream_error)
    }
}

/// Serves MCP on stdin/stdout until the client closes it, forwarding to
/// `url` (the service's `/mcp`) with `token` as its bearer token.
///
/// # Errors
/// `StdioError`: the service could not be reached or refused the handshake,
/// or the stdio session could not start.
pub async fn serve_stdio(url: &str, token: Option<&str>) -> Result<(), StdioError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token.to_owned());
    }
    let upstream =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .map_err(|e| StdioError::Connect {
                url: url.to_owned(),
                source: Box::new(e),
            })?;
    let proxy = Proxy {
        upstream: Arc::new(upstream),
    };
    let running = proxy
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError::Serve(Box::new(e)))?;
    running.waiting().await?;
    Ok(())
}
