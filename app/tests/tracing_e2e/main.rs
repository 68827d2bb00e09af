//! The span contract (DESIGN section 5) end to end: the real `sandboxer
//! serve` exports over OTLP/gRPC to an in-test collector while it works the
//! real Docker Engine, and each test checks what an operator would look for
//! in the trace of one user action: names, kinds, parents, attributes,
//! status, and the ids that tie spans to responses, logs and metrics.
//!
//! One test binary, a module per topic: `lifecycle` (create, reuse and
//! replace), `cleanup` (on demand and in the background), `exec`,
//! `failures` (errors on spans and metrics), `propagation` (a caller's
//! traceparent, trace ids in log lines) and `disabled` (no endpoint, no
//! export). The span names and the assertions they share live here.

#[path = "../support/mod.rs"]
mod support;
// Only this binary uses them, so they are not in `support`'s tree.
#[path = "../support/calls.rs"]
mod calls;
#[path = "../support/traces.rs"]
mod traces;

mod cleanup;
mod disabled;
mod exec;
mod failures;
mod lifecycle;
mod processes;
mod propagation;

use reqwest::StatusCode;

use sandboxer_telemetry::testing::{CollectedKind, CollectedSpan, CollectedStatus, OtlpCollector};
use support::{Options, Service};
use traces::{Trace, exporting_to};

const PUT_SANDBOX: &str = "PUT /v1/chats/{chat_id}/sandbox";
const POST_EXEC: &str = "POST /v1/chats/{chat_id}/exec";
const POST_CLEANUP: &str = "POST /v1/cleanup";
const CREATE: &str = "CreateSandbox.execute";
const EXEC: &str = "ExecInSandbox.execute";
const CLEANUP: &str = "CleanupExpiredSandboxes.execute";
const CLEANUP_SESSION: &str = "CleanupExpiredSandboxes.cleanup_session";
const RECONCILE: &str = "Reconcile.execute";
const DOCKER_CREATE: &str = "DockerSandboxRuntime.create";
const DOCKER_STOP: &str = "DockerSandboxRuntime.stop";
const DOCKER_LIST: &str = "DockerSandboxRuntime.list_active_sessions";
const DOCKER_INSPECT: &str = "DockerSandboxRuntime.inspect";
const DOCKER_EXEC: &str = "DockerSandboxRuntime.exec";
const MISSING_IMAGE: &str = "sandboxer-missing-image:nope";

/// A collector and a service exporting to it.
async fn traced(options: Options) -> (OtlpCollector, Service) {
    let collector = OtlpCollector::start_grpc().await;
    let service = Service::start(exporting_to(&collector, options)).await;
    (collector, service)
}

/// The HTTP span of a trace: SERVER, its name and route, the method and
/// the status the caller got.
fn assert_http(trace: &Trace, name: &str, route: &str, status: StatusCode) -> CollectedSpan {
    let http = trace.one(name).clone();
    let method = name.split(' ').next().unwrap();
    assert_eq!(http.kind, CollectedKind::Server, "{http:?}");
    assert_eq!(http.str("http.request.method"), Some(method), "{http:?}");
    assert_eq!(http.str("http.route"), Some(route), "{http:?}");
    assert_eq!(
        http.int("http.response.status_code"),
        Some(i64::from(status.as_u16())),
        "{http:?}"
    );
    assert_eq!(http.service_name.as_deref(), Some("sandboxer"));
    http
}

fn assert_ok(span: &CollectedSpan) {
    assert_eq!(span.status, CollectedStatus::Unset, "{span:?}");
    assert_eq!(span.str("error.type"), None, "{span:?}");
}
