//! Contract properties of a workspace after its session ends: `end`
//! settles its fate (hibernated until a time, or `deleting`), a resume
//! wakes it, and a hibernated one is deleted in two steps (`retire`, then
//! `forget` once its volume is gone).

use crate::domain::{
    ContainerId, EndReason, Workspace, WorkspaceFate, WorkspaceId, WorkspaceStatus,
};
use crate::port::store::SessionStore;

use super::Outcome;
use super::support::*;

/// `end` with `Keep` hibernates the workspace until the given time; a
/// resume on it (`Kept`) is the chat's next generation and wakes it.
///
/// # Errors
/// When the store breaks the property.
pub async fn end_with_keep_hibernates_and_a_resume_wakes_it(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("ws-hibernate");
    let new1 = new_session(&chat, at(0));
    let s1 = create(store, &new1).await?;
    store
        .mark_running(&s1.id, &ContainerId::new("c-hibernate"))
        .await
        .map_err(unexpected("mark_running"))?;
    let before = hibernated(store).await?;

    end_at(store, &s1, EndReason::Hibernated, 100, keep_until(1000)).await?;
    let asleep = Workspace {
        hibernated_at: Some(at(100)),
        retained_until: Some(at(1000)),
        ..expected_fresh_workspace(&new1)
    };
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(asleep),
        "the hibernated workspace"
    );
    check_eq!(
        hibernated(store).await?,
        before + 1,
        "count_hibernated after hibernating"
    );
    let ended = get(store, &s1.id)
        .await?
        .ok_or("the ended session vanished")?;
    check_eq!(
        (ended.end_reason, ended.ended_at),
        (Some(EndReason::Hibernated), Some(at(100))),
        "the hibernated session"
    );

    let new2 = next_session(&s1, at(200));
    let s2 = create(store, &new2).await?;
    check_eq!(s2, expected_creating(&new2, 2), "the resumed session");
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected_fresh_workspace(&new1)),
        "the workspace once resumed"
    );
    check_eq!(
        hibernated(store).await?,
        before,
        "count_hibernated after the resume"
    );
    Ok(())
}

/// `end` with `Delete` marks the workspace `deleting`: the chat has no live
/// workspace, and its next session starts on a fresh one.
///
/// # Errors
/// When the store breaks the property.
pub async fn end_with_delete_marks_the_workspace_deleting(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("ws-delete");
    let new1 = new_session(&chat, at(0));
    let s1 = create(store, &new1).await?;
    end_at(store, &s1, EndReason::Stopped, 50, WorkspaceFate::Delete).await?;
    check_eq!(
        workspace_of(store, &chat).await?,
        None,
        "the chat's live workspace after a delete"
    );
    check_eq!(
        workspace_row(store, s1.workspace_id).await?,
        Some(Workspace {
            status: WorkspaceStatus::Deleting,
            ..expected_fresh_workspace(&new1)
        }),
        "the deleted workspace's row"
    );

    let new2 = new_session(&chat, at(60));
    let s2 = create(store, &new2).await?;
    check_eq!(s2.generation, 2, "the next session's generation");
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected_fresh_workspace(&new2)),
        "the chat's fresh workspace"
    );
    Ok(())
}

/// `retire_workspace` marks only a hibernated workspace `deleting` (and
/// answers `true` again once it is); not one a session runs on, not one
/// a resume took back, not an unknown one. A retired one cannot be resumed.
///
/// # Errors
/// When the store breaks the property.
pub async fn retire_takes_only_hibernated_workspaces(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("ws-retire");
    let new1 = new_session(&chat, at(0));
    let s1 = create(store, &new1).await?;
    let ws = s1.workspace_id;
    check!(
        !retire(store, ws).await?,
        "retire of a workspace a session runs on returned true"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected_fresh_workspace(&new1)),
        "the workspace after a refused retire"
    );

    end_at(store, &s1, EndReason::Hibernated, 10, keep_until(100)).await?;
    let s2 = create(store, &next_session(&s1, at(20))).await?;
    check!(
        !retire(store, ws).await?,
        "retire of a resumed workspace returned true"
    );
    check_eq!(
        get(store, &s2.id).await?.map(|s| s.is_active()),
        Some(true),
        "the resumed session after a refused retire"
    );

    end_at(store, &s2, EndReason::Hibernated, 30, keep_until(130)).await?;
    check!(
        retire(store, ws).await?,
        "retire of a hibernated workspace returned false"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        None,
        "the chat's live workspace after retire"
    );
    check_eq!(
        workspace_row(store, ws).await?,
        Some(Workspace {
            status: WorkspaceStatus::Deleting,
            hibernated_at: Some(at(30)),
            retained_until: Some(at(130)),
            ..expected_fresh_workspace(&new1)
        }),
        "the retired workspace's row"
    );
    check!(
        retire(store, ws).await?,
        "retire of a deleting workspace returned false"
    );
    check!(
        !retire(store, WorkspaceId::new()).await?,
        "retire of an unknown workspace returned true"
    );
    expect_conflict(
        store.begin_create(&next_session(&s2, at(40)), None).await,
        "resuming a retired workspace",
    )
}

