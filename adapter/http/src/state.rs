//! What the handlers share: the use cases, the ports readiness pings, and
//! the API's settings.

use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::port::{SandboxRuntime, SessionStore, Tracer};
use sandboxer_core::usecase::UseCases;

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

/// Renders the Prometheus text format; the binary owns the registry.
pub trait MetricsRender: Send + Sync {
    /// `active_sandboxes` is read from the store just before rendering.
    fn render(&self, active_sandboxes: u64) -> String;
}

pub struct ApiState {
    pub services: UseCases,
    pub config: ApiConfig,
    pub tracer: Arc<dyn Tracer>,
    pub runtime: Arc<dyn SandboxRuntime>,
    pub store: Arc<dyn SessionStore>,
    pub metrics: Option<Arc<dyn MetricsRender>>,
}
