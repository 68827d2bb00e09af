//! The liveness cache (`DockerConfig::liveness_cache`): `inspect` answers
//! "running" from memory only while the engine's event stream says nothing
//! changed. A sandbox killed or removed behind the adapter's back is seen
//! promptly; a broken stream means real inspects until it is back; dropping
//! the runtime ends the stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::query_parameters::{KillContainerOptions, RemoveContainerOptionsBuilder};
use sandboxer_core::domain::ContainerState;
use sandboxer_core::port::{RuntimeError, SandboxRef, SandboxRuntime, SpanKind};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_docker::testing::{
    Cleanup, DockerProxy, create_request, ensure_test_image, raw_docker, test_runtime, test_spec,
};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime, LivenessStats};

/// How long a change may take to show. Well under the cache's own bound on
/// an entry's age (10 s), so only the event stream can make these pass.
const PROMPT: Duration = Duration::from_secs(3);
/// How long the stream may take to (re)connect: its backoff is at most 2 s.
const CONNECT: Duration = Duration::from_secs(6);

async fn connect(config: DockerConfig, tracer: &RecordingTracer) -> DockerSandboxRuntime {
    DockerSandboxRuntime::connect(config, Arc::new(tracer.clone()))
        .await
        .expect("the Docker Engine answers")
}

