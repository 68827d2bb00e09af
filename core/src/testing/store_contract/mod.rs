//! The contract every `SessionStore` keeps, written against the port only:
//! the in-memory fake and each real adapter run the same properties.
//!
//! Each property is a public function that returns `Err(what was seen)`
//! when the store breaks it. Properties use fresh, random chat ids (and
//! warm pool fingerprints), so they can share one store; `run_all` runs
//! them in turn and names the one that failed. Times are whole milliseconds, the finest a store has to keep.

use std::sync::Arc;

use crate::port::store::SessionStore;

/// What a property returns: `Err` says what the store did wrong.
pub type Outcome = Result<(), String>;

/// How many tasks race in the concurrency properties.
pub const RACERS: usize = 16;

mod create;
mod hibernation;
mod lifecycle;
mod pool;
mod races;
mod retention;
mod support;
mod workspaces;

pub use create::*;
pub use hibernation::*;
pub use lifecycle::*;
pub use pool::*;
pub use races::*;
pub use retention::*;
pub use support::{
    at, expected_claimed, expected_claimed_workspace, expected_creating, expected_fresh_workspace,
    fresh_chat, fresh_fingerprint, keep_until, new_session, next_session, pool_hash, pool_member,
    session_on,
};
pub use workspaces::*;

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
    concurrent_replaces_one_wins(Arc::clone(&store))
        .await
        .map_err(named("concurrent_replaces_one_wins"))?;
    run_workspaces(Arc::clone(&store)).await?;
    run_pool(store).await
}

/// The workspace properties of `run_all`.
async fn run_workspaces(store: Arc<dyn SessionStore>) -> Outcome {
    let s = store.as_ref();
    let named = |name: &'static str| move |why: String| format!("{name}: {why}");
    fresh_workspace_is_live_for_its_chat(s)
        .await
        .map_err(named("fresh_workspace_is_live_for_its_chat"))?;
    a_second_live_workspace_is_a_conflict(s)
        .await
        .map_err(named("a_second_live_workspace_is_a_conflict"))?;
    kept_workspace_must_be_the_chats_live_one(s)
        .await
        .map_err(named("kept_workspace_must_be_the_chats_live_one"))?;
    end_with_keep_hibernates_and_a_resume_wakes_it(s)
        .await
        .map_err(named("end_with_keep_hibernates_and_a_resume_wakes_it"))?;
    end_with_delete_marks_the_workspace_deleting(s)
        .await
        .map_err(named("end_with_delete_marks_the_workspace_deleting"))?;
    retire_takes_only_hibernated_workspaces(s)
        .await
        .map_err(named("retire_takes_only_hibernated_workspaces"))?;
    forget_deletes_only_deleting_rows(s)
        .await
        .map_err(named("forget_deletes_only_deleting_rows"))?;
    count_hibernated_counts_kept_workspaces(s)
        .await
        .map_err(named("count_hibernated_counts_kept_workspaces"))?;
    get_latest_is_the_highest_generation_in_any_status(s)
        .await
        .map_err(named("get_latest_is_the_highest_generation_in_any_status"))?;
    concurrent_fresh_creates_leave_one_live_workspace(store)
        .await
        .map_err(named("concurrent_fresh_creates_leave_one_live_workspace"))?;
    Ok(())
}

/// The warm pool properties of `run_all`.
async fn run_pool(store: Arc<dyn SessionStore>) -> Outcome {
    let s = store.as_ref();
    let named = |name: &'static str| move |why: String| format!("{name}: {why}");
    pool_members_are_listed_oldest_first(s)
        .await
        .map_err(named("pool_members_are_listed_oldest_first"))?;
    mark_pool_ready_only_from_warming(s)
        .await
        .map_err(named("mark_pool_ready_only_from_warming"))?;
    remove_pool_member_is_idempotent(s)
        .await
        .map_err(named("remove_pool_member_is_idempotent"))?;
    claim_takes_the_oldest_ready_member_that_fits(s)
        .await
        .map_err(named("claim_takes_the_oldest_ready_member_that_fits"))?;
    a_claimed_member_is_the_chats_running_session(s)
        .await
        .map_err(named("a_claimed_member_is_the_chats_running_session"))?;
    a_claim_counts_the_chats_generation_up(s)
        .await
        .map_err(named("a_claim_counts_the_chats_generation_up"))?;
    a_claim_for_a_chat_with_a_sandbox_is_a_conflict(s)
        .await
        .map_err(named("a_claim_for_a_chat_with_a_sandbox_is_a_conflict"))?;
    a_claim_from_an_empty_pool_is_none(s)
        .await
        .map_err(named("a_claim_from_an_empty_pool_is_none"))?;
    concurrent_claims_take_each_member_once(store)
        .await
        .map_err(named("concurrent_claims_take_each_member_once"))?;
    Ok(())
}

/// Declares one test per property of the contract, each on a fresh store,
/// and one that runs them all on one store. `$fresh` is an expression,
/// awaited inside each test, giving `(Arc<dyn SessionStore>, guard)`; the
/// guard (a temporary directory, a throwaway database) lives as long as
/// the test. Every store's test file invokes this once, so a new property
/// runs on every store.
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn keeps_the_whole_contract_on_one_store() {
            let (store, _guard) = $fresh;
            $crate::testing::store_contract::run_all(store).await.unwrap();
        }

        $crate::store_contract_tests!(@each $fresh, as_ref;
            ping_answers,
            create_assigns_generation_one_then_replace_counts_up,
            one_active_session_per_chat,
            stale_or_ended_replacing_is_a_conflict,
            mark_running_only_from_creating,
            touch_and_end_skip_ended_sessions,
            end_is_idempotent,
            list_expired_returns_only_active_due_sessions,
            list_active_is_oldest_first_and_counted,
            get_returns_ended_sessions_with_reason,
            purge_ended_keeps_each_chats_latest,
            instance_id_is_stable,
            fresh_workspace_is_live_for_its_chat,
            a_second_live_workspace_is_a_conflict,
            kept_workspace_must_be_the_chats_live_one,
            end_with_keep_hibernates_and_a_resume_wakes_it,
            end_with_delete_marks_the_workspace_deleting,
            retire_takes_only_hibernated_workspaces,
            forget_deletes_only_deleting_rows,
            count_hibernated_counts_kept_workspaces,
            get_latest_is_the_highest_generation_in_any_status,
            pool_members_are_listed_oldest_first,
            mark_pool_ready_only_from_warming,
            remove_pool_member_is_idempotent,
            claim_takes_the_oldest_ready_member_that_fits,
            a_claimed_member_is_the_chats_running_session,
            a_claim_counts_the_chats_generation_up,
            a_claim_for_a_chat_with_a_sandbox_is_a_conflict,
            a_claim_from_an_empty_pool_is_none,
        );

        // The races take the shared store itself, to hand it to their tasks.
        $crate::store_contract_tests!(@each $fresh, clone;
            concurrent_creates_for_one_chat_one_wins,
            concurrent_fresh_creates_leave_one_live_workspace,
            concurrent_replaces_one_wins,
            concurrent_claims_take_each_member_once,
        );
    };
    (@each $fresh:expr, $pass:ident; $($name:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (store, _guard) = $fresh;
            $crate::testing::store_contract::$name(store.$pass()).await.unwrap();
        }
    )+};
}
