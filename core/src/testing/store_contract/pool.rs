//! Contract properties of the warm pool: members are added `warming`, made
//! `ready` once, listed oldest first and removed idempotently; a claim takes
//! the oldest ready member of the spec hash and fingerprint asked for and
//! makes it the chat's running session on the member's workspace, never
//! for a chat that has a sandbox, and never one member twice.
//!
//! The pool is not per chat: each property uses a fingerprint of its own,
//! so the members of other properties on the same store never fit.

use std::collections::HashSet;
use std::sync::Arc;

use crate::domain::{
    ContainerId, EndReason, PoolMember, PoolStatus, SessionId, SpecHash, WorkspaceFate,
};
use crate::port::store::{SessionStore, StoreError};

use super::support::*;
use super::{Outcome, RACERS};

/// Members are stored as given and listed oldest first.
///
/// # Errors
/// When the store breaks the property.
pub async fn pool_members_are_listed_oldest_first(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-list");
    // Added out of order, so insertion order is not the answer.
    let young = pool_member(&fp, 30, PoolStatus::Warming);
    let old = pool_member(&fp, 10, PoolStatus::Ready);
    let middle = pool_member(&fp, 20, PoolStatus::Warming);
    for m in [&young, &old, &middle] {
        add_member(store, m).await?;
    }
    let listed = listed_pool(store).await?;
    if let Some(pair) = listed
        .windows(2)
        .find(|w| w[0].created_at > w[1].created_at)
    {
        return Err(format!(
            "list_pool is not oldest first: {} before {}",
            pair[0].session_id, pair[1].session_id
        ));
    }
    check_eq!(
        mine(&listed, &fp),
        vec![old.clone(), middle.clone(), young.clone()],
        "this property's members, oldest first"
    );

    let twice = PoolMember {
        session_id: old.session_id,
        ..pool_member(&fp, 40, PoolStatus::Warming)
    };
    match store.add_pool_member(&twice).await {
        Err(StoreError::Conflict(_)) => {}
        other => {
            return Err(format!(
                "a taken session id: expected Conflict, got {other:?}"
            ));
        }
    }
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![old, middle, young],
        "the members after a refused add"
    );
    Ok(())
}

/// `mark_pool_ready` turns a `warming` member `ready` with its container,
/// once: not a `ready` one again, not an unknown or removed one.
///
/// # Errors
/// When the store breaks the property.
pub async fn mark_pool_ready_only_from_warming(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-ready");
    let member = pool_member(&fp, 0, PoolStatus::Warming);
    add_member(store, &member).await?;
    let (c1, c2) = (ContainerId::new("c-ready-1"), ContainerId::new("c-ready-2"));
    check!(
        mark_ready(store, &member.session_id, &c1).await?,
        "mark_pool_ready of a warming member returned false"
    );
    let made_ready = PoolMember {
        container_id: Some(c1),
        status: PoolStatus::Ready,
        ..member.clone()
    };
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![made_ready.clone()],
        "the member once ready"
    );
    check!(
        !mark_ready(store, &member.session_id, &c2).await?,
        "mark_pool_ready of a ready member returned true"
    );
    check!(
        !mark_ready(store, &SessionId::new(), &c2).await?,
        "mark_pool_ready of an unknown member returned true"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![made_ready],
        "the member after refused marks"
    );

    let drained = pool_member(&fp, 5, PoolStatus::Warming);
    add_member(store, &drained).await?;
    check!(
        remove_member(store, &drained.session_id).await?,
        "remove returned false"
    );
    check!(
        !mark_ready(store, &drained.session_id, &c2).await?,
        "mark_pool_ready of a removed member returned true"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &fp).len(),
        1,
        "members after marking a removed one ready"
    );
    Ok(())
}

/// `remove_pool_member` removes a member (`true`), then answers `false`;
/// so it does for an unknown one. The other members stay.
///
/// # Errors
/// When the store breaks the property.
pub async fn remove_pool_member_is_idempotent(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-remove");
    let gone = pool_member(&fp, 0, PoolStatus::Ready);
    let stays = pool_member(&fp, 1, PoolStatus::Warming);
    add_member(store, &gone).await?;
    add_member(store, &stays).await?;
    check!(
        remove_member(store, &gone.session_id).await?,
        "remove of a member returned false"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![stays.clone()],
        "the members after a remove"
    );
    check!(
        !remove_member(store, &gone.session_id).await?,
        "a second remove returned true"
    );
    check!(
        !remove_member(store, &SessionId::new()).await?,
        "remove of an unknown member returned true"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![stays],
        "the members after refused removes"
    );
    Ok(())
}

