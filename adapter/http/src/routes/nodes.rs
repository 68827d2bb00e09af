//! Operator routes of the Docker nodes: their state, and draining one
//! (no new chats are placed there; its chats stay where they are).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;

use sandboxer_core::trace::attr::ErrorClass;

use super::ApiStateRef;
use crate::dto::NodeList;
use crate::error::{ApiError, ErrorBody};

/// Every Docker node (empty when the service runs on one engine).
#[utoipa::path(
    get, path = "/v1/nodes", tag = "operations",
    responses((status = 200, body = NodeList))
)]
pub async fn list_nodes(state: ApiStateRef) -> Json<NodeList> {
    Json(NodeList {
        nodes: state.fleet.as_ref().map(|f| f.nodes()).unwrap_or_default(),
    })
}

/// Drain a node: new chats go to the others.
#[utoipa::path(
    put, path = "/v1/nodes/{node}/drain", tag = "operations",
    params(("node" = String, Path, description = "The node's name")),
    responses((status = 204), (status = 404, body = ErrorBody))
)]
pub async fn drain_node(
    state: ApiStateRef,
    Path(node): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_draining(&state, &node, true)
}

/// Stop draining a node: it takes new chats again.
#[utoipa::path(
    delete, path = "/v1/nodes/{node}/drain", tag = "operations",
    params(("node" = String, Path, description = "The node's name")),
    responses((status = 204), (status = 404, body = ErrorBody))
)]
pub async fn undrain_node(
    state: ApiStateRef,
    Path(node): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_draining(&state, &node, false)
}

fn set_draining(state: &ApiStateRef, node: &str, draining: bool) -> Result<StatusCode, ApiError> {
    let known = state
        .fleet
        .as_ref()
        .is_some_and(|f| f.set_draining(node, draining));
    if known {
        tracing::info!(node, draining, "node draining changed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorClass::NodeNotFound,
            format!("no Docker node named {node:?} (GET /v1/nodes lists them)"),
        ))
    }
}
