//! The HTTP API of DESIGN section 6 on axum: routes, JSON errors with the
//! documented codes, bearer token, body limits, a SERVER span per request,
//! and the OpenAPI document.

pub mod dto;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};

use sandboxer_core::trace::attr::error_type as code;

pub use error::ApiError;
pub use state::{ApiConfig, ApiState, MetricsRender};

/// The whole API.
pub fn router(state: Arc<ApiState>) -> Router {
    let file_limit = DefaultBodyLimit::max(state.config.max_file_bytes);
    let v1 = Router::new()
        .route(
            "/v1/chats/{chat_id}/sandbox",
            put(routes::sandbox::put_sandbox)
                .get(routes::sandbox::get_sandbox)
                .delete(routes::sandbox::delete_sandbox),
        )
        .route("/v1/chats/{chat_id}/exec", post(routes::sandbox::exec))
        .route(
            "/v1/chats/{chat_id}/files/{*path}",
            put(routes::files::put_file)
                .layer(file_limit)
                .get(routes::files::get_file),
        )
        .route("/v1/sandboxes", get(routes::ops::list_sandboxes))
        .route("/v1/cleanup", post(routes::ops::cleanup))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            middleware::require_token,
        ));
    Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .merge(v1)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            middleware::trace_request,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.max_json_bytes))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        code::ROUTE_NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::new(
        code::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
