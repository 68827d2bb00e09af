//! The OTLP/gRPC receiver: opentelemetry-proto's generated tonic server.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::collector::Received;

struct Receiver {
    received: Arc<Received>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.received.record(request.get_ref());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

pub(crate) async fn serve(received: Arc<Received>, stop: oneshot::Receiver<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("OtlpCollector: bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("OtlpCollector: local address");
    let counter = Arc::clone(&received);
    let incoming = TcpIncoming::from(listener).inspect(move |conn| {
        if conn.is_ok() {
            counter.connected();
        }
    });
    let server = Server::builder()
        .add_service(TraceServiceServer::new(Receiver { received }))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop.await;
        });
    tokio::spawn(server);
    addr
}
