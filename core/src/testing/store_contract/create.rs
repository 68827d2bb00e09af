//! Contract properties of creating and replacing sessions: generations,
//! one active session per chat and the compare-and-swap.

use crate::domain::{ContainerId, EndReason, Session, SessionId, SessionStatus, WorkspaceFate};
use crate::port::store::{Replacing, SessionStore, StoreError};

use super::Outcome;
use super::support::*;

/// A chat's first session is generation 1 and `creating`, stored as given;
/// each replacement ends the old one with its reason and counts up.
///
/// # Errors
/// When the store breaks the property.
pub async fn create_assigns_generation_one_then_replace_counts_up(
    store: &dyn SessionStore,
) -> Outcome {
    let chat = fresh_chat("generations");
    let new1 = new_session(&chat, at(0));
    let s1 = store
        .begin_create(&new1, None)
        .await
        .map_err(unexpected("first begin_create"))?;
    check_eq!(s1, expected_creating(&new1, 1), "first session as returned");
    check_eq!(
        get(store, &s1.id).await?,
        Some(s1.clone()),
        "first session as read back"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(s1.clone()),
        "active session"
    );

    let running = store
        .mark_running(&s1.id, &ContainerId::new("c-1"))
        .await
        .map_err(unexpected("mark_running"))?;
    let new2 = next_session(&running, at(60));
    let s2 = store
        .begin_create(&new2, Some(&replacing(&running, EndReason::Expired)))
        .await
        .map_err(unexpected("replacing begin_create"))?;
    check_eq!(s2, expected_creating(&new2, 2), "replacement as returned");
    let old = get(store, &s1.id)
        .await?
        .ok_or("the replaced session vanished")?;
    check_eq!(
        old.status,
        SessionStatus::Ended,
        "replaced session's status"
    );
    check_eq!(
        old.end_reason,
        Some(EndReason::Expired),
        "replaced session's end reason"
    );
    check_eq!(
        old.ended_at,
        Some(new2.created_at),
        "replaced session ends when the new one starts"
    );
    check_eq!(
        old.container_id,
        Some(ContainerId::new("c-1")),
        "replaced session keeps its container id"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(s2.clone()),
        "active after replace"
    );

    let new3 = next_session(&s2, at(120));
    let s3 = store
        .begin_create(&new3, Some(&replacing(&s2, EndReason::SpecChanged)))
        .await
        .map_err(unexpected("second replace"))?;
    check_eq!(s3.generation, 3, "generation after two replacements");
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected_fresh_workspace(&new1)),
        "the workspace replacements run on"
    );
    Ok(())
}

/// A second `begin_create` without `replacing` while the chat has an active
/// session is a conflict and changes nothing; other chats are independent.
///
/// # Errors
/// When the store breaks the property.
pub async fn one_active_session_per_chat(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("one-active");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("first begin_create"))?;
    let active_before = count(store).await?;

    // On the chat's own workspace, so only the active session is in the way.
    let second = next_session(&s1, at(1));
    expect_conflict(
        store.begin_create(&second, None).await,
        "second create while creating",
    )?;
    check_eq!(
        get(store, &second.id).await?,
        None,
        "the refused session was stored"
    );
    check_eq!(
        get(store, &s1.id).await?,
        Some(s1.clone()),
        "the active session changed"
    );

    let running = store
        .mark_running(&s1.id, &ContainerId::new("c-1"))
        .await
        .map_err(unexpected("mark_running"))?;
    let third = next_session(&s1, at(2));
    expect_conflict(
        store.begin_create(&third, None).await,
        "second create while running",
    )?;
    check_eq!(
        get(store, &third.id).await?,
        None,
        "the refused session was stored"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(running),
        "active session after refusals"
    );
    check_eq!(
        count(store).await?,
        active_before,
        "active count after refusals"
    );

    let other = fresh_chat("one-active-other");
    let o1 = store
        .begin_create(&new_session(&other, at(3)), None)
        .await
        .map_err(unexpected("another chat's begin_create"))?;
    check_eq!(o1.generation, 1, "another chat counts its own generations");
    Ok(())
}

