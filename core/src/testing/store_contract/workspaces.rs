//! Contract properties of the workspace a session is created on: a `Fresh`
//! one is made live for the chat, at most one live per chat (also under a
//! race), and a `Kept` one must be the chat's live workspace.

use std::sync::Arc;

use crate::domain::{EndReason, WorkspaceFate, WorkspaceId, WorkspaceStatus, WorkspaceUse};
use crate::port::store::SessionStore;

use super::races::{one_winner, race};
use super::support::*;
use super::{Outcome, RACERS};

/// A chat's first session makes its fresh workspace live, as given;
/// `list_workspaces` shows it, oldest first.
///
/// # Errors
/// When the store breaks the property.
pub async fn fresh_workspace_is_live_for_its_chat(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("ws-fresh");
    check_eq!(
        workspace_of(store, &chat).await?,
        None,
        "workspace of a new chat"
    );
    let new = new_session(&chat, at(30));
    let s = create(store, &new).await?;
    check_eq!(
        s.workspace_id,
        new.workspace.id(),
        "the session's workspace"
    );
    let expected = expected_fresh_workspace(&new);
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected.clone()),
        "the chat's workspace"
    );

    // Made out of order, so insertion order is not the answer.
    let mut mine = vec![expected.id];
    for (name, created) in [("ws-fresh-a", 10), ("ws-fresh-b", 20)] {
        let new = new_session(&fresh_chat(name), at(created));
        create(store, &new).await?;
        mine.push(new.workspace.id());
    }
    let listed = store
        .list_workspaces()
        .await
        .map_err(unexpected("list_workspaces"))?;
    if let Some(pair) = listed
        .windows(2)
        .find(|w| w[0].created_at > w[1].created_at)
    {
        return Err(format!(
            "list_workspaces is not oldest first: {:?} before {:?}",
            pair[0].id, pair[1].id
        ));
    }
    let listed_mine: Vec<_> = listed
        .iter()
        .filter(|w| mine.contains(&w.id))
        .map(|w| w.id)
        .collect();
    check_eq!(
        listed_mine,
        vec![mine[1], mine[2], mine[0]],
        "this property's workspaces, oldest first"
    );
    check!(
        listed.contains(&expected),
        "list_workspaces shows {expected:?} otherwise"
    );
    Ok(())
}

/// A `Fresh` workspace for a chat that has a live one (in use or
/// hibernated) is a conflict, and the whole `begin_create` is undone: the
/// session it would have replaced stays active.
///
/// # Errors
/// When the store breaks the property.
pub async fn a_second_live_workspace_is_a_conflict(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("ws-second");
    let s1 = create(store, &new_session(&chat, at(0))).await?;
    let in_use = workspace_of(store, &chat).await?;

    let fresh_replace = new_session(&chat, at(10));
    expect_conflict(
        store
            .begin_create(
                &fresh_replace,
                Some(&replacing(&s1, EndReason::SpecChanged)),
            )
            .await,
        "a replacement on a second fresh workspace",
    )?;
    check_eq!(
        get(store, &s1.id).await?,
        Some(s1.clone()),
        "the session a refused replacement would have ended"
    );
    check_eq!(
        get(store, &fresh_replace.id).await?,
        None,
        "the refused session was stored"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        in_use,
        "the chat's workspace after a refused replacement"
    );

    end_at(store, &s1, EndReason::Hibernated, 20, keep_until(1000)).await?;
    let kept = workspace_of(store, &chat).await?;
    let fresh = new_session(&chat, at(30));
    expect_conflict(
        store.begin_create(&fresh, None).await,
        "a fresh workspace beside a hibernated one",
    )?;
    check_eq!(
        get(store, &fresh.id).await?,
        None,
        "the refused session was stored"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        kept,
        "the hibernated workspace after a refused create"
    );
    for refused in [&fresh_replace, &fresh] {
        check_eq!(
            workspace_row(store, refused.workspace.id()).await?,
            None,
            "a refused fresh workspace was stored"
        );
    }
    Ok(())
}

