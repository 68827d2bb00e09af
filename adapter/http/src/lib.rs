//! The HTTP API of DESIGN section 6 on axum: routes, JSON errors with the
//! documented codes, bearer token, body limits, a SERVER span per request,
//! and the OpenAPI document.

pub mod dto;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod process_dto;
pub mod routes;
pub mod schema;
pub mod state;
pub mod stream;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use sandboxer_core::trace::attr::ErrorClass;

pub use error::ApiError;
pub use state::{ApiConfig, ApiState, Fleet, MetricsRender, SandboxCounts};

use routes::{files, nodes, ops, processes, pty, sandbox};

/// The whole API. Every route is registered with its `#[utoipa::path]`
/// through `routes!`, which is what puts it in `/openapi.json`.
pub fn router(state: Arc<ApiState>) -> Router {
    router_with(state, Router::new())
}

/// The API plus `protected`: more routes behind the same bearer token (the
/// MCP endpoint, which this crate knows only as a router). They get no
/// request span: the MCP server makes one SERVER span per tool call.
pub fn router_with(state: Arc<ApiState>, protected: Router) -> Router {
    let (router, doc) = routes_and_document(&state);
    let doc = openapi::render(&doc);
    let protected = protected.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&state),
        middleware::require_token,
    ));
    router
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            middleware::trace_request,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.max_json_bytes))
        .layer(Extension(doc))
        .with_state(state)
        .merge(protected)
}

/// The routes and the document they make, before the layers every route shares.
fn routes_and_document(state: &Arc<ApiState>) -> (Router<Arc<ApiState>>, utoipa::openapi::OpenApi) {
    let file_limit = DefaultBodyLimit::max(state.config.max_file_bytes);
    let v1 = OpenApiRouter::new()
        .routes(routes!(
            sandbox::put_sandbox,
            sandbox::get_sandbox,
            sandbox::delete_sandbox
        ))
        .routes(routes!(sandbox::hibernate_sandbox))
        .routes(routes!(sandbox::exec))
        .routes(routes!(files::put_file).layer(file_limit))
        .routes(routes!(files::get_file))
        .routes(routes!(files::list_workspace))
        .routes(routes!(processes::start_process, processes::list_processes))
        .routes(routes!(processes::get_process, processes::kill_process))
        .routes(routes!(processes::process_output))
        .routes(routes!(processes::write_stdin).layer(file_limit))
        .routes(routes!(processes::signal_process))
        .routes(routes!(pty::pty))
        .routes(routes!(ops::list_sandboxes))
        .routes(routes!(ops::cleanup))
        .routes(routes!(nodes::list_nodes))
        .routes(routes!(nodes::drain_node, nodes::undrain_node))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            middleware::require_token,
        ));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .merge(v1)
        .split_for_parts();
    (router, openapi::finish(doc, state.services.create.policy()))
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        ErrorClass::RouteNotFound,
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        ErrorClass::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
