//! The SERVER span of each `tools/call`: named `tools/call <tool>` (the
//! OpenTelemetry MCP convention; unknown names are not put in it, to keep
//! names low-cardinality), with `mcp.tool.name`, continuing the caller's
//! W3C `traceparent` from the request's `_meta` (or, over HTTP, from the
//! request's header). The use-case spans of the call are its children.

use std::borrow::Cow;

use axum::http::request::Parts;
use rmcp::RoleServer;
use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::RequestContext;

use sandboxer_core::port::{Parent, Span, SpanKind, Tracer};
use sandboxer_core::trace::SpanContext;
use sandboxer_core::trace::attr::{ErrorClass, key, result};

use crate::error::is_fault;
use crate::reply::failure_class;

pub const METHOD: &str = "tools/call";

/// Opens the call's span; `known` says whether the tool exists.
pub fn start(
    tracer: &dyn Tracer,
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
    known: bool,
) -> Box<dyn Span> {
    let name = if known {
        Cow::Owned(format!("{METHOD} {}", request.name))
    } else {
        Cow::Borrowed(METHOD)
    };
    let mut span = tracer.start_span(name, SpanKind::Server, parent(request, context));
    span.set_attribute(key::MCP_METHOD_NAME, METHOD.into());
    if known {
        span.set_attribute(key::MCP_TOOL_NAME, request.name.to_string().into());
    }
    span
}

/// The caller's context: `_meta.traceparent` (SEP-414) of the request,
/// else the HTTP request's `traceparent` header, else a new trace.
fn parent(request: &CallToolRequestParams, context: &RequestContext<RoleServer>) -> Parent {
    let from_meta = request
        .meta
        .as_ref()
        .and_then(|m| m.get_traceparent())
        .or_else(|| context.meta.get_traceparent())
        .map(str::to_owned);
    let from_header = || {
        context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.headers.get("traceparent"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    from_meta
        .or_else(from_header)
        .as_deref()
        .and_then(SpanContext::from_traceparent)
        .map_or(Parent::Root, Parent::Remote)
}

/// Records how the call ended and ends the span. A tool error the caller
/// caused (bad input, a missing file) is `error.type` only, as a 4xx is on
/// the HTTP request span; a fault marks the span failed.
pub fn finish(span: &mut dyn Span, outcome: &Result<CallToolResponse, rmcp::ErrorData>) {
    match outcome {
        Ok(CallToolResponse::Complete(done)) => match failure_class(done) {
            Some(class) if is_fault(class) => {
                let message = done
                    .content
                    .first()
                    .and_then(|c| c.as_text())
                    .map_or_else(String::new, |t| t.text.clone());
                span.set_error(class.as_str(), &message);
            }
            Some(class) => {
                span.set_attribute(key::ERROR_TYPE, class.as_str().into());
                span.set_attribute(key::RESULT, result::FAILED.into());
            }
            None => span.set_attribute(key::RESULT, result::OK.into()),
        },
        Ok(_) => {}
        Err(error) => {
            // Unknown tool, arguments that are not an object: the request was bad.
            span.set_attribute(key::ERROR_TYPE, ErrorClass::InvalidRequest.as_str().into());
            span.set_attribute(key::RESULT, result::FAILED.into());
            tracing::debug!(code = error.code.0, message = %error.message, "MCP tools/call refused");
        }
    }
    span.end();
}
