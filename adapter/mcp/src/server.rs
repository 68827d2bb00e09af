//! `SandboxerMcp`: the MCP server handler. It holds the same `UseCases` the
//! HTTP API holds, and wraps each tool call in its SERVER span.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use sandboxer_core::domain::exec::DEFAULT_OUTPUT_LIMIT;
use sandboxer_core::port::Tracer;
use sandboxer_core::trace;
use sandboxer_core::usecase::UseCases;

use crate::span;

/// What the tools are tuned by.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// Output kept per stream of an exec (the HTTP API's limit).
    pub exec_output_limit: usize,
    /// Bytes of a file `read_file` returns; the rest is cut, and said so.
    pub read_limit: usize,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            exec_output_limit: DEFAULT_OUTPUT_LIMIT,
            read_limit: 1024 * 1024,
        }
    }
}

const INSTRUCTIONS: &str = "Sandboxer gives each chat its own isolated Linux sandbox (a container). \
Every tool takes `chat_id`, the conversation's id: the same id always reaches the same sandbox, \
created on first use. Files under /workspace survive between calls. A sandbox idle past its TTL \
is hibernated: its processes end, its files are kept for the service's retention (7 days by \
default; a service may keep none), and the next call resumes it on them. A deleted sandbox is gone with its files (the next call starts an empty \
one).";

#[derive(Clone)]
pub struct SandboxerMcp {
    pub(crate) services: UseCases,
    pub(crate) settings: McpSettings,
    tracer: Arc<dyn Tracer>,
    tool_router: ToolRouter<Self>,
}

impl SandboxerMcp {
    pub fn new(services: UseCases, tracer: Arc<dyn Tracer>, settings: McpSettings) -> Self {
        Self {
            services,
            settings,
            tracer,
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SandboxerMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("sandboxer", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let known = self.tool_router.has_route(&request.name);
        let mut span = span::start(self.tracer.as_ref(), &request, &context, known);
        let call = ToolCallContext::new(self, request, context);
        let outcome = trace::in_span(span.as_ref(), self.tool_router.call(call)).await;
        span::finish(span.as_mut(), &outcome);
        outcome
    }
}