/// A claim takes the oldest `ready` member of its spec hash and
/// fingerprint: not a `warming` one, not one of another hash or
/// fingerprint. Once those are all that is left, a claim is `None`.
///
/// # Errors
/// When the store breaks the property.
pub async fn claim_takes_the_oldest_ready_member_that_fits(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-fit");
    let other_fp = fresh_fingerprint("pool-fit-other");
    let warming = pool_member(&fp, 0, PoolStatus::Warming);
    let other_hash = PoolMember {
        spec_hash: SpecHash::from_stored("fedcba9876543210fedcba98"),
        ..pool_member(&fp, 1, PoolStatus::Ready)
    };
    let other_build = pool_member(&other_fp, 2, PoolStatus::Ready);
    let younger = pool_member(&fp, 20, PoolStatus::Ready);
    let older = pool_member(&fp, 10, PoolStatus::Ready);
    for m in [&warming, &other_hash, &other_build, &younger, &older] {
        add_member(store, m).await?;
    }

    for (expected, name) in [(&older, "pool-fit-a"), (&younger, "pool-fit-b")] {
        let new = new_session(&fresh_chat(name), at(100));
        let claimed = claim(store, &fp, &new).await?;
        check_eq!(
            claimed.as_ref().map(|s| s.id),
            Some(expected.session_id),
            "the member claimed for {name}"
        );
    }
    let chat = fresh_chat("pool-fit-none");
    check_eq!(
        claim(store, &fp, &new_session(&chat, at(100))).await?,
        None,
        "a claim with only unfit members left"
    );
    check_eq!(
        active(store, &chat).await?,
        None,
        "the active session of a chat that claimed nothing"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![warming, other_hash],
        "the unfit members of this fingerprint"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &other_fp),
        vec![other_build],
        "the member of the other fingerprint"
    );
    Ok(())
}

/// The claimed member is the chat's running session: the member's session,
/// workspace and container ids, `new`'s image, spec hash, overrides, TTL
/// and times, generation 1; `new`'s own ids are not used. The member's
/// workspace is the chat's live one, made at the claim by the member's
/// session; the member leaves the pool.
///
/// # Errors
/// When the store breaks the property.
pub async fn a_claimed_member_is_the_chats_running_session(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-claimed");
    let member = pool_member(&fp, 0, PoolStatus::Ready);
    add_member(store, &member).await?;
    let chat = fresh_chat("pool-claimed");
    let new = new_session(&chat, at(500));
    let claimed = claim(store, &fp, &new)
        .await?
        .ok_or("a claim with a ready member returned None")?;
    let expected = expected_claimed(&member, &new, 1);
    check_eq!(claimed, expected, "the claimed session as returned");
    check_eq!(
        get(store, &member.session_id).await?,
        Some(expected.clone()),
        "the claimed session as read back"
    );
    check_eq!(
        active(store, &chat).await?,
        Some(expected),
        "the chat's active session"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected_claimed_workspace(&member, &new)),
        "the chat's workspace"
    );
    check_eq!(
        mine(&listed_pool(store).await?, &fp),
        vec![],
        "the pool after the claim"
    );
    check_eq!(get(store, &new.id).await?, None, "new's own session id");
    check_eq!(
        workspace_row(store, new.workspace.id()).await?,
        None,
        "new's own workspace id"
    );
    Ok(())
}

/// A chat whose earlier sessions ended (its workspace deleted) claims its
/// next generation.
///
/// # Errors
/// When the store breaks the property.
pub async fn a_claim_counts_the_chats_generation_up(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-generation");
    let chat = fresh_chat("pool-generation");
    let s1 = create(store, &new_session(&chat, at(0))).await?;
    let s2 = store
        .begin_create(
            &next_session(&s1, at(10)),
            Some(&replacing(&s1, EndReason::ContainerGone)),
        )
        .await
        .map_err(unexpected("replace"))?;
    end_at(store, &s2, EndReason::Stopped, 20, WorkspaceFate::Delete).await?;

    let member = pool_member(&fp, 0, PoolStatus::Ready);
    add_member(store, &member).await?;
    let new = new_session(&chat, at(30));
    let claimed = claim(store, &fp, &new).await?;
    check_eq!(
        claimed,
        Some(expected_claimed(&member, &new, 3)),
        "the claim of a chat with two ended sessions"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        Some(expected_claimed_workspace(&member, &new)),
        "the chat's workspace after the claim"
    );
    Ok(())
}