async fn until_connected(runtime: &DockerSandboxRuntime) {
    let began = Instant::now();
    while !runtime.liveness_stats().connected {
        assert!(
            began.elapsed() < CONNECT,
            "the event stream did not connect: {:?}",
            runtime.liveness_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn make(runtime: &DockerSandboxRuntime, cleanup: &Cleanup) -> SandboxRef {
    let request = create_request(test_spec(&ensure_test_image(), "runc"));
    cleanup.request(&request);
    let id = runtime.create(&request).await.expect("create");
    SandboxRef {
        session_id: request.session_id,
        chat_id: request.chat_id,
        container_id: Some(id),
    }
}

fn id(sandbox: &SandboxRef) -> &str {
    sandbox.container_id.as_ref().unwrap().as_str()
}

/// Inspects `sandbox`: Running, and answered from the cache.
async fn assert_cached_running(runtime: &DockerSandboxRuntime, sandbox: &SandboxRef) {
    let before = runtime.liveness_stats();
    assert_eq!(runtime.inspect(sandbox).await, Ok(ContainerState::Running));
    let after = runtime.liveness_stats();
    assert_eq!(
        (after.hits, after.real_inspects),
        (before.hits + 1, before.real_inspects),
        "not a cache hit"
    );
}

/// Inspects until the answer is not Running; panics if it still is after `PROMPT`.
async fn first_not_running(
    runtime: &DockerSandboxRuntime,
    sandbox: &SandboxRef,
) -> (Result<ContainerState, RuntimeError>, Duration) {
    let began = Instant::now();
    loop {
        let state = runtime.inspect(sandbox).await;
        if state != Ok(ContainerState::Running) {
            return (state, began.elapsed());
        }
        assert!(
            began.elapsed() < PROMPT,
            "still Running {PROMPT:?} after the container changed: {:?}",
            runtime.liveness_stats()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_killed_or_removed_behind_our_back_is_seen_promptly() {
    let cleanup = Cleanup::new();
    let runtime = connect(DockerConfig::default(), &RecordingTracer::new()).await;
    until_connected(&runtime).await;
    let killed = make(&runtime, &cleanup).await;
    let removed = make(&runtime, &cleanup).await;
    for sandbox in [&killed, &removed] {
        assert_cached_running(&runtime, sandbox).await;
    }
    let docker = raw_docker().await;

    docker
        .kill_container(id(&killed), None::<KillContainerOptions>)
        .await
        .unwrap();
    let (state, took) = first_not_running(&runtime, &killed).await;
    println!("killed: {state:?} after {took:?}");
    assert_eq!(state, Ok(ContainerState::Exited));
    assert_eq!(
        runtime.inspect(&killed).await,
        Ok(ContainerState::Exited),
        "it stays seen as exited"
    );

    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    docker
        .remove_container(id(&removed), Some(force))
        .await
        .unwrap();
    let (state, took) = first_not_running(&runtime, &removed).await;
    println!("removed: {state:?} after {took:?}");
    assert_eq!(state, Ok(ContainerState::Missing));
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_inspects_of_a_running_sandbox_are_cache_hits() {
    let cleanup = Cleanup::new();
    let tracer = RecordingTracer::new();
    let runtime = connect(DockerConfig::default(), &tracer).await;
    until_connected(&runtime).await;
    // Our own start, on a connected stream, already counts as seen running.
    let ours = make(&runtime, &cleanup).await;
    let before = runtime.liveness_stats();
    for _ in 0..20 {
        assert_eq!(runtime.inspect(&ours).await, Ok(ContainerState::Running));
    }
    let after = runtime.liveness_stats();
    assert_eq!(after.hits - before.hits, 20, "{after:?}");
    assert_eq!(after.real_inspects, before.real_inspects, "{after:?}");
    let spans = tracer.named("DockerSandboxRuntime.inspect");
    assert_eq!(spans.len(), 20);
    for span in &spans {
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.attr("sandbox.inspect.cached"), Some(&true.into()));
        assert_eq!(span.str("sandbox.result"), Some("ok"));
        assert_eq!(span.str("container.id"), Some(id(&ours)));
    }

    // Made by another runtime (another process, as far as we know): the
    // first inspect asks the engine, the next ones do not.
    let other = test_runtime(&RecordingTracer::new()).await;
    let theirs = make(&other, &cleanup).await;
    let before = runtime.liveness_stats();
    assert_eq!(runtime.inspect(&theirs).await, Ok(ContainerState::Running));
    let after = runtime.liveness_stats();
    assert_eq!(
        (after.hits, after.real_inspects),
        (before.hits, before.real_inspects + 1)
    );
    let first = tracer.named("DockerSandboxRuntime.inspect").pop().unwrap();
    assert_eq!(first.attr("sandbox.inspect.cached"), Some(&false.into()));
    for _ in 0..5 {
        assert_cached_running(&runtime, &theirs).await;
    }

    // Our stop forgets it at once.
    runtime.stop(&ours).await.unwrap();
    assert_eq!(runtime.inspect(&ours).await, Ok(ContainerState::Missing));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_cache_off_every_inspect_is_real() {
    let cleanup = Cleanup::new();
    let tracer = RecordingTracer::new();
    let config = DockerConfig {
        liveness_cache: false,
        ..DockerConfig::default()
    };
    let runtime = connect(config, &tracer).await;
    let sandbox = make(&runtime, &cleanup).await;
    for _ in 0..10 {
        assert_eq!(runtime.inspect(&sandbox).await, Ok(ContainerState::Running));
    }
    assert_eq!(
        runtime.liveness_stats(),
        LivenessStats {
            connected: false,
            connects: 0,
            hits: 0,
            real_inspects: 10,
        }
    );
    let spans = tracer.named("DockerSandboxRuntime.inspect");
    assert_eq!(spans.len(), 10);
    assert!(
        spans
            .iter()
            .all(|s| s.attr("sandbox.inspect.cached") == Some(&false.into()))
    );
    // The kill API returns once the container stopped: the next inspect sees it.
    raw_docker()
        .await
        .kill_container(id(&sandbox), None::<KillContainerOptions>)
        .await
        .unwrap();
    assert_eq!(runtime.inspect(&sandbox).await, Ok(ContainerState::Exited));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_stream_means_real_inspects_until_it_is_back() {
    let cleanup = Cleanup::new();
    let dir = tempfile::tempdir().unwrap();
    let proxy = DockerProxy::start(&dir.path().join("docker.sock"));
    let config = DockerConfig {
        host: Some(proxy.docker_host()),
        call_timeout: Duration::from_secs(5),
        ..DockerConfig::default()
    };
    let runtime = connect(config, &RecordingTracer::new()).await;
    until_connected(&runtime).await;
    let killed = make(&runtime, &cleanup).await;
    let kept = make(&runtime, &cleanup).await;
    for sandbox in [&killed, &kept] {
        assert_cached_running(&runtime, sandbox).await;
    }

    // Docker away: the engine's answer (Unavailable), not a stale Running.
    proxy.cut();
    let (state, took) = first_not_running(&runtime, &kept).await;
    println!("with the proxy cut: {state:?} after {took:?}");
    assert!(
        matches!(state, Err(RuntimeError::Unavailable(_))),
        "{state:?}"
    );
    assert!(!runtime.liveness_stats().connected);
    for sandbox in [&killed, &kept] {
        let state = runtime.inspect(sandbox).await;
        assert!(
            matches!(state, Err(RuntimeError::Unavailable(_))),
            "{state:?}"
        );
    }
    // Meanwhile one dies; the stream cannot tell.
    raw_docker()
        .await
        .kill_container(id(&killed), None::<KillContainerOptions>)
        .await
        .unwrap();

    proxy.restore();
    until_connected(&runtime).await;
    assert_eq!(runtime.liveness_stats().connects, 2);
    assert_eq!(runtime.inspect(&killed).await, Ok(ContainerState::Exited));
    // Caching resumes: one real inspect, then hits.
    let before = runtime.liveness_stats();
    assert_eq!(runtime.inspect(&kept).await, Ok(ContainerState::Running));
    assert_eq!(
        runtime.liveness_stats().real_inspects,
        before.real_inspects + 1
    );
    assert_cached_running(&runtime, &kept).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_runtime_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = DockerProxy::start(&dir.path().join("docker.sock"));
    let config = DockerConfig {
        host: Some(proxy.docker_host()),
        ..DockerConfig::default()
    };
    let runtime = connect(config, &RecordingTracer::new()).await;
    until_connected(&runtime).await;
    assert!(proxy.open_connections() >= 1);
    drop(runtime);
    let began = Instant::now();
    while proxy.open_connections() > 0 {
        assert!(
            began.elapsed() < PROMPT,
            "{} connections still open after the runtime was dropped",
            proxy.open_connections()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
