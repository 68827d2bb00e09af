//! Tracing off: without an OTLP endpoint the service exports nothing and
//! dials nobody, not even the default OTLP port.

use reqwest::{Method, StatusCode};

use sandboxer_telemetry::testing::OtlpCollector;

use crate::MISSING_IMAGE;
use crate::calls::{put, send};
use crate::support::{Options, Service, chat};

#[tokio::test(flavor = "multi_thread")]
async fn without_an_endpoint_nothing_is_exported_and_nothing_dials_out() {
    // The default OTLP gRPC port, where a wrongly enabled exporter would go.
    let default_port = std::net::TcpListener::bind("127.0.0.1:4317").unwrap_or_else(|e| {
        panic!(
            "127.0.0.1:4317 (the default OTLP port) cannot be bound ({e}): this test needs it \
             free to prove the service does not dial it; stop whatever listens there"
        )
    });
    default_port.set_nonblocking(true).unwrap();
    // localhost may resolve to ::1 first; watch it too where IPv6 is there.
    let default_port_v6 = match std::net::TcpListener::bind("[::1]:4317") {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            panic!("[::1]:4317 (the default OTLP port) is taken: stop whatever listens there")
        }
        Err(_) => None,
    };
    if let Some(l) = &default_port_v6 {
        l.set_nonblocking(true).unwrap();
    }
    let collector = OtlpCollector::start_grpc().await;
    // The same short batch delay as the traced runs: an exporter that was on
    // by mistake would send within 100 ms.
    let mut service = Service::start(Options::default().env("OTEL_BSP_SCHEDULE_DELAY", 100)).await;

    let c = chat("untraced");
    let (status, headers, _) = put(&service, &c, "").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        headers.get("x-trace-id").is_none() && headers.get("traceparent").is_none(),
        "tracing is off, yet the response names a trace: {headers:?}"
    );
    assert_eq!(put(&service, &c, "").await.0, StatusCode::OK);
    let exec = r#"{"cmd":["true"]}"#;
    let path = format!("/v1/chats/{c}/exec");
    assert_eq!(
        send(&service, Method::POST, &path, exec, &[]).await.0,
        StatusCode::OK
    );
    let missing = format!(r#"{{"image":"{MISSING_IMAGE}"}}"#);
    assert_eq!(
        put(&service, &chat("untraced"), &missing).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&service, Method::POST, "/v1/cleanup", "", &[]).await.0,
        StatusCode::OK
    );
    // A clean shutdown flushes whatever an exporter would hold: once the
    // process is gone, anything it was going to send has been sent.
    service.terminate().await;

    assert_eq!(collector.connections(), 0);
    assert_eq!(collector.export_requests(), 0);
    assert!(collector.spans().is_empty());
    for listener in std::iter::once(&default_port).chain(default_port_v6.as_ref()) {
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, from)) => panic!(
                "{} was dialled from {from} with tracing off",
                listener.local_addr().unwrap()
            ),
            Err(e) => panic!("accept on the default OTLP port: {e}"),
        }
    }
}
