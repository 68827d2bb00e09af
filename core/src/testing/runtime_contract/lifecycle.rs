//! The contract's sandbox lifecycle: create, inspect, list, stop (twice,
//! by id or by session only), what a gone sandbox answers, adoption, a
//! missing image. What stays of a sandbox after its stop, its workspace, is
//! `workspaces`'.

use std::time::{Duration, Instant};

use crate::domain::{ContainerState, WorkspacePath};
use crate::port::runtime::{RuntimeError, RuntimeSandbox, SandboxRef, StopOutcome};

use super::{Outcome, RuntimeFixture, cmd, delete_workspace, remove, run, start, stop, unexpected};

/// How long a runtime may go on calling a removed sandbox running: one that
/// caches liveness hears of the removal from the engine, a little later.
const GONE_WITHIN: Duration = Duration::from_secs(10);

/// A missing image is answered at once, never by a pull that hangs.
const IMAGE_NOT_FOUND_WITHIN: Duration = Duration::from_secs(5);

/// The runtime answers.
///
/// # Errors
/// When `ping` fails.
pub async fn ping_answers(f: &dyn RuntimeFixture) -> Outcome {
    f.runtime().ping().await.map_err(unexpected("ping"))
}

/// Create -> `Running` -> exec -> stop -> `AlreadyGone` (by id and by
/// session only) -> `Missing`; a stopped sandbox's exec and files are
/// `ContainerGone`.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn lifecycle(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (request, s) = start(f).await?;
    check_eq!(
        rt.inspect(&s).await,
        Ok(ContainerState::Running),
        "a new sandbox"
    );
    let out = run(f, &s, &cmd(&["echo", "hello", "world"])).await?;
    check_eq!(
        (out.exit_code, out.stdout.as_slice(), out.timed_out),
        (0, &b"hello world\n"[..], false),
        "echo ({out:?})"
    );

    check_eq!(rt.stop(&s).await, Ok(StopOutcome::Stopped), "first stop");
    check_eq!(
        rt.stop(&s).await,
        Ok(StopOutcome::AlreadyGone),
        "second stop"
    );
    let by_name = SandboxRef {
        container_id: None,
        ..s.clone()
    };
    check_eq!(
        rt.stop(&by_name).await,
        Ok(StopOutcome::AlreadyGone),
        "stop by session id only"
    );
    check_eq!(
        rt.inspect(&s).await,
        Ok(ContainerState::Missing),
        "a stopped sandbox"
    );
    expect_gone(f, &s).await?;
    delete_workspace(f, &request).await
}

/// A second create of the same session adopts the sandbox it made: the
/// same container, still running, its files kept.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn create_again_adopts_the_sandbox(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (request, s) = start(f).await?;
    let path = WorkspacePath::parse("kept.txt").expect("a valid path");
    rt.put_file(&s, &path, b"kept")
        .await
        .map_err(unexpected("put_file"))?;
    let again = rt
        .create(&request)
        .await
        .map_err(unexpected("second create"))?;
    check_eq!(Some(again), s.container_id, "the second create's container");
    check_eq!(
        rt.inspect(&s).await,
        Ok(ContainerState::Running),
        "the adopted sandbox"
    );
    check_eq!(
        rt.get_file(&s, &path).await,
        Ok(b"kept".to_vec()),
        "a file of the adopted sandbox"
    );
    remove(f, &request, &s).await
}

/// Creating from an image the runtime lacks is `ImageNotFound`, soon, and
/// leaves nothing for the session.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn create_from_a_missing_image_is_image_not_found(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let mut request = f.create_request();
    request.spec.image = f.missing_image();
    let began = Instant::now();
    let made = rt.create(&request).await;
    let took = began.elapsed();
    check_eq!(
        made,
        Err(RuntimeError::ImageNotFound(request.spec.image.clone())),
        "create from {:?}",
        request.spec.image
    );
    check!(took < IMAGE_NOT_FOUND_WITHIN, "ImageNotFound took {took:?}");
    let s = SandboxRef {
        session_id: request.session_id,
        chat_id: request.chat_id.clone(),
        container_id: None,
    };
    check_eq!(
        rt.inspect(&s).await,
        Ok(ContainerState::Missing),
        "the failed session's sandbox"
    );
    check!(
        listed(f, &s).await?.is_none(),
        "the failed session is listed"
    );
    check_eq!(
        rt.stop(&s).await,
        Ok(StopOutcome::AlreadyGone),
        "stop of the failed session"
    );
    let workspaces = rt
        .list_workspaces(false)
        .await
        .map_err(unexpected("list_workspaces"))?;
    check!(
        workspaces.iter().all(|w| w.id != request.workspace.id()),
        "the failed create's fresh workspace is listed"
    );
    Ok(())
}

