//! The MCP endpoint over fake ports, through the HTTP adapter's router on a
//! real socket, called by the SDK's own client: the tool list, answers
//! with structured content, tool errors for bad input, the bearer token,
//! and the SERVER span of a tool call with the use case's span below it.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, MetaObject, RequestMetaObject};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use sandboxer_core::domain::{Policy, Retention, SandboxSpec};
use sandboxer_core::port::SpanKind;
use sandboxer_core::testing::{FakeRuntime, ManualClock, MemoryStore, RecordingTracer};
use sandboxer_core::usecase::{Ports, ReconcileSettings, Settings, UseCases};
use sandboxer_http::{ApiConfig, ApiState, router_with};
use sandboxer_mcp::{CancellationToken, McpHttpConfig, McpSettings, SandboxerMcp, TOOL_NAMES};

const TOKEN: &str = "s3cret";

struct Service {
    url: String,
    tracer: RecordingTracer,
}

async fn service() -> Service {
    let tracer = RecordingTracer::new();
    let runtime = Arc::new(FakeRuntime::new(Arc::new(tracer.clone())));
    let store = Arc::new(MemoryStore::new());
    let ports = Ports {
        runtime: runtime.clone(),
        store: store.clone(),
        clock: Arc::new(ManualClock::at_epoch()),
        tracer: Arc::new(tracer.clone()),
    };
    let services = UseCases::new(
        ports.clone(),
        Settings {
            policy: Policy::default(),
            retention: Retention::default(),
            defaults: SandboxSpec::with_defaults("base:1"),
            foreign_create_wait: Duration::from_secs(1),
            cleanup_concurrency: 2,
            reconcile: ReconcileSettings {
                orphan_grace: Duration::from_secs(60),
                creating_timeout: Duration::from_secs(60),
            },
            processes: sandboxer_core::usecase::ProcessSettings::default(),
            // No warm pool: its refills would run in every test's background.
            pool: sandboxer_core::usecase::PoolSettings {
                size: 0,
                ..Default::default()
            },
        },
    );
    let mcp = sandboxer_mcp::router(
        SandboxerMcp::new(
            services.clone(),
            ports.tracer.clone(),
            McpSettings::default(),
        ),
        McpHttpConfig {
            allowed_hosts: Some(vec!["127.0.0.1".into(), "localhost".into()]),
            max_request_bytes: 1024 * 1024,
            cancel: CancellationToken::new(),
        },
    );
    let state = Arc::new(ApiState {
        services,
        config: ApiConfig {
            token: Some(TOKEN.into()),
            ..ApiConfig::default()
        },
        tracer: ports.tracer.clone(),
        runtime,
        store,
        metrics: None,
        fleet: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router_with(state, mcp)).await });
    Service { url, tracer }
}

