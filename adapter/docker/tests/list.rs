//! `list_active_sessions` sees every sandbox labelled as ours, whoever made
//! it and in any state, on the workspace its labels name (its session's
//! for a container of the release before workspaces), and skips (without
//! touching) ones whose labels do not parse. Volumes are not sandboxes:
//! `workspaces.rs` lists them.

use std::collections::HashMap;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, InspectContainerOptions};
use sandboxer_core::domain::{SessionId, WorkspaceId};
use sandboxer_core::port::{SandboxRef, SandboxRuntime};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, raw_docker, test_runtime, test_spec, unique_chat_id,
};

#[tokio::test(flavor = "multi_thread")]
async fn finds_sandboxes_made_elsewhere_and_stopped_ones() {
    let cleanup = Cleanup::new();
    let image = ensure_test_image();
    let ours = test_runtime(&RecordingTracer::new()).await;
    let other = test_runtime(&RecordingTracer::new()).await;
    let docker = raw_docker().await;

    // Made by another runtime instance (another process, as far as we know).
    let by_other = create_request(test_spec(&image, "runc"));
    cleanup.request(&by_other);
    let other_id = other.create(&by_other).await.unwrap();

    // Made straight with bollard, carrying our labels, never started.
    let raw_session = cleanup.session(SessionId::new());
    let raw_chat = unique_chat_id();
    let raw_name = format!("sandboxer-{raw_session}");
    let labels = HashMap::from([
        ("sandboxer.managed".to_string(), "true".to_string()),
        ("sandboxer.chat-id".to_string(), raw_chat.to_string()),
        ("sandboxer.session-id".to_string(), raw_session.to_string()),
        ("sandboxer.generation".to_string(), "7".to_string()),
        (
            "sandboxer.created-at".to_string(),
            "2024-05-01T10:00:00Z".to_string(),
        ),
    ]);
    let raw = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&raw_name).build()),
            ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["sleep".into(), "infinity".into()]),
                labels: Some(labels),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Ours, then stopped by Docker (exited, not removed).
    let stopped = create_request(test_spec(&image, "runc"));
    cleanup.request(&stopped);
    let stopped_id = ours.create(&stopped).await.unwrap();
    docker
        .stop_container(
            stopped_id.as_str(),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();

    // Labelled as ours but broken: skipped, and left alone.
    let broken_name = format!("sandboxer-test-broken-{}", SessionId::new());
    cleanup.container(broken_name.clone());
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::new()
                    .name(&broken_name)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["sleep".into(), "infinity".into()]),
                labels: Some(HashMap::from([
                    ("sandboxer.managed".to_string(), "true".to_string()),
                    ("sandboxer.session-id".to_string(), "not-a-uuid".to_string()),
                ])),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let listed = ours.list_active_sessions().await.unwrap();
    let find = |session: SessionId| listed.iter().find(|s| s.session_id == session).cloned();

    let seen = find(by_other.session_id).expect("the other instance's sandbox");
    assert_eq!(seen.container_id, other_id);
    assert_eq!(seen.chat_id, by_other.chat_id);
    assert_eq!(seen.workspace_id, by_other.workspace.id());
    assert_eq!(seen.generation, 1);
    assert_eq!(
        seen.created_at.timestamp_millis(),
        by_other.created_at.timestamp_millis()
    );
    assert!(seen.running);

    let seen = find(raw_session).expect("the bollard-made sandbox");
    assert_eq!(seen.container_id.as_str(), raw.id);
    assert_eq!(
        (seen.chat_id.clone(), seen.generation, seen.running),
        (raw_chat, 7, false)
    );
    assert_eq!(seen.created_at.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    // Labelled as the release before workspaces labelled its containers.
    assert_eq!(
        seen.workspace_id,
        WorkspaceId::of_legacy_session(raw_session)
    );

    let seen = find(stopped.session_id).expect("the stopped sandbox");
    assert!(!seen.running);

    assert!(
        listed
            .iter()
            .all(|s| s.container_id.as_str() != broken_name)
    );
    assert!(
        docker
            .inspect_container(&broken_name, None::<InspectContainerOptions>)
            .await
            .is_ok(),
        "a container with bad labels must not be touched"
    );

    // Our stop removes a sandbox made by the other instance, by session alone.
    let by_session = SandboxRef {
        session_id: by_other.session_id,
        chat_id: by_other.chat_id.clone(),
        container_id: None,
    };
    ours.stop(&by_session).await.unwrap();
    let after = ours.list_active_sessions().await.unwrap();
    assert!(after.iter().all(|s| s.session_id != by_other.session_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_lists_only_its_own_sandboxes() {
    let cleanup = Cleanup::new();
    let image = ensure_test_image();
    let tracer = std::sync::Arc::new(RecordingTracer::new());
    let runtime_of = |instance: &str| {
        sandboxer_docker::DockerSandboxRuntime::connect(
            sandboxer_docker::DockerConfig {
                instance: Some(instance.to_owned()),
                ..sandboxer_docker::DockerConfig::default()
            },
            tracer.clone(),
        )
    };
    let a_name = format!("test-a-{}", SessionId::new());
    let b_name = format!("test-b-{}", SessionId::new());
    let a = runtime_of(&a_name).await.unwrap();
    let b = runtime_of(&b_name).await.unwrap();
    let in_a = create_request(test_spec(&image, "runc"));
    let in_b = create_request(test_spec(&image, "runc"));
    cleanup.request(&in_a);
    cleanup.request(&in_b);
    a.create(&in_a).await.unwrap();
    b.create(&in_b).await.unwrap();

    let seen_by_a: Vec<_> = a
        .list_active_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    let seen_by_b: Vec<_> = b
        .list_active_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(seen_by_a, vec![in_a.session_id]);
    assert_eq!(seen_by_b, vec![in_b.session_id]);
    // Without an instance, every sandbox labelled as ours is listed.
    let all = test_runtime(&RecordingTracer::new()).await;
    let seen: Vec<_> = all
        .list_active_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert!(seen.contains(&in_a.session_id) && seen.contains(&in_b.session_id));
}
