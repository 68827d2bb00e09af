//! The OpenAPI 3 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::dto::{
    CleanupCounts, ExecBody, ExecResponse, Health, PutSandboxBody, PutSandboxResponse, SandboxList,
    SessionView,
};
use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::files::FileWritten;
use crate::routes::{files, ops, sandbox};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sandboxer", description = "One isolated sandbox per chat, over HTTP."),
    paths(
        sandbox::put_sandbox, sandbox::get_sandbox, sandbox::delete_sandbox, sandbox::exec,
        files::put_file, files::get_file,
        ops::list_sandboxes, ops::cleanup, ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(
        PutSandboxBody, PutSandboxResponse, SessionView, ExecBody, ExecResponse, SandboxList,
        CleanupCounts, Health, FileWritten, ErrorBody, ErrorDetail,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

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

/// The document as JSON, built once.
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
    })
    .clone()
}
