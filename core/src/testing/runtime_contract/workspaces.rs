//! The contract's workspaces: a sandbox's files outlive it, a new sandbox
//! on the kept workspace finds them, a failed create takes only a workspace
//! made for it, and a workspace goes only by `delete_workspace`, never while
//! a sandbox is on it.

use crate::domain::{ContainerState, WorkspaceId, WorkspacePath, WorkspaceUse};
use crate::port::runtime::{CreateRequest, RuntimeError, RuntimeWorkspace, SandboxRef};

use super::lifecycle::listed;
use super::{
    Outcome, RuntimeFixture, cmd, delete_workspace, remove, run, start, start_on, stdout, stop,
    unexpected,
};

/// Files put and files a command wrote survive the sandbox's stop (its
/// workspace is still listed, the sandbox is not); a new session of the
/// chat on the kept workspace reads them and is listed on that workspace.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn files_survive_on_the_kept_workspace(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (first, s) = start(f).await?;
    let put = path("notes/put.txt");
    rt.put_file(&s, &put, b"put before the stop")
        .await
        .map_err(unexpected("put_file"))?;
    let wrote = cmd(&["tee", "made.txt"]).with_stdin(b"made by a command".to_vec());
    let out = run(f, &s, &wrote).await?;
    check_eq!(out.exit_code, 0, "tee made.txt ({out:?})");
    stop(f, &s).await?;
    check!(
        listed(f, &s).await?.is_none(),
        "a stopped sandbox is listed"
    );
    check!(
        workspace_listed(f, first.workspace.id(), false)
            .await?
            .is_some(),
        "the stopped sandbox's workspace is not listed"
    );

    let (second, t) = start_on(f, kept(f, &first)).await?;
    check_eq!(
        rt.get_file(&t, &put).await,
        Ok(b"put before the stop".to_vec()),
        "a file put before the stop, on the kept workspace"
    );
    check_eq!(
        stdout(f, &t, &["cat", "made.txt"]).await?,
        b"made by a command",
        "a file a command wrote before the stop, on the kept workspace"
    );
    let seen = listed(f, &t)
        .await?
        .ok_or("the sandbox on the kept workspace is not listed")?;
    check_eq!(
        seen.workspace_id,
        first.workspace.id(),
        "the listed workspace of the sandbox on the kept workspace"
    );
    remove(f, &second, &t).await
}

/// A create that fails (here on a missing image) leaves no fresh workspace
/// it made, and never takes a kept one: its files stay for the next try.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn a_failed_create_leaves_no_fresh_workspace_and_keeps_a_kept_one(
    f: &dyn RuntimeFixture,
) -> Outcome {
    let rt = f.runtime();
    let mut fresh = f.create_request();
    fresh.spec.image = f.missing_image();
    check_eq!(
        rt.create(&fresh).await,
        Err(RuntimeError::ImageNotFound(fresh.spec.image.clone())),
        "a fresh create from a missing image"
    );
    check!(
        workspace_listed(f, fresh.workspace.id(), false)
            .await?
            .is_none(),
        "a failed create left its fresh workspace"
    );

    let (first, s) = start(f).await?;
    let file = path("kept.txt");
    rt.put_file(&s, &file, b"still here")
        .await
        .map_err(unexpected("put_file"))?;
    stop(f, &s).await?;
    let mut failing = kept(f, &first);
    failing.spec.image = f.missing_image();
    check_eq!(
        rt.create(&failing).await,
        Err(RuntimeError::ImageNotFound(failing.spec.image.clone())),
        "a create on the kept workspace from a missing image"
    );
    check!(
        workspace_listed(f, first.workspace.id(), false)
            .await?
            .is_some(),
        "a failed create took the kept workspace"
    );
    let (second, t) = start_on(f, kept(f, &first)).await?;
    check_eq!(
        rt.get_file(&t, &file).await,
        Ok(b"still here".to_vec()),
        "the kept workspace's file after a failed create on it"
    );
    remove(f, &second, &t).await
}

