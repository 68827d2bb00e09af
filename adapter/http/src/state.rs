//! What the handlers share: the use cases, the ports readiness pings, and
//! the API's settings.

use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::port::{SandboxRuntime, SessionStore, Tracer};
use sandboxer_core::usecase::UseCases;

use crate::dto::NodeView;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// When set, every `/v1` and `/mcp` call needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Largest JSON body accepted.
    pub max_json_bytes: usize,
    /// Largest file accepted by `PUT .../files/{path}`.
    pub max_file_bytes: usize,
    /// Output kept per stream of an exec.
    pub exec_output_limit: usize,
    /// How long `/readyz` waits for Docker and the store.
    pub readiness_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            token: None,
            max_json_bytes: 1024 * 1024,
            max_file_bytes: 64 * 1024 * 1024,
            exec_output_limit: sandboxer_core::domain::exec::DEFAULT_OUTPUT_LIMIT,
            readiness_timeout: Duration::from_secs(3),
        }
    }
}

/// The sandboxes `/metrics` counts, read from the store just before rendering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxCounts {
    /// Sessions `creating` or `running`.
    pub active: u64,
    /// Chats with a kept workspace and no session.
    pub hibernated: u64,
}

/// Renders the Prometheus text format; the binary owns the registry.
pub trait MetricsRender: Send + Sync {
    /// `counts` are read from the store just before rendering.
    fn render(&self, counts: SandboxCounts) -> String;
}

pub struct ApiState {
    pub services: UseCases,
    pub config: ApiConfig,
    pub tracer: Arc<dyn Tracer>,
    pub runtime: Arc<dyn SandboxRuntime>,
    pub store: Arc<dyn SessionStore>,
    pub metrics: Option<Arc<dyn MetricsRender>>,
    /// The Docker nodes, when the service runs sandboxes on several.
    pub fleet: Option<Arc<dyn Fleet>>,
}

/// The engines sandboxes run on, as operators see and steer them.
pub trait Fleet: Send + Sync {
    fn nodes(&self) -> Vec<NodeView>;
    /// Starts or stops draining a node; `false` when there is no such node.
    fn set_draining(&self, node: &str, draining: bool) -> bool;
}