/// `list_active_sessions` shows every sandbox made, as its request
/// described it, and no longer shows one stopped.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn list_shows_what_was_made(f: &dyn RuntimeFixture) -> Outcome {
    let (first_request, first) = start(f).await?;
    let (second_request, second) = start(f).await?;
    for (request, s) in [(&first_request, &first), (&second_request, &second)] {
        let seen = listed(f, s).await?.ok_or("a new sandbox is not listed")?;
        let expected = RuntimeSandbox {
            container_id: s.container_id.clone().expect("started"),
            session_id: request.session_id,
            chat_id: request.chat_id.clone(),
            workspace_id: request.workspace.id(),
            generation: request.generation,
            created_at: seen.created_at,
            running: true,
        };
        check_eq!(seen, expected, "the listed sandbox");
        check_eq!(
            seen.created_at.timestamp_millis(),
            request.created_at.timestamp_millis(),
            "the listed creation time, to the millisecond"
        );
        check_eq!(seen.to_ref(), *s, "the listed sandbox's ref");
    }
    stop(f, &first).await?;
    check!(
        listed(f, &first).await?.is_none(),
        "a stopped sandbox is listed (its workspace is no sandbox)"
    );
    check!(
        listed(f, &second).await?.is_some(),
        "stopping one sandbox unlisted another"
    );
    delete_workspace(f, &first_request).await?;
    remove(f, &second_request, &second).await
}

/// A sandbox removed behind the runtime's back: exec and files are
/// `ContainerGone`, inspect says `Missing` (soon), stop cleans up what is
/// left and then finds it gone.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn a_sandbox_removed_behind_its_back_is_gone(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (request, s) = start(f).await?;
    f.remove_behind_its_back(&s).await;
    expect_gone(f, &s).await?;
    let began = Instant::now();
    loop {
        let state = rt.inspect(&s).await.map_err(unexpected("inspect"))?;
        if state == ContainerState::Missing {
            break;
        }
        check!(
            began.elapsed() < GONE_WITHIN,
            "still {state:?} {GONE_WITHIN:?} after its removal"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.stop(&s).await.map_err(unexpected("stop"))?;
    check_eq!(
        rt.stop(&s).await,
        Ok(StopOutcome::AlreadyGone),
        "stop after the stop"
    );
    check!(
        listed(f, &s).await?.is_none(),
        "a removed and stopped sandbox is listed"
    );
    delete_workspace(f, &request).await
}

/// Exec, `put_file`, `get_file` and `list_files` on `s` are `ContainerGone`.
async fn expect_gone(f: &dyn RuntimeFixture, s: &SandboxRef) -> Outcome {
    let rt = f.runtime();
    let path = WorkspacePath::parse("gone.txt").expect("a valid path");
    check_eq!(
        rt.exec(s, &cmd(&["true"])).await,
        Err(RuntimeError::ContainerGone),
        "exec in a gone sandbox"
    );
    check_eq!(
        rt.put_file(s, &path, b"x").await,
        Err(RuntimeError::ContainerGone),
        "put_file in a gone sandbox"
    );
    check_eq!(
        rt.get_file(s, &path).await,
        Err(RuntimeError::ContainerGone),
        "get_file in a gone sandbox"
    );
    check_eq!(
        rt.list_files(s, None).await,
        Err(RuntimeError::ContainerGone),
        "list_files in a gone sandbox"
    );
    Ok(())
}

/// The listed sandbox of `s`'s session, if any.
pub(super) async fn listed(
    f: &dyn RuntimeFixture,
    s: &SandboxRef,
) -> Result<Option<RuntimeSandbox>, String> {
    let all = f
        .runtime()
        .list_active_sessions()
        .await
        .map_err(unexpected("list_active_sessions"))?;
    let mut ours = all.into_iter().filter(|x| x.session_id == s.session_id);
    let first = ours.next();
    check!(ours.next().is_none(), "a session listed twice");
    Ok(first)
}
