//! Uses of a sandbox close together are recorded once: a reuse or exec
//! within a second of the last recorded use, with the same TTL, writes
//! nothing, and the expiry a reader sees is never more than that behind.

mod support;

use std::time::Duration;

use sandboxer_core::domain::{ExecRequest, rfc3339};
use sandboxer_core::port::SessionStore;
use sandboxer_core::testing::{RuntimeOp, StoreOp};
use sandboxer_core::trace::attr::{key, span};
use sandboxer_core::usecase::{CreateResult, CreateSandboxInput, SpecChoice, USE_COALESCE};
use support::{TTL, World, chat};

#[tokio::test]
async fn a_reuse_within_the_coalescing_window_writes_nothing() {
    let w = World::new();
    let c = chat("coalesce");
    let first = w.create.execute(World::declared(&c)).await.unwrap().session;
    let touches = w.store.calls(StoreOp::Touch);
    w.clock.advance(USE_COALESCE - Duration::from_millis(1));
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(out.result, CreateResult::Reused);
    assert_eq!(w.store.calls(StoreOp::Touch), touches, "no write");
    assert_eq!(out.session, first, "the stored row, as it is");
    assert_eq!(w.runtime.calls(RuntimeOp::Create), 1);
    assert_eq!(w.active(), vec![first.clone()]);
    // What a reader sees trails the latest use by less than the window, and
    // the span says what the store holds.
    let stored = w.store.get(&first.id).await.unwrap().unwrap();
    let behind = (w.clock_now() + TTL - stored.expires_at).to_std().unwrap();
    assert!(behind < USE_COALESCE, "{behind:?}");
    let reuse = w.tracer.named(span::CREATE_SANDBOX).pop().unwrap();
    assert_eq!(reuse.str(key::RESULT), Some("reused"));
    assert_eq!(
        reuse.str(key::EXPIRES_AT),
        Some(rfc3339(stored.expires_at).as_str())
    );
}

#[tokio::test]
async fn a_reuse_past_the_window_or_with_a_new_ttl_writes() {
    let w = World::new();
    let c = chat("coalesce-past");
    w.create.execute(World::declared(&c)).await.unwrap();
    let touches = w.store.calls(StoreOp::Touch);
    w.clock.advance(USE_COALESCE);
    let out = w.create.execute(World::declared(&c)).await.unwrap();
    assert_eq!(w.store.calls(StoreOp::Touch), touches + 1);
    assert_eq!(out.session.last_used_at, w.clock_now());
    assert_eq!(out.session.expires_at, w.clock_now() + TTL);

    // A new TTL is never coalesced away, however soon it comes.
    let ttl = Duration::from_secs(600);
    let out = w
        .create
        .execute(CreateSandboxInput {
            ttl: Some(ttl),
            ..World::declared(&c)
        })
        .await
        .unwrap();
    assert_eq!(w.store.calls(StoreOp::Touch), touches + 2);
    assert_eq!(out.session.idle_ttl, ttl);
    assert_eq!(out.session.expires_at, w.clock_now() + ttl);
}

#[tokio::test]
async fn back_to_back_execs_write_once_per_window() {
    let w = World::new();
    let c = chat("coalesce-exec");
    let request = ExecRequest::new(vec!["true".into()]).unwrap();
    w.exec.execute(&c, &request).await.unwrap();
    let touches = w.store.calls(StoreOp::Touch);
    for _ in 0..5 {
        w.clock.advance(Duration::from_millis(100));
        w.exec.execute(&c, &request).await.unwrap();
    }
    assert_eq!(w.store.calls(StoreOp::Touch), touches, "500 ms of execs");
    w.clock.advance(USE_COALESCE);
    let session = w.exec.execute(&c, &request).await.unwrap().session;
    assert!(w.store.calls(StoreOp::Touch) > touches);
    let stored = w.store.get(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.last_used_at, w.clock_now());
    let existing = CreateSandboxInput {
        chat_id: c.clone(),
        spec: SpecChoice::Existing,
        ttl: None,
    };
    assert_eq!(
        w.create.execute(existing).await.unwrap().session.expires_at,
        w.clock_now() + TTL
    );
}
