//! The workspace as Docker makes it: owned by the sandbox user whatever the
//! image, a labelled volume that outlives the sandbox's containers, and
//! nothing of it left after `delete_workspace`. Docker-only: uids, helper
//! containers and volumes are the engine's.

use std::time::Instant;

use bollard::query_parameters::InspectContainerOptions;
use sandboxer_core::domain::{WorkspacePath, WorkspaceUse};
use sandboxer_core::port::{CreateRequest, RuntimeError, SandboxRef, SandboxRuntime, StopOutcome};
use sandboxer_docker::testing::{
    create_request, ensure_test_image, ensure_test_image_with_workspace, raw_docker, sh, test_spec,
    volume_name,
};

use super::{Sandbox, start, start_on};

/// What the contract's lifecycle and file properties cannot see: what the
/// sandbox user owns of what `put_file` made, shell appends read back, no
/// container left by the stop but the volume, and nothing left by
/// `delete_workspace`.
pub async fn lifecycle(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let path = WorkspacePath::parse("src/pkg/data.txt").unwrap();
    s.runtime
        .put_file(&s.sandbox, &path, b"line one\n")
        .await
        .unwrap();
    // Later execs read and change it, and own what was made for it.
    let listing = s
        .stdout("cat src/pkg/data.txt && echo two >> src/pkg/data.txt && stat -c '%u:%g %a %n' . src src/pkg src/pkg/data.txt")
        .await;
    assert!(listing.starts_with("line one\n"), "{listing}");
    for owned in [
        "1000:1000 755 .",
        "1000:1000 755 src",
        "1000:1000 755 src/pkg",
        "1000:1000 644 src/pkg/data.txt",
    ] {
        assert!(listing.contains(owned), "{owned:?} not in {listing}");
    }
    assert_eq!(
        s.runtime.get_file(&s.sandbox, &path).await.unwrap(),
        b"line one\ntwo\n"
    );
    // A file the sandbox's shell made is readable from outside.
    s.stdout("printf made-inside > inside.txt").await;
    let inside = WorkspacePath::parse("inside.txt").unwrap();
    assert_eq!(
        s.runtime.get_file(&s.sandbox, &inside).await.unwrap(),
        b"made-inside"
    );

    let began = Instant::now();
    assert_eq!(
        s.runtime.stop(&s.sandbox).await.unwrap(),
        StopOutcome::Stopped
    );
    println!("[{rt}] stop took {:?}", began.elapsed());
    assert_no_containers(&s).await;
    let docker = raw_docker().await;
    let volume = volume_name(s.workspace);
    assert!(
        docker.inspect_volume(&volume).await.is_ok(),
        "the stop took the workspace volume {volume}"
    );
    let began = Instant::now();
    s.runtime.delete_workspace(&s.workspace).await.unwrap();
    println!("[{rt}] delete_workspace took {:?}", began.elapsed());
    assert!(
        docker.inspect_volume(&volume).await.is_err(),
        "volume {volume} left behind"
    );
}

/// No container named after the session is left: no sandbox, no helper.
async fn assert_no_containers(s: &Sandbox) {
    let docker = raw_docker().await;
    let name = format!("sandboxer-{}", s.sandbox.session_id);
    for container in [name.clone(), format!("{name}-prep")] {
        assert!(
            docker
                .inspect_container(&container, None::<InspectContainerOptions>)
                .await
                .is_err(),
            "{container} left behind"
        );
    }
}

