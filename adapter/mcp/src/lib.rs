//! The MCP server of DESIGN section 12 on the official Rust SDK (`rmcp`):
//! tools over the same use cases as the HTTP API (no second
//! implementation), served over streamable HTTP at `/mcp` by the service's
//! own axum server, and the stdio proxy behind `sandboxer mcp`.

mod error;
pub mod http;
mod params;
mod reply;
mod server;
mod span;
pub mod stdio;
mod tools;

pub use error::ToolError;
pub use http::{McpHttpConfig, allowed_hosts_for, router};
pub use server::{McpSettings, SandboxerMcp};
pub use stdio::{StdioError, serve_stdio};
/// Cancels every MCP session at shutdown (their SSE streams would otherwise
/// keep the graceful shutdown waiting).
pub use tokio_util::sync::CancellationToken;

/// The tools this server registers, in the order `tools/list` gives them.
pub const TOOL_NAMES: [&str; 11] = [
    "delete_sandbox",
    "exec",
    "hibernate_sandbox",
    "kill_process",
    "list_files",
    "read_file",
    "read_process_output",
    "sandbox_status",
    "start_process",
    "write_file",
    "write_process_stdin",
];
