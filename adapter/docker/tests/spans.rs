//! The adapter's spans: CLIENT spans named `DockerSandboxRuntime.<op>`,
//! children of the caller's span, with the attributes of DESIGN section 5.

use std::borrow::Cow;

use sandboxer_core::port::{Parent, RuntimeError, SandboxRef, SandboxRuntime, SpanKind, Tracer};
use sandboxer_core::testing::{RecordingTracer, SpanStatus};
use sandboxer_core::trace::in_span;
use sandboxer_docker::testing::{
    Cleanup, create_request, ensure_test_image, sh, test_runtime, test_spec,
};

#[tokio::test(flavor = "multi_thread")]
async fn spans_nest_under_the_caller_with_their_attributes() {
    let cleanup = Cleanup::new();
    let tracer = RecordingTracer::new();
    let runtime = test_runtime(&tracer).await;
    let image = ensure_test_image();
    let request = create_request(test_spec(&image, "runc"));
    cleanup.request(&request);

    let mut parent = tracer.start_span(
        Cow::Borrowed("Test.use_case"),
        SpanKind::Internal,
        Parent::Root,
    );
    let id = in_span(parent.as_ref(), async {
        let id = runtime.create(&request).await.unwrap();
        let sandbox = SandboxRef {
            session_id: request.session_id,
            chat_id: request.chat_id.clone(),
            container_id: Some(id.clone()),
        };
        runtime.exec(&sandbox, &sh("exit 4")).await.unwrap();
        runtime.list_active_sessions().await.unwrap();
        runtime.stop(&sandbox).await.unwrap();
        runtime.list_workspaces(false).await.unwrap();
        let workspace = request.workspace.id();
        runtime.delete_workspace(&workspace).await.unwrap();
        runtime.delete_workspace(&workspace).await.unwrap();
        id
    })
    .await;
    parent.end();
    let parent = tracer.one("Test.use_case");
    let session = request.session_id.to_string();

    let create = tracer.one("DockerSandboxRuntime.create");
    let exec = tracer.one("DockerSandboxRuntime.exec");
    let list = tracer.one("DockerSandboxRuntime.list_active_sessions");
    let stop = tracer.one("DockerSandboxRuntime.stop");
    let workspaces = tracer.one("DockerSandboxRuntime.list_workspaces");
    let deletes = tracer.named("DockerSandboxRuntime.delete_workspace");
    assert_eq!(deletes.len(), 2);
    for span in [
        &create,
        &exec,
        &list,
        &stop,
        &workspaces,
        &deletes[0],
        &deletes[1],
    ] {
        assert_eq!(span.kind, SpanKind::Client, "{}", span.name);
        assert!(
            span.is_child_of(&parent),
            "{} is not a child of the caller",
            span.name
        );
        assert_eq!(span.status, SpanStatus::Unset, "{}", span.name);
    }
    assert_eq!(create.str("sandbox.operation"), Some("docker.create"));
    assert_eq!(create.str("sandbox.result"), Some("created"));
    assert_eq!(create.str("session.id"), Some(session.as_str()));
    assert_eq!(create.str("chat.id"), Some(request.chat_id.as_str()));
    assert_eq!(create.str("container.id"), Some(id.as_str()));
    assert_eq!(create.str("container.image.name"), Some(image.as_str()));
    assert_eq!(create.str("container.runtime"), Some("runc"));
    let workspace = request.workspace.id().to_string();
    assert_eq!(create.str("sandbox.workspace.id"), Some(workspace.as_str()));
    assert_eq!(create.str("sandbox.workspace.use"), Some("fresh"));

    assert_eq!(exec.str("sandbox.operation"), Some("docker.exec"));
    assert_eq!(exec.str("sandbox.result"), Some("ok"));
    assert_eq!(exec.str("container.id"), Some(id.as_str()));
    assert_eq!(exec.int("process.exit.code"), Some(4));
    assert_eq!(exec.attr("sandbox.exec.timed_out"), Some(&false.into()));

    assert_eq!(list.str("sandbox.operation"), Some("docker.list"));
    assert!(list.int("sandbox.active_sessions").unwrap() >= 1);

    assert_eq!(stop.str("sandbox.operation"), Some("docker.stop"));
    assert_eq!(stop.str("sandbox.result"), Some("stopped"));
    assert_eq!(stop.str("session.id"), Some(session.as_str()));

    assert_eq!(
        workspaces.str("sandbox.operation"),
        Some("docker.list_workspaces")
    );
    assert!(workspaces.int("sandbox.workspaces.count").unwrap() >= 1);
    assert_eq!(
        workspaces.attr("sandbox.workspaces.measured"),
        Some(&false.into())
    );
    // The second delete finds it gone: no error, as DESIGN wants of a 404.
    for (span, result) in deletes.iter().zip(["ok", "already_gone"]) {
        assert_eq!(
            span.str("sandbox.operation"),
            Some("docker.delete_workspace")
        );
        assert_eq!(span.str("sandbox.workspace.id"), Some(workspace.as_str()));
        assert_eq!(span.str("sandbox.result"), Some(result));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_create_is_an_error_span() {
    let cleanup = Cleanup::new();
    let tracer = RecordingTracer::new();
    let runtime = test_runtime(&tracer).await;
    let image = format!("sandboxer-test-missing:{}", uuid::Uuid::now_v7().simple());
    let request = create_request(test_spec(&image, "runc"));
    cleanup.request(&request);
    let made = runtime.create(&request).await;
    assert!(matches!(made, Err(RuntimeError::ImageNotFound(_))));
    let create = tracer.one("DockerSandboxRuntime.create");
    assert_eq!(create.kind, SpanKind::Client);
    assert!(create.is_error());
    assert_eq!(create.error_type(), Some("image_not_found"));
    assert_eq!(create.str("sandbox.result"), Some("failed"));
    assert_eq!(create.str("container.image.name"), Some(image.as_str()));
    let SpanStatus::Error(description) = &create.status else {
        unreachable!()
    };
    assert!(description.contains(&image), "{description}");
}
