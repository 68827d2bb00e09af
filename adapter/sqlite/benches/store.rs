//! Latency of the store's hot calls on a real file with 1000 sessions,
//! tracing off (noop tracer): `cargo bench -p sandboxer-sqlite`.
//! Prints p50 / p99 / max per call; the reuse path (`get_active` + `touch`)
//! is what every message of a chat pays.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandboxer_core::domain::{ContainerId, SessionId};
use sandboxer_core::port::{Parent, SessionStore, SpanKind, Touch, Tracer};
use sandboxer_core::testing::store_contract::{at, fresh_chat, new_session};
use sandboxer_core::trace::NoopTracer;
use sandboxer_core::trace::attr::key;
use sandboxer_sqlite::telemetry::{attr, op};
use sandboxer_sqlite::{SqliteSessionStore, SqliteStoreOptions};

// The percentiles every bench shares; this one uses part of it.
#[allow(dead_code)]
#[path = "../../../tools/bench/src/stats.rs"]
mod stats;

const ROWS: i64 = 1000;
const SAMPLES: usize = 5000;
const WARMUP: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let defaults = SqliteStoreOptions::default();
    runtime.block_on(span_overhead());
    println!("== checkpoints in the background (default)");
    runtime.block_on(run(defaults.clone()));
    println!("== checkpoints left to SQLite (checkpoint_interval: None)");
    runtime.block_on(run(SqliteStoreOptions {
        checkpoint_interval: None,
        ..defaults
    }));
}

async fn run(options: SqliteStoreOptions) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let store = SqliteSessionStore::open(path.to_str().unwrap(), options, Arc::new(NoopTracer))
        .await
        .unwrap();

    // 1000 running sessions; one in ten expires before `at(1000)`.
    let mut sessions = Vec::new();
    for i in 0..ROWS {
        let mut new = new_session(&fresh_chat("bench"), at(i));
        new.expires_at = if i % 10 == 0 { at(500) } else { at(100_000) };
        let s = store.begin_create(&new, None).await.unwrap();
        let s = store
            .mark_running(&s.id, &ContainerId::new(format!("c-{i}")))
            .await
            .unwrap();
        sessions.push(s);
    }
    println!("{} sessions in {}", ROWS, path.display());
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10}",
        "call", "p50", "p99", "p99.9", "max"
    );

    // Reads first, while the table holds exactly the 1000 rows.
    let expired = store.list_expired(at(1000)).await.unwrap().len();
    measure(&format!("list_expired ({expired} of {ROWS})"), async |_| {
        assert_eq!(store.list_expired(at(1000)).await.unwrap().len(), expired);
    })
    .await;
    measure(&format!("list_active ({ROWS})"), async |_| {
        assert_eq!(store.list_active().await.unwrap().len() as i64, ROWS);
    })
    .await;
    measure("count_active", async |_| {
        store.count_active().await.unwrap();
    })
    .await;
    let chats: Vec<_> = sessions.iter().map(|s| s.chat_id.clone()).collect();
    let ids: Vec<SessionId> = sessions.iter().map(|s| s.id).collect();
    let pick = |i: usize| i.wrapping_mul(7919) % sessions.len();
    measure("get_active", async |i| {
        assert!(store.get_active(&chats[pick(i)]).await.unwrap().is_some());
    })
    .await;
    let touch = |i: usize| Touch {
        last_used_at: at(2000 + i as i64),
        expires_at: at(100_000 + i as i64),
        idle_ttl: Duration::from_secs(1800),
    };
    measure("touch", async |i| {
        assert!(
            store
                .touch(&ids[pick(i)], touch(i))
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
    measure("reuse path: get_active + touch", async |i| {
        let s = store.get_active(&chats[pick(i)]).await.unwrap().unwrap();
        store.touch(&s.id, touch(i)).await.unwrap().unwrap();
    })
    .await;
    measure("begin_create + mark_running", async |i| {
        let new = new_session(&fresh_chat("bench-new"), at(5000));
        let s = store.begin_create(&new, None).await.unwrap();
        store
            .mark_running(&s.id, &ContainerId::new(format!("n-{i}")))
            .await
            .unwrap();
    })
    .await;
    store.close().await;
}

/// What each store call adds for its span with tracing off: the same
/// calls `telemetry::traced` makes, on the noop tracer.
async fn span_overhead() {
    let tracer: Arc<dyn Tracer> = Arc::new(NoopTracer);
    let chat = fresh_chat("span");
    let id = SessionId::new();
    let start = Instant::now();
    let n = 1_000_000u32;
    for _ in 0..n {
        let mut span = tracer.start_span(
            Cow::Borrowed(op::TOUCH.span_name),
            SpanKind::Client,
            Parent::Current,
        );
        span.set_attribute(attr::DB_SYSTEM_NAME, op::TOUCH.system.into());
        span.set_attribute(attr::DB_OPERATION_NAME, op::TOUCH.name.into());
        span.set_attribute(key::CHAT_ID, chat.to_string().into());
        span.set_attribute(key::SESSION_ID, id.to_string().into());
        span.end();
        std::hint::black_box(&span);
    }
    println!(
        "span overhead with the noop tracer: {:.0} ns per call",
        start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
    );
}

async fn measure(name: &str, mut call: impl AsyncFnMut(usize)) {
    for i in 0..WARMUP {
        call(i).await;
    }
    let mut took = stats::Samples::default();
    for i in 0..SAMPLES {
        let start = Instant::now();
        call(WARMUP + i).await;
        took.push(start.elapsed());
    }
    let pct = |p: f64| took.pct(p).expect("SAMPLES > 0");
    println!(
        "{name:<34} {:>10} {:>10} {:>10} {:>10}",
        show(pct(50.0)),
        show(pct(99.0)),
        show(pct(99.9)),
        show(took.max().expect("SAMPLES > 0"))
    );
}

fn show(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