/// A `Kept` workspace that is another chat's, unknown, or `deleting` is a
/// conflict and changes nothing.
///
/// # Errors
/// When the store breaks the property.
pub async fn kept_workspace_must_be_the_chats_live_one(store: &dyn SessionStore) -> Outcome {
    let (chat, other) = (fresh_chat("ws-kept"), fresh_chat("ws-kept-other"));
    let o1 = create(store, &new_session(&other, at(0))).await?;
    let others = workspace_of(store, &other).await?;
    let s1 = create(store, &new_session(&chat, at(0))).await?;
    // Hibernated: a resume on its own workspace would be accepted.
    end_at(store, &s1, EndReason::Hibernated, 5, keep_until(1000)).await?;
    let kept = workspace_of(store, &chat).await?;

    for (workspace, what) in [
        (o1.workspace_id, "another chat's workspace"),
        (WorkspaceId::new(), "an unknown workspace"),
    ] {
        let new = session_on(&chat, WorkspaceUse::Kept(workspace), at(10));
        expect_conflict(store.begin_create(&new, None).await, what)?;
        check_eq!(
            get(store, &new.id).await?,
            None,
            "a session on {what} was stored"
        );
    }
    check_eq!(
        workspace_of(store, &chat).await?,
        kept,
        "the chat's hibernated workspace after refusals"
    );
    check_eq!(
        workspace_of(store, &other).await?,
        others,
        "the other chat's workspace after refusals"
    );

    let gone_chat = fresh_chat("ws-kept-deleting");
    let g1 = create(store, &new_session(&gone_chat, at(0))).await?;
    end_at(store, &g1, EndReason::Stopped, 5, WorkspaceFate::Delete).await?;
    let revive = next_session(&g1, at(10));
    expect_conflict(
        store.begin_create(&revive, None).await,
        "a deleting workspace",
    )?;
    check_eq!(
        get(store, &revive.id).await?,
        None,
        "a session on a deleting workspace was stored"
    );
    check_eq!(
        workspace_row(store, g1.workspace_id)
            .await?
            .map(|w| w.status),
        Some(WorkspaceStatus::Deleting),
        "the deleting workspace after a refused resume"
    );
    check_eq!(
        workspace_of(store, &gone_chat).await?,
        None,
        "the chat whose workspace is deleting"
    );
    Ok(())
}

/// Many tasks create a session for one chat (whose earlier workspace is
/// being deleted) on a fresh workspace each: exactly one workspace is
/// live, the winner's, and no loser's was stored.
///
/// # Errors
/// When the store breaks the property.
pub async fn concurrent_fresh_creates_leave_one_live_workspace(
    store: Arc<dyn SessionStore>,
) -> Outcome {
    let chat = fresh_chat("ws-race");
    let first = create(store.as_ref(), &new_session(&chat, at(0))).await?;
    end_at(
        store.as_ref(),
        &first,
        EndReason::Stopped,
        5,
        WorkspaceFate::Delete,
    )
    .await?;
    let news: Vec<_> = (0..RACERS).map(|_| new_session(&chat, at(10))).collect();
    let results = race(&store, news.iter().cloned().map(|n| (n, None))).await?;
    let winner = one_winner(&results)?;
    check_eq!(winner.generation, 2, "the winner's generation");
    let won = news
        .iter()
        .find(|n| n.id == winner.id)
        .ok_or("the winner is none of the racers")?;
    check_eq!(
        workspace_of(store.as_ref(), &chat).await?,
        Some(expected_fresh_workspace(won)),
        "the chat's live workspace after the race"
    );
    let all = store
        .list_workspaces()
        .await
        .map_err(unexpected("list_workspaces"))?;
    let mut mine: Vec<_> = all
        .iter()
        .filter(|w| w.chat_id == chat)
        .map(|w| (w.id, w.status))
        .collect();
    mine.sort_by_key(|(id, _)| *id);
    let mut expected = vec![
        (first.workspace_id, WorkspaceStatus::Deleting),
        (won.workspace.id(), WorkspaceStatus::Live),
    ];
    expected.sort_by_key(|(id, _)| *id);
    check_eq!(mine, expected, "the chat's workspace rows after the race");
    Ok(())
}
