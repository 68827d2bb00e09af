//! Tool answers: text for the model and the same facts as structured
//! content (JSON); a failure is a tool error (`isError`) carrying the
//! HTTP API's error code, its message and a hint, never a protocol error.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

use sandboxer_core::trace::attr::ErrorClass;
use sandboxer_core::trace::{ErrorType, error_chain};

use crate::error::{ToolError, hint, is_fault, public_message};

/// A successful answer.
pub fn success(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A tool error: `{"error": {"code", "message", "hint"}}`, as the HTTP
/// API's error body plus the hint. Faults are logged with their detail.
pub fn failure(error: &ToolError) -> CallToolResult {
    let class = error.error_type();
    if is_fault(class) {
        tracing::error!(error.type = class.as_str(), error = %error_chain(error), "MCP tool call failed");
    }
    let message = public_message(error);
    let hint = hint(class);
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!(
        "error {class}: {message}\nhint: {hint}"
    ))]);
    result.structured_content = Some(json!({
        "error": {"code": class.as_str(), "message": message, "hint": hint}
    }));
    result
}

/// The class of a failure made by `failure`, for the call's span.
pub fn failure_class(result: &CallToolResult) -> Option<ErrorClass> {
    if result.is_error != Some(true) {
        return None;
    }
    let code = result.structured_content.as_ref()?["error"]["code"].as_str()?;
    ErrorClass::ALL.into_iter().find(|c| c.as_str() == code)
}
