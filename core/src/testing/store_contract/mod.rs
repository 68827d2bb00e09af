//! The contract every `SessionStore` keeps, written against the port only:
//! the in-memory fake and each real adapter run the same properties.
//!
//! Each property is a public function that returns `Err(what was seen)`
//! when the store breaks it. Properties use fresh, random chat ids, so they
//! can share one store; `run_all` runs them in turn and names the one that
//! failed. Times are whole milliseconds, the finest a store has to keep.

use std::sync::Arc;

use crate::port::store::SessionStore;

/// What a property returns: `Err` says what the store did wrong.
pub type Outcome = Result<(), String>;

/// How many tasks race in the concurrency properties.
pub const RACERS: usize = 16;

mod create;
mod lifecycle;
mod races;
mod retention;
mod support;

pub use create::*;
pub use lifecycle::*;
pub use races::*;
pub use retention::*;
pub use support::{at, expected_creating, fresh_chat, new_session};

/// Runs every property against `store`, in turn; the error names the
/// property that failed.
///
/// # Errors
/// The first broken property, with what was seen.
pub async fn run_all(store: Arc<dyn SessionStore>) -> Outcome {
    let s = store.as_ref();
    let named = |name: &'static str| move |why: String| format!("{name}: {why}");
    ping_answers(s).await.map_err(named("ping_answers"))?;
    create_assigns_generation_one_then_replace_counts_up(s)
        .await
        .map_err(named(
            "create_assigns_generation_one_then_replace_counts_up",
        ))?;
    one_active_session_per_chat(s)
        .await
        .map_err(named("one_active_session_per_chat"))?;
    stale_or_ended_replacing_is_a_conflict(s)
        .await
        .map_err(named("stale_or_ended_replacing_is_a_conflict"))?;
    mark_running_only_from_creating(s)
        .await
        .map_err(named("mark_running_only_from_creating"))?;
    touch_and_end_skip_ended_sessions(s)
        .await
        .map_err(named("touch_and_end_skip_ended_sessions"))?;
    end_is_idempotent(s)
        .await
        .map_err(named("end_is_idempotent"))?;
    list_expired_returns_only_active_due_sessions(s)
        .await
        .map_err(named("list_expired_returns_only_active_due_sessions"))?;
    list_active_is_oldest_first_and_counted(s)
        .await
        .map_err(named("list_active_is_oldest_first_and_counted"))?;
    get_returns_ended_sessions_with_reason(s)
        .await
        .map_err(named("get_returns_ended_sessions_with_reason"))?;
    concurrent_creates_for_one_chat_one_wins(Arc::clone(&store))
        .await
        .map_err(named("concurrent_creates_for_one_chat_one_wins"))?;
    instance_id_is_stable(s)
        .await
        .map_err(named("instance_id_is_stable"))?;
    purge_ended_keeps_each_chats_latest(s)
        .await
        .map_err(named("purge_ended_keeps_each_chats_latest"))?;
    concurrent_replaces_one_wins(store)
        .await
        .map_err(named("concurrent_replaces_one_wins"))?;
    Ok(())
}
