//! The warm pool against fakes: refill, claims (env applied, timestamps
//! at the claim), misses, a dead member skipped, recycling past the
//! maximum age, reconciliation leaving members alone, and concurrent
//! claims that never share a member.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sandboxer_core::domain::{ExecRequest, PoolStatus, SpecOverrides};
use sandboxer_core::port::SessionStore;
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::usecase::{
    CreateResult, DEFAULT_POOL_MAX_AGE, PoolUse, ReconcileMode, SpecChoice,
};
use support::{World, chat};

async fn ready(w: &World) -> Vec<sandboxer_core::domain::PoolMember> {
    w.store
        .list_pool()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.status == PoolStatus::Ready)
        .collect()
}

#[tokio::test]
async fn a_refill_fills_the_pool_and_a_new_chat_claims_a_member() {
    let w = World::with_pool(2);
    let report = w.pool.refill().await.unwrap();
    assert_eq!((report.made, report.ready), (2, 2));
    assert_eq!(w.runtime.containers().len(), 2);
    // Members are no chat's: not listed, no workspace row.
    assert!(w.query.list_active().await.unwrap().is_empty());
    assert!(w.store.workspaces().is_empty());
    let members = ready(&w).await;

    w.clock.advance(Duration::from_secs(30));
    let c = chat("warm");
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(out.result, CreateResult::Created);
    assert_eq!(out.pool, Some(PoolUse::Hit));
    let member = members
        .iter()
        .find(|m| m.session_id == out.session.id)
        .expect("the session is a member's");
    assert_eq!(out.session.workspace_id, member.workspace_id);
    assert_eq!(out.session.container_id, member.container_id);
    // Its timestamps start at the claim.
    assert_eq!(out.session.created_at, w.clock_now());
    assert_eq!(ready(&w).await.len(), 1);
    let created = w.tracer.named(span::CREATE_SANDBOX);
    assert_eq!(created.last().unwrap().str(key::POOL), Some("hit"));
    let claim = w.tracer.one(span::POOL_CLAIM);
    assert_eq!(claim.int(key::POOL_TARGET), Some(2));

    w.pool.refill().await.unwrap();
    assert_eq!(ready(&w).await.len(), 2);
}

#[tokio::test]
async fn the_chats_env_is_applied_at_the_claim_and_another_image_misses() {
    let w = World::with_pool(1);
    w.runtime.use_userland();
    w.pool.refill().await.unwrap();
    let c = chat("env");
    let mut input = World::declared(&c);
    input.spec = SpecChoice::Declared(SpecOverrides {
        env: [("GREETING".to_owned(), "hi".to_owned())].into(),
        ..SpecOverrides::default()
    });
    let out = w.create.execute(input).await.unwrap();
    assert_eq!(out.pool, Some(PoolUse::Hit));
    let ran = w
        .exec
        .execute(&c, &ExecRequest::new(vec!["env".into()]).unwrap())
        .await
        .unwrap();
    let env = String::from_utf8(ran.outcome.stdout).unwrap();
    assert!(env.contains("GREETING=hi"), "{env}");

    w.pool.refill().await.unwrap();
    let other = chat("other-image");
    let mut input = World::declared(&other);
    input.spec = SpecChoice::Declared(SpecOverrides {
        image: Some("another:image".into()),
        ..SpecOverrides::default()
    });
    let out = w.create.execute(input).await.unwrap();
    assert_eq!(out.pool, Some(PoolUse::Miss));
    assert_eq!(ready(&w).await.len(), 1, "the member stays for the next");
}

#[tokio::test]
async fn a_dead_member_is_never_handed_out() {
    let w = World::with_pool(2);
    w.pool.refill().await.unwrap();
    let members = ready(&w).await;
    w.runtime.kill_container(members[0].session_id);
    for n in 0..2 {
        let out = w
            .create
            .execute(World::declared(&chat(&format!("after-{n}"))))
            .await
            .unwrap();
        assert_ne!(out.session.id, members[0].session_id);
        assert!(w.runtime.container_of(out.session.id).unwrap().running);
    }
    // The dead one was removed, workspace and all; nothing of it is left.
    assert!(w.runtime.container_of(members[0].session_id).is_none());
    assert!(w.runtime.workspace(members[0].workspace_id).is_none());
}

#[tokio::test]
async fn members_past_their_age_are_recycled() {
    let w = World::with_pool(2);
    w.pool.refill().await.unwrap();
    let old: HashSet<_> = ready(&w).await.iter().map(|m| m.session_id).collect();
    w.clock.advance(DEFAULT_POOL_MAX_AGE);
    let report = w.pool.refill().await.unwrap();
    assert_eq!((report.drained, report.made), (2, 2));
    let new: HashSet<_> = ready(&w).await.iter().map(|m| m.session_id).collect();
    assert!(old.is_disjoint(&new));
    assert_eq!(w.runtime.containers().len(), 2, "the old ones went");
}

#[tokio::test]
async fn reconciliation_leaves_members_alone() {
    let w = World::with_pool(2);
    w.pool.refill().await.unwrap();
    let report = w.reconcile.execute(ReconcileMode::Startup).await.unwrap();
    assert_eq!(report.orphans_removed, 0, "{report:?}");
    assert_eq!(ready(&w).await.len(), 2);
    assert_eq!(w.runtime.containers().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_new_chats_never_share_a_member() {
    let w = Arc::new(World::with_pool(4));
    w.pool.refill().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let w = Arc::clone(&w);
            tokio::spawn(async move {
                w.create
                    .execute(World::declared(&chat(&format!("burst-{n}"))))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut containers = HashSet::new();
    let mut hits = 0;
    for t in tasks {
        let out = t.await.unwrap();
        assert!(containers.insert(out.session.container_id.clone().unwrap()));
        if out.pool == Some(PoolUse::Hit) {
            hits += 1;
        }
    }
    assert_eq!(hits, 4, "each ready member went to one chat");
    assert_eq!(w.query.list_active().await.unwrap().len(), 20);
}

#[tokio::test]
async fn a_member_cut_while_warming_by_a_crash_goes_at_startup() {
    let w = World::with_pool(2);
    w.pool.refill().await.unwrap();
    let mut cut = ready(&w).await[0].clone();
    // As a kill -9 between the row and `ready` leaves it.
    w.store.remove_pool_member(&cut.session_id).await.unwrap();
    cut.status = PoolStatus::Warming;
    w.store.add_pool_member(&cut).await.unwrap();
    // A running refill leaves it to its maker (within the warming timeout).
    let report = w.pool.refill().await.unwrap();
    assert_eq!((report.drained, report.ready), (0, 1));
    let report = w.pool.refill_at_startup().await.unwrap();
    assert_eq!((report.drained, report.made, report.ready), (1, 1, 2));
    assert!(w.runtime.container_of(cut.session_id).is_none());
    assert!(w.runtime.workspace(cut.workspace_id).is_none());
}

#[tokio::test]
async fn a_smaller_pool_drains_the_excess_and_no_pool_costs_nothing() {
    let big = World::with_pool(3);
    big.pool.refill().await.unwrap();
    // The same store and runtime under a service started with a pool of 1.
    let small = big.with_pool_size(1);
    let report = small.pool.refill().await.unwrap();
    assert_eq!((report.drained, report.ready), (2, 1));
    assert_eq!(big.runtime.containers().len(), 1);

    let none = World::with_pool(0);
    assert_eq!(
        none.pool.refill().await.unwrap(),
        sandboxer_core::usecase::RefillReport::default()
    );
    assert_eq!(
        none.runtime
            .calls(sandboxer_core::testing::RuntimeOp::Fingerprint),
        0
    );
}
