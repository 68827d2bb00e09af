//! The session store contract, run against the in-memory fake the use-case
//! tests rely on: the fake must keep the promises the real stores keep.

use std::sync::Arc;

use sandboxer_core::port::SessionStore;
use sandboxer_core::testing::{MemoryStore, store_contract};

fn fresh() -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn memory_store_keeps_the_whole_contract_on_one_store() {
    store_contract::run_all(fresh()).await.unwrap();
}

macro_rules! property {
    ($($name:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            store_contract::$name(fresh().as_ref()).await.unwrap();
        }
    )+};
}

property!(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fresh_creates_leave_one_live_workspace() {
    store_contract::concurrent_fresh_creates_leave_one_live_workspace(fresh())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_for_one_chat_one_wins() {
    store_contract::concurrent_creates_for_one_chat_one_wins(fresh())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replaces_one_wins() {
    store_contract::concurrent_replaces_one_wins(fresh())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_take_each_member_once() {
    store_contract::concurrent_claims_take_each_member_once(fresh())
        .await
        .unwrap();
}
