//! Contract properties under concurrency: racing creates and replaces, one
//! winner each.

use std::sync::Arc;

use crate::domain::{EndReason, NewSession, Session, SessionStatus};
use crate::port::store::{Replacing, SessionStore, StoreError};

use super::support::*;
use super::{Outcome, RACERS};

/// Many tasks create a session for one chat at once: exactly one wins,
/// every other one gets `Conflict`, and only the winner and its workspace
/// are stored.
///
/// # Errors
/// When the store breaks the property.
pub async fn concurrent_creates_for_one_chat_one_wins(store: Arc<dyn SessionStore>) -> Outcome {
    let chat = fresh_chat("race");
    let news: Vec<_> = (0..RACERS).map(|_| new_session(&chat, at(0))).collect();
    let results = race(&store, news.iter().cloned().map(|n| (n, None))).await?;
    let winner = one_winner(&results)?;
    check_eq!(winner.generation, 1, "the winner's generation");
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(winner.clone()),
        "active session after the race"
    );
    for new in news.iter().filter(|n| n.id != winner.id) {
        check_eq!(
            get(store.as_ref(), &new.id).await?,
            None,
            "a losing session was stored"
        );
    }
    let won = news
        .iter()
        .find(|n| n.id == winner.id)
        .ok_or("the winner is none of the racers")?;
    check_eq!(
        workspace_of(store.as_ref(), &chat).await?,
        Some(expected_fresh_workspace(won)),
        "the chat's workspace after the race"
    );
    Ok(())
}

/// Many tasks replace the same session at once: the generation CAS lets
/// exactly one through.
///
/// # Errors
/// When the store breaks the property.
pub async fn concurrent_replaces_one_wins(store: Arc<dyn SessionStore>) -> Outcome {
    let chat = fresh_chat("replace-race");
    let first = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    let old = replacing(&first, EndReason::Expired);
    let news: Vec<_> = (0..RACERS).map(|_| next_session(&first, at(10))).collect();
    let results = race(&store, news.iter().cloned().map(|n| (n, Some(old.clone())))).await?;
    let winner = one_winner(&results)?;
    check_eq!(winner.generation, 2, "the winner's generation");
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(winner.clone()),
        "active session after the race"
    );
    let ended = get(store.as_ref(), &first.id)
        .await?
        .ok_or("the replaced session vanished")?;
    check_eq!(
        ended.status,
        SessionStatus::Ended,
        "the replaced session's status"
    );
    Ok(())
}

/// Runs each `begin_create` in its own task, all released together.
pub(super) async fn race(
    store: &Arc<dyn SessionStore>,
    calls: impl Iterator<Item = (NewSession, Option<Replacing>)>,
) -> Result<Vec<Result<Session, StoreError>>, String> {
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = calls
        .map(|(new, old)| {
            let store = Arc::clone(store);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                store.begin_create(&new, old.as_ref()).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(
            task.await
                .map_err(|e| format!("a racing task failed: {e}"))?,
        );
    }
    Ok(results)
}

pub(super) fn one_winner(results: &[Result<Session, StoreError>]) -> Result<&Session, String> {
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    if let Some(other) = results.iter().find_map(|r| match r {
        Err(StoreError::Conflict(_)) | Ok(_) => None,
        Err(e) => Some(e),
    }) {
        return Err(format!("a loser got {other:?} instead of Conflict"));
    }
    match winners[..] {
        [one] => Ok(one),
        _ => Err(format!("{} of {} racers won", winners.len(), results.len())),
    }
}