/// `delete_workspace` takes the files and is idempotent (also for a
/// workspace that never was); a create on a deleted kept workspace is a
/// `Conflict` that makes nothing, no empty workspace in its place; a
/// fresh workspace does not have the deleted one's files.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn delete_workspace_is_idempotent_and_takes_the_files(f: &dyn RuntimeFixture) -> Outcome {
    let rt = f.runtime();
    let (first, s) = start(f).await?;
    let file = path("deleted.txt");
    rt.put_file(&s, &file, b"to be deleted")
        .await
        .map_err(unexpected("put_file"))?;
    stop(f, &s).await?;
    delete_workspace(f, &first).await?;
    check_eq!(
        rt.delete_workspace(&first.workspace.id()).await,
        Ok(()),
        "a second delete_workspace"
    );
    check_eq!(
        rt.delete_workspace(&WorkspaceId::new()).await,
        Ok(()),
        "delete_workspace of a workspace that never was"
    );
    check!(
        workspace_listed(f, first.workspace.id(), false)
            .await?
            .is_none(),
        "a deleted workspace is listed"
    );

    let on_deleted = kept(f, &first);
    let made = rt.create(&on_deleted).await;
    check!(
        matches!(made, Err(RuntimeError::Conflict(_))),
        "a create on a deleted kept workspace: got {made:?}, expected a Conflict"
    );
    check!(
        workspace_listed(f, first.workspace.id(), false)
            .await?
            .is_none(),
        "a create on a deleted workspace made it again"
    );
    let nothing = SandboxRef {
        session_id: on_deleted.session_id,
        chat_id: on_deleted.chat_id.clone(),
        container_id: None,
    };
    check!(
        listed(f, &nothing).await?.is_none(),
        "a create on a deleted workspace left a sandbox"
    );
    check_eq!(
        rt.inspect(&nothing).await,
        Ok(ContainerState::Missing),
        "the sandbox of a create on a deleted workspace"
    );

    let (second, t) = start(f).await?;
    check_eq!(
        rt.get_file(&t, &file).await,
        Err(RuntimeError::FileNotFound(file.to_string())),
        "a deleted workspace's file on a fresh workspace"
    );
    remove(f, &second, &t).await
}

/// `list_workspaces` lists a new workspace once, with the time its request
/// gave (to the millisecond) where it tells one, and when measured at
/// least the bytes put into it where it tells them; not after its deletion.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn list_workspaces_shows_a_workspace_until_it_is_deleted(
    f: &dyn RuntimeFixture,
) -> Outcome {
    const SIZE: usize = 10_000;
    let rt = f.runtime();
    let (request, s) = start(f).await?;
    rt.put_file(&s, &path("data.bin"), &[7u8; SIZE])
        .await
        .map_err(unexpected("put_file"))?;
    let id = request.workspace.id();
    let seen = workspace_listed(f, id, false)
        .await?
        .ok_or("a new workspace is not listed")?;
    if let Some(at) = seen.created_at {
        check_eq!(
            at.timestamp_millis(),
            request.created_at.timestamp_millis(),
            "the listed creation time, to the millisecond"
        );
    }
    let measured = workspace_listed(f, id, true)
        .await?
        .ok_or("a new workspace is not listed when measured")?;
    if let Some(bytes) = measured.bytes {
        check!(
            bytes >= SIZE as u64,
            "measured {bytes} bytes, {SIZE} were put"
        );
    }
    remove(f, &request, &s).await?;
    check!(
        workspace_listed(f, id, true).await?.is_none(),
        "a deleted workspace is listed"
    );
    Ok(())
}

/// While a sandbox is on its workspace, `delete_workspace` is a
/// `Conflict` that changes nothing; after the stop it deletes.
///
/// # Errors
/// When the runtime breaks the property.
pub async fn delete_workspace_while_its_sandbox_runs_is_conflict(
    f: &dyn RuntimeFixture,
) -> Outcome {
    let rt = f.runtime();
    let (request, s) = start(f).await?;
    let file = path("in-use.txt");
    rt.put_file(&s, &file, b"in use")
        .await
        .map_err(unexpected("put_file"))?;
    let refused = rt.delete_workspace(&request.workspace.id()).await;
    check!(
        matches!(refused, Err(RuntimeError::Conflict(_))),
        "delete_workspace under a running sandbox: got {refused:?}, expected a Conflict"
    );
    check_eq!(
        rt.inspect(&s).await,
        Ok(ContainerState::Running),
        "the sandbox after a refused delete_workspace"
    );
    check_eq!(
        rt.get_file(&s, &file).await,
        Ok(b"in use".to_vec()),
        "a file after a refused delete_workspace"
    );
    remove(f, &request, &s).await
}

/// A request for a new session of `first`'s chat on `first`'s workspace.
fn kept(f: &dyn RuntimeFixture, first: &CreateRequest) -> CreateRequest {
    CreateRequest {
        chat_id: first.chat_id.clone(),
        workspace: WorkspaceUse::Kept(first.workspace.id()),
        generation: first.generation + 1,
        ..f.create_request()
    }
}

/// The listed workspace `id`, if any; listed twice is an error.
async fn workspace_listed(
    f: &dyn RuntimeFixture,
    id: WorkspaceId,
    measure: bool,
) -> Result<Option<RuntimeWorkspace>, String> {
    let all = f
        .runtime()
        .list_workspaces(measure)
        .await
        .map_err(unexpected("list_workspaces"))?;
    let mut ours = all.into_iter().filter(|w| w.id == id);
    let first = ours.next();
    check!(ours.next().is_none(), "a workspace listed twice");
    Ok(first)
}

fn path(raw: &str) -> WorkspacePath {
    WorkspacePath::parse(raw).expect("a valid path")
}
