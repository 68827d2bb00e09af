//! The OTLP/HTTP receiver: protobuf `ExportTraceServiceRequest` bodies
//! POSTed to `/v1/traces`, decoded with prost.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::collector::Received;

const PROTOBUF: &str = "application/x-protobuf";

pub(crate) async fn serve(received: Arc<Received>, stop: oneshot::Receiver<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("OtlpCollector: bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("OtlpCollector: local address");
    let counter = Arc::clone(&received);
    let listener = listener.tap_io(move |_| counter.connected());
    let app = axum::Router::new()
        .route("/v1/traces", post(export))
        .with_state(received);
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = stop.await;
    });
    tokio::spawn(async move {
        let _ = server.await;
    });
    addr
}

async fn export(
    State(received): State<Arc<Received>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != PROTOBUF {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received.record(&request);
            let response = ExportTraceServiceResponse {
                partial_success: None,
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, PROTOBUF)],
                response.encode_to_vec(),
            )
        }
        Err(_) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        ),
    }
}
