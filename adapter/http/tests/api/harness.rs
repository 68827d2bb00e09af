//! The API over fake ports, called through `Router::oneshot`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use sandboxer_core::domain::{Policy, Retention, SandboxSpec};
use sandboxer_core::testing::{FakeRuntime, ManualClock, MemoryStore, RecordingTracer};
use sandboxer_core::usecase::{Ports, ReconcileSettings, Settings, UseCases};
use sandboxer_http::{ApiConfig, ApiState, router};

pub struct Api {
    pub router: axum::Router,
    pub runtime: Arc<FakeRuntime>,
    pub store: Arc<MemoryStore>,
    pub tracer: RecordingTracer,
}

pub fn api(config: ApiConfig) -> Api {
    api_with(config, Retention::default())
}

/// With hibernated chats kept for `retention` (zero: no hibernation).
pub fn api_with(config: ApiConfig, retention: Retention) -> Api {
    let tracer = RecordingTracer::new();
    let runtime = Arc::new(FakeRuntime::new(Arc::new(tracer.clone())));
    let store = Arc::new(MemoryStore::new());
    let ports = Ports {
        runtime: runtime.clone(),
        store: store.clone(),
        clock: Arc::new(ManualClock::at_epoch()),
        tracer: Arc::new(tracer.clone()),
    };
    let settings = Settings {
        policy: Policy::default(),
        retention,
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
    };
    let state = Arc::new(ApiState {
        services: UseCases::new(ports.clone(), settings),
        config,
        tracer: ports.tracer.clone(),
        runtime: runtime.clone(),
        store: store.clone(),
        metrics: None,
        fleet: None,
    });
    Api {
        router: router(state),
        runtime,
        store,
        tracer,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Api {
    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn send(&self, method: &str, uri: &str, body: impl Into<Body>) -> Answer {
        self.call(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(body.into())
                .unwrap(),
        )
        .await
    }
}
