//! Operator routes: the list of sandboxes, cleanup on demand, health,
//! readiness, metrics and the OpenAPI document.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use sandboxer_core::trace::ErrorType;
use sandboxer_core::trace::attr::ErrorClass;

use super::ApiStateRef;
use crate::dto::{CleanupCounts, Health, HibernatedView, SandboxList, SandboxView, SessionView};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::OpenApiJson;
use crate::state::SandboxCounts;

/// Every active sandbox, then every hibernated chat.
#[utoipa::path(
    get, path = "/v1/sandboxes", tag = "operations",
    responses((status = 200, body = SandboxList), (status = 503, body = ErrorBody))
)]
pub async fn list_sandboxes(state: ApiStateRef) -> Result<Json<SandboxList>, ApiError> {
    let query = &state.services.query;
    let sessions = query.list_active().await?;
    let hibernated = query.list_hibernated().await?;
    let active = sessions
        .iter()
        .map(|s| SandboxView::Active(SessionView::from(s)));
    let kept = hibernated
        .iter()
        .filter_map(|w| HibernatedView::new(w, None))
        .map(SandboxView::Hibernated);
    Ok(Json(SandboxList {
        sandboxes: active.chain(kept).collect(),
    }))
}

/// Run cleanup now.
#[utoipa::path(
    post, path = "/v1/cleanup", tag = "operations",
    responses((status = 200, body = CleanupCounts), (status = 503, body = ErrorBody))
)]
pub async fn cleanup(state: ApiStateRef) -> Result<Json<CleanupCounts>, ApiError> {
    let report = state.services.cleanup.execute().await?;
    Ok(Json(report.into()))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        nodes: None,
    })
}

/// Readiness: Docker (any node, each listed) and the store answer.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody))
)]
pub async fn readyz(state: ApiStateRef) -> Result<Json<Health>, ApiError> {
    let limit = state.config.readiness_timeout;
    let (runtime, store) = tokio::join!(
        tokio::time::timeout(limit, state.runtime.ping()),
        tokio::time::timeout(limit, state.store.ping()),
    );
    ready("Docker", runtime, ErrorClass::RuntimeUnavailable)?;
    ready("the session store", store, ErrorClass::StoreUnavailable)?;
    Ok(Json(Health {
        status: "ready".into(),
        nodes: state.fleet.as_ref().map(|f| f.nodes()),
    }))
}

fn ready<E: ErrorType>(
    what: &str,
    answer: Result<Result<(), E>, tokio::time::error::Elapsed>,
    on_timeout: ErrorClass,
) -> Result<(), ApiError> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: {what} is not ready");
            Err(ApiError::new(
                err.error_type(),
                format!("{what} is not ready"),
            ))
        }
        Err(_) => Err(ApiError::new(
            on_timeout,
            format!("{what} did not answer in time"),
        )),
    }
}

/// Prometheus metrics (404 when the binary runs without them).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 404, content_type = "text/plain", body = String),
    )
)]
pub async fn metrics(state: ApiStateRef) -> Response {
    let Some(render) = &state.metrics else {
        return (axum::http::StatusCode::NOT_FOUND, "metrics are off").into_response();
    };
    let query = &state.services.query;
    let (active, hibernated) = tokio::join!(query.count_active(), query.count_hibernated());
    let counts = SandboxCounts {
        active: active.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "counting active sandboxes for /metrics failed");
            0
        }),
        hibernated: hibernated.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "counting hibernated sandboxes for /metrics failed");
            0
        }),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render.render(counts),
    )
        .into_response()
}

/// This API's OpenAPI document, this route included.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", body = Object))
)]
pub async fn openapi(Extension(doc): Extension<OpenApiJson>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
        .into_response()
}
