//! The workspace as Docker makes it: owned by the sandbox user whatever the
//! image, and nothing of a sandbox left after its stop. Docker-only: uids,
//! helper containers and volumes are the engine's.

use std::time::Instant;

use bollard::query_parameters::InspectContainerOptions;
use sandboxer_core::domain::WorkspacePath;
use sandboxer_core::port::{SandboxRef, SandboxRuntime, StopOutcome};
use sandboxer_docker::testing::{
    create_request, ensure_test_image, ensure_test_image_with_workspace, raw_docker, sh, test_spec,
};

use super::{Sandbox, start, start_on};

/// What the contract's lifecycle and file properties cannot see: what the
/// sandbox user owns of what `put_file` made, shell appends read back, and
/// no footprint left by the stop.
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
    assert_no_footprint(&s).await;
}

/// Nothing named after the session is left: no container, helper or volume.
async fn assert_no_footprint(s: &Sandbox) {
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
    assert!(
        docker.inspect_volume(&name).await.is_err(),
        "volume {name} left behind"
    );
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
        s.cleanup.session(again.session_id);
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
