//! Workspace volumes as `list_workspaces` and `delete_workspace` see them:
//! one outlives its container (stopped or removed behind the service's
//! back) until it is deleted, an instance lists only its own, and a
//! sandbox made by the release before workspaces (its volume named after
//! its session) keeps its files on the workspace
//! `WorkspaceId::of_legacy_session` names.

use std::sync::Arc;

use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use sandboxer_core::domain::{SessionId, WorkspaceId, WorkspacePath, WorkspaceUse};
use sandboxer_core::port::{CreateRequest, RuntimeWorkspace, SandboxRef, SandboxRuntime};
use sandboxer_core::testing::RecordingTracer;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, raw_docker, sandbox_create_body, test_spec,
    volume_name,
};
use sandboxer_docker::{DockerConfig, DockerSandboxRuntime};

/// The adapter of a service instance of its own, so that its lists hold
/// only what the test made.
async fn instance_runtime(tracer: &RecordingTracer) -> (DockerSandboxRuntime, String) {
    let instance = format!("test-workspaces-{}", SessionId::new());
    let runtime = DockerSandboxRuntime::connect(
        DockerConfig {
            instance: Some(instance.clone()),
            ..sandboxer_docker::testing::test_config()
        },
        Arc::new(tracer.clone()),
    )
    .await
    .expect("the Docker Engine answers");
    (runtime, instance)
}

async fn workspaces(runtime: &DockerSandboxRuntime) -> Vec<WorkspaceId> {
    let listed: Vec<RuntimeWorkspace> = runtime.list_workspaces(false).await.unwrap();
    listed.into_iter().map(|w| w.id).collect()
}

fn sandbox_of(request: &CreateRequest, id: sandboxer_core::domain::ContainerId) -> SandboxRef {
    SandboxRef {
        session_id: request.session_id,
        chat_id: request.chat_id.clone(),
        container_id: Some(id),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_outlives_its_containers_and_is_listed_until_deleted() {
    let cleanup = Cleanup::new();
    let tracer = RecordingTracer::new();
    let (runtime, _) = instance_runtime(&tracer).await;
    let (other, _) = instance_runtime(&RecordingTracer::new()).await;
    let image = ensure_test_image();
    let request = create_request(test_spec(&image, "runc"));
    cleanup.request(&request);
    let workspace = request.workspace.id();
    let id = runtime.create(&request).await.unwrap();
    let sandbox = sandbox_of(&request, id);

    let listed = runtime.list_workspaces(false).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, workspace);
    assert_eq!(
        listed[0].created_at.map(|at| at.timestamp_millis()),
        Some(request.created_at.timestamp_millis())
    );
    assert!(
        workspaces(&other).await.is_empty(),
        "another instance lists this one's workspace"
    );

    runtime.stop(&sandbox).await.unwrap();
    assert!(runtime.list_active_sessions().await.unwrap().is_empty());
    assert_eq!(workspaces(&runtime).await, vec![workspace]);

    // A new sandbox on it, then its container removed behind the
    // service's back: no sandbox is listed for what is left, the
    // workspace is.
    let kept = CreateRequest {
        chat_id: request.chat_id.clone(),
        workspace: WorkspaceUse::Kept(workspace),
        ..create_request(test_spec(&image, "runc"))
    };
    cleanup.request(&kept);
    let id = runtime.create(&kept).await.unwrap();
    raw_docker()
        .await
        .remove_container(
            id.as_str(),
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
    assert!(runtime.list_active_sessions().await.unwrap().is_empty());
    assert_eq!(workspaces(&runtime).await, vec![workspace]);

    runtime.delete_workspace(&workspace).await.unwrap();
    assert!(workspaces(&runtime).await.is_empty());
    assert!(
        raw_docker()
            .await
            .inspect_volume(&volume_name(workspace))
            .await
            .is_err(),
        "the volume outlived delete_workspace"
    );
    let span = &tracer.named("DockerSandboxRuntime.delete_workspace")[0];
    assert_eq!(span.str("sandbox.result"), Some("ok"));
}

/// A sandbox as the release before workspaces made it: no
/// `sandboxer.workspace-id` label, its volume `sandboxer-<session id>`
/// labelled with the session. The service lists it on the legacy
/// workspace, and a new sandbox of the chat on that workspace finds its
/// files; `delete_workspace` removes the volume.
#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_of_the_release_before_workspaces_keeps_its_files() {
    let cleanup = Cleanup::new();
    let (runtime, instance) = instance_runtime(&RecordingTracer::new()).await;
    let image = ensure_test_image();
    let docker = raw_docker().await;

    let mut old = create_request(test_spec(&image, "runc"));
    let legacy = WorkspaceId::of_legacy_session(old.session_id);
    old.workspace = WorkspaceUse::Fresh(legacy);
    cleanup.request(&old);
    let mut body = sandbox_create_body(&old, Some(&instance), None).unwrap();
    let labels = body.labels.as_mut().unwrap();
    labels.remove("sandboxer.workspace-id");
    let old_labels = labels.clone();
    let mounts = body.host_config.as_mut().unwrap().mounts.as_mut().unwrap();
    // Its volume carried the container's labels.
    mounts[0].volume_options.as_mut().unwrap().labels = Some(old_labels);
    assert_eq!(
        mounts[0].source.as_deref(),
        Some(format!("sandboxer-{}", old.session_id).as_str())
    );
    let name = format!("sandboxer-{}", old.session_id);
    let made = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await
        .unwrap();
    docker.start_container(&made.id, None).await.unwrap();

    let listed = runtime.list_active_sessions().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].workspace_id, legacy);
    let before = listed[0].to_ref();
    let path = WorkspacePath::parse("notes.txt").unwrap();
    runtime
        .put_file(&before, &path, b"from the old release")
        .await
        .unwrap();
    runtime.stop(&before).await.unwrap();
    let kept = runtime.list_workspaces(false).await.unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].id, legacy);
    assert!(kept[0].created_at.is_some());

    let resumed = CreateRequest {
        chat_id: old.chat_id.clone(),
        workspace: WorkspaceUse::Kept(legacy),
        generation: 2,
        ..create_request(test_spec(&image, "runc"))
    };
    cleanup.request(&resumed);
    let id = runtime.create(&resumed).await.unwrap();
    let after = sandbox_of(&resumed, id);
    assert_eq!(
        runtime.get_file(&after, &path).await.unwrap(),
        b"from the old release"
    );
    runtime.stop(&after).await.unwrap();
    runtime.delete_workspace(&legacy).await.unwrap();
    assert!(docker.inspect_volume(&name).await.is_err());
    assert!(runtime.list_workspaces(false).await.unwrap().is_empty());
}
