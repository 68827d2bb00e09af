//! Failures a caller must see quickly and cleanly: a missing image, an
//! engine that is not there, a runtime the engine does not know.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;
use sandboxer_core::port::{CreateRequest, RuntimeError, SandboxRuntime};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_core::trace::{ErrorType, NoopTracer};
use sandboxer_docker::testing::{
    Cleanup, create_request, raw_docker, test_runtime, test_spec, volume_name,
};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_is_image_not_found_and_leaves_nothing() {
    let cleanup = Cleanup::new();
    let runtime = test_runtime(&RecordingTracer::new()).await;
    let image = format!("sandboxer-test-missing:{}", uuid::Uuid::now_v7().simple());
    assert!(!runtime.image_exists(&image).await.unwrap());
    let request = create_request(test_spec(&image, "runc"));
    cleanup.request(&request);
    let began = Instant::now();
    let made = runtime.create(&request).await;
    let took = began.elapsed();
    println!("missing image answered in {took:?}");
    assert_eq!(made, Err(RuntimeError::ImageNotFound(image)));
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_nothing_left(&request).await;
    assert!(
        runtime
            .image_exists(&sandboxer_docker::testing::ensure_test_image())
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_runtime_is_a_runtime_error_not_the_callers_and_leaves_nothing() {
    let cleanup = Cleanup::new();
    let runtime = test_runtime(&RecordingTracer::new()).await;
    let nosuch = format!("sandboxer-test-nosuch-{}", uuid::Uuid::now_v7().simple());
    let request = create_request(test_spec(
        &sandboxer_docker::testing::ensure_test_image(),
        &nosuch,
    ));
    cleanup.request(&request);
    let made = runtime.create(&request).await;
    let err = made.expect_err("a create on an unknown runtime");
    // The operator's setting: a 500-class error, Docker's text kept for the log.
    assert_eq!(err.error_type().as_str(), "runtime_error", "{err:?}");
    assert!(
        matches!(&err, RuntimeError::Other(m) if m.contains(&nosuch)),
        "{err:?}"
    );
    assert_nothing_left(&request).await;
}

/// No container of the session, no volume of its fresh workspace.
async fn assert_nothing_left(request: &CreateRequest) {
    let docker = raw_docker().await;
    let name = format!("sandboxer-{}", request.session_id);
    assert!(
        docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .is_err(),
        "container {name} left behind"
    );
    let volume = volume_name(request.workspace.id());
    assert!(
        docker.inspect_volume(&volume).await.is_err(),
        "volume {volume} left behind"
    );
}

async fn connect(host: &str) -> (Result<DockerSandboxRuntime, RuntimeError>, Duration) {
    let config = DockerConfig {
        host: Some(host.to_owned()),
        call_timeout: Duration::from_secs(3),
        ..DockerConfig::default()
    };
    let began = Instant::now();
    let connected = DockerSandboxRuntime::connect(config, Arc::new(NoopTracer)).await;
    (connected, began.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_engine_is_unavailable_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on (connection refused) and no file at all.
    let dead = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let missing = dir.path().join("missing.sock");
    for host in [
        format!("unix://{}", dead.display()),
        format!("unix://{}", missing.display()),
        "tcp://127.0.0.1:9".to_owned(),
    ] {
        let (connected, took) = connect(&host).await;
        println!("{host}: {:?} after {took:?}", connected.as_ref().err());
        assert!(
            matches!(connected, Err(RuntimeError::Unavailable(_))),
            "{host}: {connected:?}"
        );
        assert!(took < Duration::from_secs(3), "{host}: {took:?}");
    }
    // DOCKER_HOST is honoured when the config names no host. Setting a
    // variable is unsafe in a threaded process, so a child checks it.
    let connected = check_docker_host_in_child(&dead);
    assert!(connected, "DOCKER_HOST was not honoured");
}

/// Runs this test binary's `docker_host_child` test with `DOCKER_HOST` set.
fn check_docker_host_in_child(dead: &std::path::Path) -> bool {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "docker_host_child",
            "--nocapture",
            "--include-ignored",
        ])
        .env("DOCKER_HOST", format!("unix://{}", dead.display()))
        .env("SANDBOXER_TEST_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    out.status.success() && text.contains("child saw Unavailable")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by an_unreachable_engine_is_unavailable_quickly with DOCKER_HOST set"]
async fn docker_host_child() {
    assert_eq!(std::env::var("SANDBOXER_TEST_CHILD").as_deref(), Ok("1"));
    let began = Instant::now();
    let connected =
        DockerSandboxRuntime::connect(DockerConfig::default(), Arc::new(NoopTracer)).await;
    assert!(
        matches!(connected, Err(RuntimeError::Unavailable(_))),
        "{connected:?}"
    );
    assert!(began.elapsed() < Duration::from_secs(5));
    println!("child saw Unavailable");
}
