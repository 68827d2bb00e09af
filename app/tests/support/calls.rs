//! Small helpers of the black-box tracing tests: calls that return the
//! headers too, fields of JSON answers, Prometheus samples, JSON log lines,
//! and an orphan container for cleanup to find.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Service, docker_lines};

/// A call's status, headers and JSON body.
pub async fn send(
    service: &Service,
    method: Method,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let body = (!body.is_empty()).then(|| body.as_bytes().to_vec());
    let (status, headers, bytes) = service.raw(method, path, body, headers).await;
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

pub async fn put(service: &Service, chat: &str, body: &str) -> (StatusCode, HeaderMap, Value) {
    send(
        service,
        Method::PUT,
        &format!("/v1/chats/{chat}/sandbox"),
        body,
        &[],
    )
    .await
}

/// The `x-trace-id` a response carries.
pub fn trace_id(headers: &HeaderMap) -> String {
    headers
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no x-trace-id header in {headers:?}"))
        .to_owned()
}

pub fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {body}"))
}

/// A running container labelled as this service's with no session behind
/// it, made long ago (past the orphan grace).
pub fn start_orphan(service: &Service) -> (String, String) {
    let session = uuid::Uuid::now_v7().to_string();
    let image = sandboxer_docker::testing::ensure_test_image();
    let labels = [
        "sandboxer.managed=true".to_owned(),
        format!("sandboxer.instance={}", service.instance),
        format!("sandboxer.session-id={session}"),
        "sandboxer.chat-id=orphan".to_owned(),
        "sandboxer.generation=1".to_owned(),
        "sandboxer.created-at=2020-01-01T00:00:00.000Z".to_owned(),
    ];
    let name = format!("sandboxer-{session}");
    let mut args = vec!["run", "-d", "--network", "none", "--name", &name];
    for label in &labels {
        args.extend(["--label", label]);
    }
    args.extend([image.as_str(), "sleep", "3600"]);
    let out = docker_lines(&args);
    let id = out.last().cloned().unwrap_or_default();
    assert_eq!(id.len(), 64, "docker run printed {out:?}");
    (id, session)
}

/// The value of the first sample of `metric` whose labels include `labels`.
pub fn metric_sample(metrics: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
        let (names, value) = rest.split_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| names.split(',').any(|l| l == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

/// The JSON log lines whose `message` is `message`.
pub fn log_lines(service: &Service, message: &str) -> Vec<Value> {
    service
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == message)
        .collect()
}