/// Replacing with a stale generation, an ended session, or another chat's
/// session is a conflict and changes nothing.
///
/// # Errors
/// When the store breaks the property.
pub async fn stale_or_ended_replacing_is_a_conflict(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("stale");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("first begin_create"))?;
    let s2 = store
        .begin_create(
            &next_session(&s1, at(10)),
            Some(&replacing(&s1, EndReason::Expired)),
        )
        .await
        .map_err(unexpected("replace"))?;
    let s1_ended = get(store, &s1.id).await?;

    // The caller read s1, someone else replaced it meanwhile.
    let late = next_session(&s2, at(20));
    expect_conflict(
        store
            .begin_create(&late, Some(&replacing(&s1, EndReason::ContainerGone)))
            .await,
        "replacing an already replaced session",
    )?;
    // The right session at the wrong generation.
    let wrong_gen = Replacing {
        generation: 1,
        ..replacing(&s2, EndReason::Expired)
    };
    expect_conflict(
        store.begin_create(&late, Some(&wrong_gen)).await,
        "replacing at a stale generation",
    )?;
    check_eq!(
        get(store, &late.id).await?,
        None,
        "a refused session was stored"
    );
    check_eq!(
        get(store, &s2.id).await?,
        Some(s2.clone()),
        "the active session changed"
    );
    check_eq!(
        get(store, &s1.id).await?,
        s1_ended,
        "the ended session changed"
    );

    // Another chat's active session.
    let other = fresh_chat("stale-other");
    let o1 = store
        .begin_create(&new_session(&other, at(25)), None)
        .await
        .map_err(unexpected("another chat's begin_create"))?;
    let foreign = next_session(&s2, at(26));
    expect_conflict(
        store
            .begin_create(&foreign, Some(&replacing(&o1, EndReason::Stopped)))
            .await,
        "replacing another chat's session",
    )?;
    check_eq!(
        get(store, &o1.id).await?,
        Some(o1),
        "the other chat's session changed"
    );
    check_eq!(
        get(store, &foreign.id).await?,
        None,
        "a refused session was stored"
    );

    // An ended session: the chat has no active one and its workspace is
    // free to resume, yet the CAS still fails.
    check!(
        store
            .end(&s2.id, EndReason::Hibernated, at(30), keep_until(1000))
            .await
            .map_err(unexpected("end"))?,
        "end of the active session returned false"
    );
    let s2_ended = get(store, &s2.id).await?;
    let hibernated = workspace_of(store, &chat).await?;
    let after_end = next_session(&s2, at(40));
    expect_conflict(
        store
            .begin_create(&after_end, Some(&replacing(&s2, EndReason::Expired)))
            .await,
        "replacing an ended session",
    )?;
    check_eq!(
        get(store, &after_end.id).await?,
        None,
        "a refused session was stored"
    );
    check_eq!(
        get(store, &s2.id).await?,
        s2_ended,
        "the ended session changed"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        hibernated,
        "a refused resume changed the workspace"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        None,
        "an active session appeared"
    );
    Ok(())
}

/// `mark_running` moves `creating` to `running` with the container id, and
/// is `NotFound` from any other status or for an unknown id.
///
/// # Errors
/// When the store breaks the property.
pub async fn mark_running_only_from_creating(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("running");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    let container = ContainerId::new("c-running");
    let running = store
        .mark_running(&s1.id, &container)
        .await
        .map_err(unexpected("mark_running"))?;
    let expected = Session {
        status: SessionStatus::Running,
        container_id: Some(container.clone()),
        ..s1.clone()
    };
    check_eq!(running, expected, "running session as returned");
    check_eq!(
        get(store, &s1.id).await?,
        Some(expected.clone()),
        "running session as read back"
    );

    let again = store
        .mark_running(&s1.id, &ContainerId::new("c-other"))
        .await;
    check!(
        matches!(again, Err(StoreError::NotFound(id)) if id == s1.id),
        "mark_running of a running session gave {again:?}"
    );
    check_eq!(
        get(store, &s1.id).await?,
        Some(expected),
        "a second mark_running changed the row"
    );

    let unknown = SessionId::new();
    let r = store.mark_running(&unknown, &container).await;
    check!(
        matches!(r, Err(StoreError::NotFound(id)) if id == unknown),
        "mark_running of an unknown id gave {r:?}"
    );

    let chat2 = fresh_chat("running-ended");
    let c = store
        .begin_create(&new_session(&chat2, at(5)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    store
        .end(&c.id, EndReason::CreateFailed, at(6), WorkspaceFate::Delete)
        .await
        .map_err(unexpected("end"))?;
    let r = store.mark_running(&c.id, &container).await;
    check!(
        matches!(r, Err(StoreError::NotFound(_))),
        "mark_running of an ended session gave {r:?}"
    );
    let row = get(store, &c.id)
        .await?
        .ok_or("the ended session vanished")?;
    check_eq!(
        (row.status, row.container_id),
        (SessionStatus::Ended, None),
        "ended session after a refused mark_running"
    );
    Ok(())
}