async fn client(url: &str) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(TOKEN);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("the MCP handshake")
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("a tool answer, not a protocol error")
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_the_tools_with_their_schemas() {
    let service = service().await;
    let client = client(&service.url).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, TOOL_NAMES);
    for tool in &tools {
        let schema = Value::Object((*tool.input_schema).clone());
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!("chat_id")),
            "{} needs chat_id: {schema}",
            tool.name
        );
    }
    let exec = tools.iter().find(|t| t.name == "exec").unwrap();
    assert!(exec.description.as_deref().unwrap().contains("/workspace"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_chat_id_is_a_tool_error_with_a_hint() {
    let service = service().await;
    let client = client(&service.url).await;
    let answer = call(
        &client,
        "exec",
        json!({"chat_id": "no spaces", "argv": ["true"]}),
    )
    .await;
    assert_eq!(answer.is_error, Some(true));
    let error = &answer.structured_content.as_ref().unwrap()["error"];
    assert_eq!(error["code"], "invalid_chat_id");
    assert!(error["hint"].as_str().unwrap().contains("128"));

    let both = call(
        &client,
        "exec",
        json!({"chat_id": "c1", "argv": ["true"], "command": "true"}),
    )
    .await;
    assert_eq!(
        both.structured_content.unwrap()["error"]["code"],
        "invalid_request"
    );
    let wrong_type = call(&client, "exec", json!({"chat_id": 7, "argv": ["true"]})).await;
    assert_eq!(wrong_type.is_error, Some(true));
    let traversal = call(
        &client,
        "read_file",
        json!({"chat_id": "c1", "path": "../etc"}),
    )
    .await;
    assert_eq!(
        traversal.structured_content.unwrap()["error"]["code"],
        "invalid_path"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_round_trip_and_status() {
    let service = service().await;
    let client = client(&service.url).await;
    let none = call(&client, "sandbox_status", json!({"chat_id": "c2"})).await;
    assert_eq!(none.structured_content.unwrap()["status"], "none");
    let wrote = call(
        &client,
        "write_file",
        json!({"chat_id": "c2", "path": "/workspace/notes/a.txt", "content": "hello"}),
    )
    .await;
    assert_eq!(wrote.is_error, Some(false), "{wrote:?}");
    let read = call(
        &client,
        "read_file",
        json!({"chat_id": "c2", "path": "notes/a.txt"}),
    )
    .await;
    let read = read.structured_content.unwrap();
    assert_eq!(
        (read["content"].as_str(), read["encoding"].as_str()),
        (Some("hello"), Some("text"))
    );
    let listed = call(
        &client,
        "list_files",
        json!({"chat_id": "c2", "path": "notes"}),
    )
    .await;
    assert_eq!(
        listed.structured_content.unwrap()["entries"][0]["name"],
        "a.txt"
    );
    let missing = call(
        &client,
        "read_file",
        json!({"chat_id": "c2", "path": "nope"}),
    )
    .await;
    assert_eq!(
        missing.structured_content.unwrap()["error"]["code"],
        "file_not_found"
    );
    let deleted = call(&client, "delete_sandbox", json!({"chat_id": "c2"})).await;
    assert_eq!(deleted.structured_content.unwrap()["result"], "stopped");
}

/// `hibernate_sandbox`: the status says hibernated (without resuming it),
/// the next file call resumes it on the same files, delete removes them.
#[tokio::test(flavor = "multi_thread")]
async fn hibernate_status_resume_and_delete() {
    let service = service().await;
    let client = client(&service.url).await;
    let none = call(&client, "hibernate_sandbox", json!({"chat_id": "c4"})).await;
    assert_eq!(
        none.structured_content.unwrap()["error"]["code"],
        "no_sandbox"
    );
    call(
        &client,
        "write_file",
        json!({"chat_id": "c4", "path": "kept.txt", "content": "still here"}),
    )
    .await;
    let running = call(&client, "sandbox_status", json!({"chat_id": "c4"})).await;
    let running = running.structured_content.unwrap();
    let slept = call(&client, "hibernate_sandbox", json!({"chat_id": "c4"})).await;
    assert_eq!(slept.structured_content.unwrap()["result"], "hibernated");
    let again = call(&client, "hibernate_sandbox", json!({"chat_id": "c4"})).await;
    assert_eq!(
        again.structured_content.unwrap()["result"],
        "already_hibernated"
    );
    for _ in 0..2 {
        let shown = call(&client, "sandbox_status", json!({"chat_id": "c4"})).await;
        assert!(
            shown.content[0]
                .as_text()
                .unwrap()
                .text
                .contains("hibernated")
        );
        let shown = shown.structured_content.unwrap();
        assert_eq!(shown["status"], "hibernated", "{shown}");
        assert_eq!(shown["workspace_id"], running["workspace_id"]);
        assert_eq!(shown["session_id"], running["session_id"]);
        assert!(shown["retained_until"].is_string(), "{shown}");
    }
    let read = call(
        &client,
        "read_file",
        json!({"chat_id": "c4", "path": "kept.txt"}),
    )
    .await;
    assert_eq!(read.structured_content.unwrap()["content"], "still here");
    let resumed = call(&client, "sandbox_status", json!({"chat_id": "c4"})).await;
    let resumed = resumed.structured_content.unwrap();
    assert_eq!(resumed["status"], "running");
    assert_ne!(resumed["session_id"], running["session_id"]);

    call(&client, "hibernate_sandbox", json!({"chat_id": "c4"})).await;
    let deleted = call(&client, "delete_sandbox", json!({"chat_id": "c4"})).await;
    assert_eq!(deleted.structured_content.unwrap()["result"], "stopped");
    let gone = call(&client, "sandbox_status", json!({"chat_id": "c4"})).await;
    assert_eq!(gone.structured_content.unwrap()["status"], "none");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_is_a_server_span_continuing_the_callers_traceparent() {
    let service = service().await;
    let client = client(&service.url).await;
    let mut meta = MetaObject::new();
    meta.set_traceparent("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01");
    let mut request = CallToolRequestParams::new("write_file").with_arguments(
        json!({"chat_id": "c3", "path": "x", "content": "1"})
            .as_object()
            .unwrap()
            .clone(),
    );
    request.meta = Some(RequestMetaObject(meta));
    client.call_tool(request).await.unwrap();
    let spans = service.tracer.spans();
    let server = spans
        .iter()
        .find(|s| s.name == "tools/call write_file")
        .unwrap_or_else(|| panic!("no tool span in {spans:#?}"));
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.str("mcp.tool.name"), Some("write_file"));
    assert_eq!(
        server.context.trace_id_hex(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    let put = spans.iter().find(|s| s.name == "PutFile.execute").unwrap();
    assert!(put.is_child_of(server), "{put:#?} under {server:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_token_mcp_answers_401() {
    let service = service().await;
    let response = reqwest_post(&service.url).await;
    assert_eq!(response, 401);
}

/// A raw initialize POST without `Authorization`.
async fn reqwest_post(url: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let (host_port, path) = url.trim_start_matches("http://").split_once('/').unwrap();
    let body = body.to_string();
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(host_port).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_start_read_write_and_kill() {
    let service = service().await;
    let client = client(&service.url).await;
    let chat = "mcp-proc";
    let started = call(
        &client,
        "start_process",
        json!({"chat_id": chat, "argv": ["cat"], "process_id": "cat", "keep_stdin_open": true}),
    )
    .await;
    assert_eq!(started.is_error, Some(false), "{started:?}");
    let s = started.structured_content.unwrap();
    assert_eq!(s["process"]["status"], "running");
    assert_eq!(s["created"], true);

    let wrote = call(
        &client,
        "write_process_stdin",
        json!({"chat_id": chat, "process_id": "cat", "data": "hello\n"}),
    )
    .await;
    assert_eq!(wrote.structured_content.unwrap()["stdin_offset"], 6);
    let read = call(
        &client,
        "read_process_output",
        json!({"chat_id": chat, "process_id": "cat"}),
    )
    .await;
    let r = read.structured_content.unwrap();
    assert_eq!(
        (r["stdout"].clone(), r["status"].clone()),
        (json!("hello\n"), json!("running"))
    );
    assert_eq!(r["next_stdout_offset"], 6);

    // Nothing new yet: a read with a wait gets what comes meanwhile.
    let second = self::client(&service.url).await;
    let waiting = {
        tokio::spawn(async move {
            call(
                &second,
                "read_process_output",
                json!({"chat_id": chat, "process_id": "cat", "stdout_offset": 6, "wait_ms": 10000}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    call(
        &client,
        "write_process_stdin",
        json!({"chat_id": chat, "process_id": "cat", "data": "more\n", "close": true}),
    )
    .await;
    let more = waiting.await.unwrap().structured_content.unwrap();
    assert_eq!(more["stdout"], "more\n");
    let end = call(
        &client,
        "read_process_output",
        json!({"chat_id": chat, "process_id": "cat", "stdout_offset": 11}),
    )
    .await
    .structured_content
    .unwrap();
    assert_eq!(
        (end["status"].clone(), end["exit_code"].clone()),
        (json!("exited"), json!(0))
    );

    let killed = call(
        &client,
        "kill_process",
        json!({"chat_id": chat, "process_id": "nope"}),
    )
    .await;
    assert_eq!(killed.is_error, Some(true));
    assert_eq!(
        killed.structured_content.unwrap()["error"]["code"],
        "process_not_found"
    );
    let bad = call(
        &client,
        "kill_process",
        json!({"chat_id": chat, "process_id": "cat", "signal": "NOPE"}),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
    let spans = service.tracer.named("StartProcess.execute");
    assert_eq!(spans.len(), 1);
}