/// The workspace volume as `docker volume inspect` sees it (named and
/// labelled for the workspace, not the session), a sandbox's files kept
/// for the next sandbox of the chat on it (owner and all), measured by
/// `list_workspaces(true)`; `delete_workspace` under a sandbox is a
/// `Conflict`, and a kept workspace removed outside the service is a
/// `Conflict` that makes nothing, not an empty workspace.
pub async fn workspace_kept_across_sandboxes(rt: &'static str) {
    let s = start(rt, |_| {}).await;
    let docker = raw_docker().await;
    let volume = docker
        .inspect_volume(&volume_name(s.workspace))
        .await
        .expect("the workspace volume");
    let labels = &volume.labels;
    assert_eq!(labels["sandboxer.managed"], "true");
    assert_eq!(labels["sandboxer.workspace-id"], s.workspace.to_string());
    assert_eq!(labels["sandboxer.chat-id"], s.sandbox.chat_id.as_str());
    assert!(chrono::DateTime::parse_from_rfc3339(&labels["sandboxer.created-at"]).is_ok());
    assert!(
        !labels.contains_key("sandboxer.session-id"),
        "a workspace outlives its session: {labels:?}"
    );
    let data = vec![b'x'; 100_000];
    let path = WorkspacePath::parse("keep/data.bin").unwrap();
    s.runtime.put_file(&s.sandbox, &path, &data).await.unwrap();
    s.stdout("mkdir -p made && echo inside > made/by-shell && chmod 700 made")
        .await;

    let refused = s.runtime.delete_workspace(&s.workspace).await;
    assert!(
        matches!(&refused, Err(RuntimeError::Conflict(m)) if m.contains(&s.workspace.to_string())),
        "{refused:?}"
    );
    let listed = s.runtime.list_workspaces(true).await.unwrap();
    let seen = listed
        .iter()
        .find(|w| w.id == s.workspace)
        .expect("the workspace is listed");
    let bytes = seen.bytes.expect("a local volume is measured");
    assert!(bytes >= 100_000, "{bytes} bytes measured");
    let unmeasured = s.runtime.list_workspaces(false).await.unwrap();
    assert!(unmeasured.iter().all(|w| w.bytes.is_none()));

    assert_eq!(
        s.runtime.stop(&s.sandbox).await.unwrap(),
        StopOutcome::Stopped
    );
    let kept = kept_request(&s, &s.image, rt);
    let id = s.runtime.create(&kept).await.unwrap();
    let second = SandboxRef {
        session_id: kept.session_id,
        chat_id: kept.chat_id.clone(),
        container_id: Some(id),
    };
    assert_eq!(s.runtime.get_file(&second, &path).await.unwrap(), data);
    let out = s
        .runtime
        .exec(
            &second,
            &sh("cat made/by-shell && stat -c '%u:%g %a' . made && touch ok"),
        )
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "inside\n1000:1000 755\n1000:1000 700\n",
        "{out:?}"
    );
    s.runtime.stop(&second).await.unwrap();

    // Removed outside the service: the chat's files are lost, and the
    // create says so rather than mounting an empty workspace.
    docker
        .remove_volume(
            &volume_name(s.workspace),
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
    let lost = kept_request(&s, &s.image, rt);
    let made = s.runtime.create(&lost).await;
    assert!(
        matches!(&made, Err(RuntimeError::Conflict(m)) if m.contains(&s.workspace.to_string())),
        "{made:?}"
    );
    assert!(
        docker
            .inspect_volume(&volume_name(s.workspace))
            .await
            .is_err(),
        "a create on a lost workspace made an empty one"
    );
    assert!(
        docker
            .inspect_container(
                &format!("sandboxer-{}", lost.session_id),
                None::<InspectContainerOptions>
            )
            .await
            .is_err(),
        "a create on a lost workspace left a container"
    );
}

/// A new session of `s`'s chat on `s`'s workspace, registered for cleanup.
fn kept_request(s: &Sandbox, image: &str, rt: &'static str) -> CreateRequest {
    let request = CreateRequest {
        chat_id: s.sandbox.chat_id.clone(),
        workspace: WorkspaceUse::Kept(s.workspace),
        generation: 2,
        ..create_request(test_spec(image, rt))
    };
    s.cleanup.request(&request);
    request
}

/// `/workspace` is the sandbox user's with an image that lacks it (helper
/// path) and with one that has it owned by 1000 (copy-up fast path).
pub async fn workspace_owner(rt: &'static str) {
    for image in [ensure_test_image(), ensure_test_image_with_workspace()] {
        let s = start_on(image.clone(), rt, |_| {}).await;
        assert_eq!(
            s.stdout("stat -c '%u:%g' /workspace && touch /workspace/ok && echo ok")
                .await,
            "1000:1000\nok\n",
            "{image}"
        );
        // A second sandbox of the same image on the same runtime takes the
        // remembered answer for the image, and is right too.
        let again = create_request(test_spec(&image, rt));
        s.cleanup.request(&again);
        let id = s.runtime.create(&again).await.unwrap();
        let second = SandboxRef {
            session_id: again.session_id,
            chat_id: again.chat_id.clone(),
            container_id: Some(id),
        };
        let out = s
            .runtime
            .exec(
                &second,
                &sh("stat -c '%u:%g' /workspace && touch /workspace/ok"),
            )
            .await
            .unwrap();
        assert_eq!(
            (out.exit_code, out.stdout.as_slice()),
            (0, &b"1000:1000\n"[..]),
            "{image}: {out:?}"
        );
        let docker = raw_docker().await;
        for session in [s.sandbox.session_id, again.session_id] {
            let prep = format!("sandboxer-{session}-prep");
            assert!(
                docker
                    .inspect_container(&prep, None::<InspectContainerOptions>)
                    .await
                    .is_err(),
                "helper left"
            );
        }
    }
}