/// A claim for a chat that has an active session, or a live (here
/// hibernated) workspace, is a conflict and takes nothing: the member stays
/// in the pool as it was, and the chat's sandbox is untouched.
///
/// # Errors
/// When the store breaks the property.
pub async fn a_claim_for_a_chat_with_a_sandbox_is_a_conflict(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-conflict");
    let member = pool_member(&fp, 0, PoolStatus::Ready);
    add_member(store, &member).await?;

    let busy = fresh_chat("pool-conflict-active");
    let running = create(store, &new_session(&busy, at(0))).await?;
    let asleep = fresh_chat("pool-conflict-hibernated");
    let s = create(store, &new_session(&asleep, at(0))).await?;
    end_at(store, &s, EndReason::Hibernated, 5, keep_until(1000)).await?;
    let kept = workspace_of(store, &asleep).await?;

    for chat in [&busy, &asleep] {
        let new = new_session(chat, at(10));
        match store.claim_pool_member(&pool_hash(), &fp, &new).await {
            Err(StoreError::Conflict(_)) => {}
            other => {
                return Err(format!(
                    "a claim for {chat}: expected Conflict, got {other:?}"
                ));
            }
        }
        check_eq!(
            mine(&listed_pool(store).await?, &fp),
            vec![member.clone()],
            "the pool after a refused claim for {chat}"
        );
        check_eq!(
            get(store, &member.session_id).await?,
            None,
            "the member's session after a refused claim"
        );
    }
    check_eq!(
        active(store, &busy).await?,
        Some(running),
        "the busy chat's session"
    );
    check_eq!(
        workspace_of(store, &asleep).await?,
        kept,
        "the hibernated chat's workspace"
    );
    check_eq!(
        active(store, &asleep).await?,
        None,
        "the hibernated chat's active session"
    );
    let new = new_session(&fresh_chat("pool-conflict-free"), at(20));
    check_eq!(
        claim(store, &fp, &new).await?,
        Some(expected_claimed(&member, &new, 1)),
        "a claim for a free chat after the refusals"
    );
    Ok(())
}

/// A claim from a pool with no member (none ever, or the last one
/// removed) is `None` and stores nothing.
///
/// # Errors
/// When the store breaks the property.
pub async fn a_claim_from_an_empty_pool_is_none(store: &dyn SessionStore) -> Outcome {
    let fp = fresh_fingerprint("pool-empty");
    let chat = fresh_chat("pool-empty");
    check_eq!(
        claim(store, &fp, &new_session(&chat, at(0))).await?,
        None,
        "a claim from an empty pool"
    );
    let member = pool_member(&fp, 0, PoolStatus::Ready);
    add_member(store, &member).await?;
    check!(
        remove_member(store, &member.session_id).await?,
        "remove returned false"
    );
    check_eq!(
        claim(store, &fp, &new_session(&chat, at(10))).await?,
        None,
        "a claim from an emptied pool"
    );
    check_eq!(
        active(store, &chat).await?,
        None,
        "the chat's active session"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        None,
        "the chat's workspace"
    );
    check_eq!(
        get(store, &member.session_id).await?,
        None,
        "the removed member's session"
    );
    Ok(())
}

/// Many tasks, each for its own chat, claim at once from a pool of fewer
/// ready members: exactly as many claims succeed as there were members,
/// each member goes to one chat, and the others claim nothing.
///
/// # Errors
/// When the store breaks the property.
pub async fn concurrent_claims_take_each_member_once(store: Arc<dyn SessionStore>) -> Outcome {
    let fp = fresh_fingerprint("pool-race");
    let members: Vec<_> = (0..RACERS / 2)
        .map(|i| pool_member(&fp, i64::try_from(i).unwrap_or(0), PoolStatus::Ready))
        .collect();
    for m in &members {
        add_member(store.as_ref(), m).await?;
    }
    let news: Vec<_> = (0..RACERS)
        .map(|_| new_session(&fresh_chat("pool-race"), at(100)))
        .collect();
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = news
        .iter()
        .cloned()
        .map(|new| {
            let (store, start, fp) = (Arc::clone(&store), Arc::clone(&start), fp.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.claim_pool_member(&pool_hash(), &fp, &new).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for (task, new) in tasks.into_iter().zip(&news) {
        let claimed = task
            .await
            .map_err(|e| format!("a racing task failed: {e}"))?
            .map_err(unexpected("claim_pool_member"))?;
        match claimed {
            Some(session) => won.push((new, session)),
            None => {
                check_eq!(
                    active(store.as_ref(), &new.chat_id).await?,
                    None,
                    "the active session of a chat that claimed nothing"
                );
            }
        }
    }
    check_eq!(won.len(), members.len(), "claims that took a member");
    let taken: HashSet<SessionId> = won.iter().map(|(_, s)| s.id).collect();
    let offered: HashSet<SessionId> = members.iter().map(|m| m.session_id).collect();
    check_eq!(taken, offered, "the members taken (each once)");
    for (new, session) in &won {
        let member = members
            .iter()
            .find(|m| m.session_id == session.id)
            .ok_or("a claim took no member of the pool")?;
        check_eq!(
            session,
            &expected_claimed(member, new, 1),
            "a claimed session"
        );
        check_eq!(
            active(store.as_ref(), &new.chat_id).await?,
            Some(session.clone()),
            "a winning chat's active session"
        );
    }
    check_eq!(
        mine(&listed_pool(store.as_ref()).await?, &fp),
        vec![],
        "the pool after the race"
    );
    Ok(())
}

/// The members of `fingerprint`, in the order listed.
fn mine(listed: &[PoolMember], fingerprint: &str) -> Vec<PoolMember> {
    listed
        .iter()
        .filter(|m| m.fingerprint == fingerprint)
        .cloned()
        .collect()
}