/// `forget_workspace` deletes a `deleting` row, once; live rows (in use or
/// hibernated) and unknown ids are left alone.
///
/// # Errors
/// When the store breaks the property.
pub async fn forget_deletes_only_deleting_rows(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("ws-forget");
    let s1 = create(store, &new_session(&chat, at(0))).await?;
    let ws = s1.workspace_id;
    check!(
        !forget(store, ws).await?,
        "forget of a workspace in use returned true"
    );
    end_at(store, &s1, EndReason::Hibernated, 10, keep_until(100)).await?;
    check!(
        !forget(store, ws).await?,
        "forget of a hibernated workspace returned true"
    );
    check_eq!(
        workspace_of(store, &chat).await?.map(|w| w.id),
        Some(ws),
        "the chat's workspace after refused forgets"
    );

    check!(retire(store, ws).await?, "retire returned false");
    check!(
        forget(store, ws).await?,
        "forget of a deleting workspace returned false"
    );
    check_eq!(
        workspace_row(store, ws).await?,
        None,
        "the forgotten workspace's row"
    );
    check!(!forget(store, ws).await?, "a second forget returned true");
    check!(
        !retire(store, ws).await?,
        "retire of a forgotten workspace returned true"
    );
    check!(
        !forget(store, WorkspaceId::new()).await?,
        "forget of an unknown workspace returned true"
    );
    Ok(())
}

/// `count_hibernated` counts live workspaces no session runs on: not one in
/// use, nor one `deleting`.
///
/// # Errors
/// When the store breaks the property.
pub async fn count_hibernated_counts_kept_workspaces(store: &dyn SessionStore) -> Outcome {
    let before = hibernated(store).await?;
    let mut sessions = Vec::new();
    for name in [
        "count-active",
        "count-kept",
        "count-deleted",
        "count-kept-2",
        "count-retired",
    ] {
        sessions.push(create(store, &new_session(&fresh_chat(name), at(0))).await?);
    }
    let [_active, kept, deleted, kept2, retired] = &sessions[..] else {
        return Err("five sessions were made".into());
    };
    for s in [kept, kept2, retired] {
        end_at(store, s, EndReason::Hibernated, 10, keep_until(100)).await?;
    }
    end_at(
        store,
        deleted,
        EndReason::Expired,
        10,
        WorkspaceFate::Delete,
    )
    .await?;
    check!(
        retire(store, retired.workspace_id).await?,
        "retire returned false"
    );
    check_eq!(
        hibernated(store).await?,
        before + 2,
        "count_hibernated with two hibernated chats"
    );
    create(store, &next_session(kept, at(20))).await?;
    check_eq!(
        hibernated(store).await?,
        before + 1,
        "count_hibernated after one resumed"
    );
    Ok(())
}

/// `get_latest` is the chat's highest generation in any status: what a
/// resumed chat had.
///
/// # Errors
/// When the store breaks the property.
pub async fn get_latest_is_the_highest_generation_in_any_status(
    store: &dyn SessionStore,
) -> Outcome {
    let chat = fresh_chat("latest");
    let latest = async || {
        store
            .get_latest(&chat)
            .await
            .map_err(unexpected("get_latest"))
    };
    check_eq!(latest().await?, None, "latest of a new chat");
    let s1 = create(store, &new_session(&chat, at(0))).await?;
    check_eq!(latest().await?, Some(s1.clone()), "latest with one session");
    let s2 = store
        .begin_create(
            &next_session(&s1, at(10)),
            Some(&replacing(&s1, EndReason::MaxLifetime)),
        )
        .await
        .map_err(unexpected("replace"))?;
    check_eq!(latest().await?, Some(s2.clone()), "latest after a replace");
    end_at(store, &s2, EndReason::Hibernated, 20, keep_until(100)).await?;
    check_eq!(
        latest().await?,
        get(store, &s2.id).await?,
        "latest once hibernated"
    );
    let old = get(store, &s1.id)
        .await?
        .ok_or("the replaced session vanished")?;
    check_eq!(
        old.end_reason,
        Some(EndReason::MaxLifetime),
        "the replaced session's end reason"
    );
    Ok(())
}
