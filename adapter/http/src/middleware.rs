//! Request middleware: the SERVER span of every request (continuing a
//! caller's W3C `traceparent`, parent of the use-case spans) and the bearer
//! token check. The request's duration metric comes from that span (the
//! app's `MetricsTracer` records every span once), so none is recorded here.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use sandboxer_core::port::{Parent, SpanKind};
use sandboxer_core::trace::{self, SpanContext, attr::ErrorClass, attr::key};

use crate::error::{ApiError, ErrorCode};
use crate::state::ApiState;

/// HTTP semantic-convention attribute keys.
pub mod http_key {
    pub const METHOD: &str = "http.request.method";
    pub const ROUTE: &str = "http.route";
    pub const STATUS: &str = "http.response.status_code";
    pub const PATH: &str = "url.path";
}

/// Header carrying the request's trace id, for callers that log it.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Wraps a request in its SERVER span; use cases started by the handler
/// become its children.
pub async fn trace_request(
    State(api): State<Arc<ApiState>>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let route = route.map(|r| r.as_str().to_owned());
    let parent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(SpanContext::from_traceparent)
        .map_or(Parent::Root, Parent::Remote);
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.clone(),
    };
    let mut span = api
        .tracer
        .start_span(Cow::Owned(name), SpanKind::Server, parent);
    span.set_attribute(http_key::METHOD, method.into());
    span.set_attribute(http_key::PATH, request.uri().path().to_owned().into());
    if let Some(r) = &route {
        span.set_attribute(http_key::ROUTE, r.clone().into());
    }
    let mut response = trace::in_span(span.as_ref(), next.run(request)).await;
    let status = response.status();
    span.set_attribute(http_key::STATUS, i64::from(status.as_u16()).into());
    if let Some(failure) = response.extensions().get::<ErrorCode>() {
        if status.is_server_error() {
            span.set_error(failure.code.as_str(), &failure.message);
        } else {
            span.set_attribute(key::ERROR_TYPE, failure.code.as_str().into());
        }
    }
    if let Some(ctx) = span.context() {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&ctx.to_traceparent()) {
            headers.insert("traceparent", v);
        }
        if let Ok(v) = HeaderValue::from_str(&ctx.trace_id_hex()) {
            headers.insert(TRACE_ID_HEADER, v);
        }
    }
    span.end();
    response
}

/// Refuses `/v1` and `/mcp` calls without the configured bearer token (401).
pub async fn require_token(
    State(api): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &api.config.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => {
            ApiError::new(ErrorClass::Unauthorized, "the bearer token is wrong").into_response()
        }
        None => ApiError::new(
            ErrorClass::Unauthorized,
            "this service needs `Authorization: Bearer <token>`",
        )
        .into_response(),
    }
}
