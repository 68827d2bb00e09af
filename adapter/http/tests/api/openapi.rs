//! The OpenAPI document: what it states matches what the server enforces
//! (the generated requests of `scripts/openapi-check.sh` test that at
//! length; these are the fast checks), and it names nothing it lacks.

use axum::body::Body;
use serde_json::{Value, json};

use sandboxer_core::domain::Policy;
use sandboxer_core::domain::exec::MAX_EXEC_TIMEOUT;
use sandboxer_core::domain::ids::CHAT_ID_MAX_LEN;
use sandboxer_http::ApiConfig;

use crate::harness::api;

async fn document() -> Value {
    let api = api(ApiConfig::default());
    api.send("GET", "/openapi.json", Body::empty()).await.json()
}

#[tokio::test]
async fn the_document_states_the_domain_rules() {
    let doc = document().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = &doc["components"]["schemas"];
    assert_eq!(json!(schemas["ExecBody"]["required"]), json!(["cmd"]));

    let chat = &schemas["ChatId"];
    assert_eq!(chat["pattern"], "^[A-Za-z0-9_.:@-]+$");
    assert_eq!(
        (chat["minLength"].as_u64(), chat["maxLength"].as_u64()),
        (Some(1), Some(CHAT_ID_MAX_LEN as u64))
    );
    assert_eq!(schemas["Argv"]["minItems"], 1);
    assert_eq!(schemas["Argv"]["prefixItems"][0]["minLength"], 1);

    let timeout = &schemas["ExecBody"]["properties"]["timeout_ms"];
    assert_eq!(timeout["minimum"], 1);
    assert_eq!(
        timeout["maximum"].as_u64(),
        u64::try_from(MAX_EXEC_TIMEOUT.as_millis()).ok()
    );
    let ttl = &schemas["PutSandboxBody"]["properties"]["ttl_seconds"];
    assert_eq!(ttl["minimum"], 1);
    assert_eq!(
        ttl["maximum"].as_u64(),
        Some(Policy::default().max_lifetime().as_secs())
    );

    let file_put = &doc["paths"]["/v1/chats/{chat_id}/files/{path}"]["put"];
    assert_ne!(
        file_put["requestBody"]["required"], true,
        "an empty file is a file"
    );
    let sandbox_put = &doc["paths"]["/v1/chats/{chat_id}/sandbox"]["put"];
    assert_ne!(sandbox_put["requestBody"]["required"], true);
}

/// `?list=true`: optional where a file is also served (whose 200 is then
/// either bytes or a listing), required and only `true` at the root.
#[tokio::test]
async fn the_listing_is_documented() {
    let doc = document().await;
    let list_param = |op: &Value| {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "list")
            .cloned()
            .unwrap_or_else(|| panic!("no `list` parameter: {op}"))
    };
    let file_get = &doc["paths"]["/v1/chats/{chat_id}/files/{path}"]["get"];
    let list = list_param(file_get);
    assert_eq!(
        (&list["in"], &list["required"]),
        (&json!("query"), &json!(false))
    );
    assert_eq!(list["schema"]["type"], "boolean");
    let ok = &file_get["responses"]["200"]["content"];
    assert!(ok["application/octet-stream"].is_object(), "{ok}");
    assert_eq!(
        ok["application/json"]["schema"]["$ref"],
        "#/components/schemas/FileListing"
    );

    let root_get = &doc["paths"]["/v1/chats/{chat_id}/files"]["get"];
    assert_eq!(list_param(root_get)["required"], true);
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["ListTrue"]["enum"], json!([true]));
    assert_eq!(
        schemas["FileType"]["enum"],
        json!(["file", "dir", "symlink", "other"])
    );
    assert_eq!(
        json!(schemas["FileListingEntry"]["required"]),
        json!(["name", "type", "size", "modified_at"])
    );
}

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_resolves() {
    let doc = document().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.strip_prefix('#').unwrap_or(target);
        assert!(
            doc.pointer(pointer).is_some(),
            "{target} is not in the document"
        );
    }
}

/// The other way from `routes!`: every documented operation is served (the
/// `{*path}` wildcard, renamed for OpenAPI, still reaches its handler).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let api = api(ApiConfig::default());
    let doc = document().await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 9, "{:?}", paths.keys());
    for (path, item) in paths {
        let uri = path
            .replace("{chat_id}", "web:1")
            .replace("{path}", "dir/f");
        for method in item.as_object().unwrap().keys() {
            let answer = api.send(&method.to_uppercase(), &uri, Body::empty()).await;
            let code = serde_json::from_slice::<Value>(&answer.body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            assert!(
                !matches!(
                    code.as_deref(),
                    Some("route_not_found" | "method_not_allowed")
                ),
                "{method} {uri}: {code:?}"
            );
        }
    }
}

/// A chat's sandbox is one of two shapes, told apart by `status`, and
/// hibernation is documented with what it refuses.
#[tokio::test]
async fn the_sandbox_shapes_and_hibernation_are_documented() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let get = &doc["paths"]["/v1/chats/{chat_id}/sandbox"]["get"];
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/SandboxView"
    );
    let shapes: Vec<&str> = schemas["SandboxView"]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("SandboxView: {}", schemas["SandboxView"]))
        .iter()
        .filter_map(|s| s["$ref"].as_str())
        .collect();
    assert_eq!(
        shapes,
        [
            "#/components/schemas/SessionView",
            "#/components/schemas/HibernatedView"
        ]
    );
    let hibernated = &schemas["HibernatedView"];
    for field in ["status", "workspace_id", "hibernated_at", "retained_until"] {
        assert!(
            hibernated["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field}: {hibernated}"
        );
    }
    assert_eq!(schemas["HibernatedStatus"]["enum"], json!(["hibernated"]));
    assert!(
        schemas["SessionView"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("workspace_id"))
    );
    let listed = &schemas["SandboxList"]["properties"]["sandboxes"]["items"]["$ref"];
    assert_eq!(listed, "#/components/schemas/SandboxView");

    let hibernate = &doc["paths"]["/v1/chats/{chat_id}/sandbox/hibernate"]["post"];
    for status in ["204", "404", "409", "503"] {
        assert!(
            hibernate["responses"][status].is_object(),
            "{status}: {hibernate}"
        );
    }
}
