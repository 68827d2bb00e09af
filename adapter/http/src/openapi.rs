//! The OpenAPI 3 document. Paths come from the router itself (`lib.rs`
//! registers every route through `utoipa_axum::routes!`, so a route cannot
//! be served undocumented); this module adds what the annotations cannot
//! know: the document's header, the bearer scheme, axum's `{*wildcard}`
//! spelled as an OpenAPI template, and limits that come from configuration.

use std::sync::Arc;

use utoipa::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use sandboxer_core::domain::Policy;

use crate::error::{ErrorBody, ErrorDetail};
use crate::schema;

#[derive(OpenApi)]
#[openapi(
    info(title = "Sandboxer", description = "One isolated sandbox per chat, over HTTP."),
    // Path and query parameters name their schemas without registering them
    // (utoipa collects schemas from bodies only); a test checks every `$ref` resolves.
    components(schemas(
        ErrorBody, ErrorDetail, schema::ChatId, schema::WorkspacePath, schema::ListTrue,
        schema::ProcessId, schema::Offset, schema::OutputEncoding,
    )),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served by `/openapi.json`, rendered once per router.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<str>);

/// What the router's paths are added to.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The router's document made exact: templates OpenAPI can read and the
/// configured limits.
pub fn finish(mut doc: utoipa::openapi::OpenApi, policy: &Policy) -> utoipa::openapi::OpenApi {
    // axum matches `/files/{*path}`; OpenAPI has no catch-all syntax, and a
    // `{path}` parameter there already stands for the rest of the URL.
    let paths = std::mem::take(&mut doc.paths.paths);
    doc.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    // `Policy::check_ttl` refuses a TTL above the max lifetime, which is
    // configuration: the annotation on `PutSandboxBody` cannot state it.
    let max_ttl = usize::try_from(policy.max_lifetime().as_secs()).unwrap_or(usize::MAX);
    if let Some(ttl) = property(&mut doc, "PutSandboxBody", "ttl_seconds") {
        ttl.maximum = Some(utoipa::Number::UInt(max_ttl));
    }
    doc
}

/// A scalar property of a component schema, if the document has it.
fn property<'a>(
    doc: &'a mut utoipa::openapi::OpenApi,
    schema: &str,
    name: &str,
) -> Option<&'a mut utoipa::openapi::Object> {
    let components = doc.components.as_mut()?;
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
        return None;
    };
    match object.properties.get_mut(name)? {
        RefOr::T(Schema::Object(property)) => Some(property),
        _ => None,
    }
}

/// The document as JSON.
pub fn render(doc: &utoipa::openapi::OpenApi) -> OpenApiJson {
    let json = doc
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"));
    OpenApiJson(json.into())
}
