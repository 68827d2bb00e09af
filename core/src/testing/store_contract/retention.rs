//! Contract properties of what a store keeps over time: ended rows purged
//! past their retention (each chat's latest kept), and the deployment id.

use crate::domain::{EndReason, WorkspaceFate};
use crate::port::store::SessionStore;

use super::Outcome;
use super::support::*;

/// `purge_ended(before)` deletes sessions ended before `before` except each
/// chat's latest one; active and recently ended rows stay, and a chat's
/// generations keep counting up after a purge.
///
/// # Errors
/// When the store breaks the property.
pub async fn purge_ended_keeps_each_chats_latest(store: &dyn SessionStore) -> Outcome {
    let (a, b, c) = (
        fresh_chat("purge-a"),
        fresh_chat("purge-b"),
        fresh_chat("purge-c"),
    );
    // A chat's first session on a fresh workspace, a replacement on its own.
    let begin = async |chat, t, old: Option<&crate::domain::Session>, reason| {
        let replacing = old.map(|s| replacing(s, reason));
        let new = old.map_or_else(|| new_session(chat, at(t)), |s| next_session(s, at(t)));
        store
            .begin_create(&new, replacing.as_ref())
            .await
            .map_err(unexpected("begin_create"))
    };
    // Chat a: two replaced sessions (ended at 10 and 20), one active.
    let a1 = begin(&a, 0, None, EndReason::Expired).await?;
    let a2 = begin(&a, 10, Some(&a1), EndReason::Expired).await?;
    let a3 = begin(&a, 20, Some(&a2), EndReason::SpecChanged).await?;
    // Chat b: its only session ended long ago, workspace and all.
    let b1 = begin(&b, 0, None, EndReason::Expired).await?;
    store
        .end(&b1.id, EndReason::Stopped, at(5), WorkspaceFate::Delete)
        .await
        .map_err(unexpected("end"))?;
    // Chat c: replaced after the cut-off.
    let c1 = begin(&c, 0, None, EndReason::Expired).await?;
    let c2 = begin(&c, 100, Some(&c1), EndReason::Expired).await?;

    let purged = store
        .purge_ended(at(50))
        .await
        .map_err(unexpected("purge_ended"))?;
    // Other properties' rows may share the store: at least these two went.
    check!(
        purged >= 2,
        "purge_ended reported {purged} rows, expected at least 2"
    );
    for gone in [&a1, &a2] {
        check_eq!(
            get(store, &gone.id).await?,
            None,
            "{:?} after the purge",
            gone.id
        );
    }
    for kept in [&a3, &b1, &c1, &c2] {
        check!(get(store, &kept.id).await?.is_some(), "{:?} went", kept.id);
    }
    store
        .purge_ended(at(50))
        .await
        .map_err(unexpected("purge_ended"))?;
    check!(
        get(store, &b1.id).await?.is_some(),
        "b's latest went on a second purge"
    );
    let b2 = begin(&b, 60, None, EndReason::Expired).await?;
    check_eq!(b2.generation, 2, "b's generation after a purge");
    let a4 = begin(&a, 60, Some(&a3), EndReason::Expired).await?;
    check_eq!(a4.generation, 4, "a's generation after a purge");
    Ok(())
}

/// `instance_id` is a non-empty label value, the same on every call.
///
/// # Errors
/// When the store breaks the property.
pub async fn instance_id_is_stable(store: &dyn SessionStore) -> Outcome {
    let first = store
        .instance_id()
        .await
        .map_err(unexpected("instance_id"))?;
    check!(
        !first.is_empty()
            && first.len() <= 63
            && first
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "instance id {first:?} is not a short label value"
    );
    let second = store
        .instance_id()
        .await
        .map_err(unexpected("instance_id"))?;
    check_eq!(second, first, "instance id on a second call");
    Ok(())
}
