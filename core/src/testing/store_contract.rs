//! The contract every `SessionStore` keeps, written against the port only:
//! the in-memory fake and each real adapter run the same properties.
//!
//! Each property is a public function that returns `Err(what was seen)`
//! when the store breaks it. Properties use fresh, random chat ids, so they
//! can share one store; `run_all` runs them in turn and names the one that
//! failed. Times are whole milliseconds, the finest a store has to keep.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;

use crate::domain::{
    ChatId, ContainerId, EndReason, NewSession, Session, SessionId, SessionStatus, SpecHash,
    SpecOverrides, Timestamp,
};
use crate::port::store::{Replacing, SessionStore, StoreError, Touch};

/// What a property returns: `Err` says what the store did wrong.
pub type Outcome = Result<(), String>;

/// How many tasks race in the concurrency properties.
pub const RACERS: usize = 16;

macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err(format!($($what)+));
        }
    };
}

macro_rules! check_eq {
    ($left:expr, $right:expr, $($what:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!("{}:\n  got      {left:?}\n  expected {right:?}", format!($($what)+)));
        }
    }};
}

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
    concurrent_replaces_one_wins(store)
        .await
        .map_err(named("concurrent_replaces_one_wins"))?;
    Ok(())
}

/// The store answers.
///
/// # Errors
/// When `ping` fails.
pub async fn ping_answers(store: &dyn SessionStore) -> Outcome {
    store.ping().await.map_err(unexpected("ping"))
}

/// A chat's first session is generation 1 and `creating`, stored as given;
/// each replacement ends the old one with its reason and counts up.
///
/// # Errors
/// When the store breaks the property.
pub async fn create_assigns_generation_one_then_replace_counts_up(
    store: &dyn SessionStore,
) -> Outcome {
    let chat = fresh_chat("generations");
    let new1 = new_session(&chat, at(0));
    let s1 = store
        .begin_create(&new1, None)
        .await
        .map_err(unexpected("first begin_create"))?;
    check_eq!(s1, expected_creating(&new1, 1), "first session as returned");
    check_eq!(
        get(store, &s1.id).await?,
        Some(s1.clone()),
        "first session as read back"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(s1.clone()),
        "active session"
    );

    let running = store
        .mark_running(&s1.id, &ContainerId::new("c-1"))
        .await
        .map_err(unexpected("mark_running"))?;
    let new2 = new_session(&chat, at(60));
    let s2 = store
        .begin_create(&new2, Some(&replacing(&running, EndReason::Expired)))
        .await
        .map_err(unexpected("replacing begin_create"))?;
    check_eq!(s2, expected_creating(&new2, 2), "replacement as returned");
    let old = get(store, &s1.id)
        .await?
        .ok_or("the replaced session vanished")?;
    check_eq!(
        old.status,
        SessionStatus::Ended,
        "replaced session's status"
    );
    check_eq!(
        old.end_reason,
        Some(EndReason::Expired),
        "replaced session's end reason"
    );
    check_eq!(
        old.ended_at,
        Some(new2.created_at),
        "replaced session ends when the new one starts"
    );
    check_eq!(
        old.container_id,
        Some(ContainerId::new("c-1")),
        "replaced session keeps its container id"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(s2.clone()),
        "active after replace"
    );

    let new3 = new_session(&chat, at(120));
    let s3 = store
        .begin_create(&new3, Some(&replacing(&s2, EndReason::SpecChanged)))
        .await
        .map_err(unexpected("second replace"))?;
    check_eq!(s3.generation, 3, "generation after two replacements");
    Ok(())
}

/// A second `begin_create` without `replacing` while the chat has an active
/// session is a conflict and changes nothing; other chats are independent.
///
/// # Errors
/// When the store breaks the property.
pub async fn one_active_session_per_chat(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("one-active");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("first begin_create"))?;
    let active_before = count(store).await?;

    let second = new_session(&chat, at(1));
    expect_conflict(
        store.begin_create(&second, None).await,
        "second create while creating",
    )?;
    check_eq!(
        get(store, &second.id).await?,
        None,
        "the refused session was stored"
    );
    check_eq!(
        get(store, &s1.id).await?,
        Some(s1.clone()),
        "the active session changed"
    );

    let running = store
        .mark_running(&s1.id, &ContainerId::new("c-1"))
        .await
        .map_err(unexpected("mark_running"))?;
    let third = new_session(&chat, at(2));
    expect_conflict(
        store.begin_create(&third, None).await,
        "second create while running",
    )?;
    check_eq!(
        get(store, &third.id).await?,
        None,
        "the refused session was stored"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        Some(running),
        "active session after refusals"
    );
    check_eq!(
        count(store).await?,
        active_before,
        "active count after refusals"
    );

    let other = fresh_chat("one-active-other");
    let o1 = store
        .begin_create(&new_session(&other, at(3)), None)
        .await
        .map_err(unexpected("another chat's begin_create"))?;
    check_eq!(o1.generation, 1, "another chat counts its own generations");
    Ok(())
}

/// Replacing with a stale generation, an ended session, or another chat's
/// session is a conflict and changes nothing.
///
/// # Errors
/// When the store breaks the property.
pub async fn stale_or_ended_replacing_is_a_conflict(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("stale");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("first begin_create"))?;
    let s2 = store
        .begin_create(
            &new_session(&chat, at(10)),
            Some(&replacing(&s1, EndReason::Expired)),
        )
        .await
        .map_err(unexpected("replace"))?;
    let s1_ended = get(store, &s1.id).await?;

    // The caller read s1, someone else replaced it meanwhile.
    let late = new_session(&chat, at(20));
    expect_conflict(
        store
            .begin_create(&late, Some(&replacing(&s1, EndReason::ContainerGone)))
            .await,
        "replacing an already replaced session",
    )?;
    // The right session at the wrong generation.
    let wrong_gen = Replacing {
        generation: 1,
        ..replacing(&s2, EndReason::Expired)
    };
    expect_conflict(
        store.begin_create(&late, Some(&wrong_gen)).await,
        "replacing at a stale generation",
    )?;
    check_eq!(
        get(store, &late.id).await?,
        None,
        "a refused session was stored"
    );
    check_eq!(
        get(store, &s2.id).await?,
        Some(s2.clone()),
        "the active session changed"
    );
    check_eq!(
        get(store, &s1.id).await?,
        s1_ended,
        "the ended session changed"
    );

    // Another chat's active session.
    let other = fresh_chat("stale-other");
    let o1 = store
        .begin_create(&new_session(&other, at(25)), None)
        .await
        .map_err(unexpected("another chat's begin_create"))?;
    let foreign = new_session(&chat, at(26));
    expect_conflict(
        store
            .begin_create(&foreign, Some(&replacing(&o1, EndReason::Stopped)))
            .await,
        "replacing another chat's session",
    )?;
    check_eq!(
        get(store, &o1.id).await?,
        Some(o1),
        "the other chat's session changed"
    );
    check_eq!(
        get(store, &foreign.id).await?,
        None,
        "a refused session was stored"
    );

    // An ended session: the chat has no active one, yet the CAS still fails.
    check!(
        store
            .end(&s2.id, EndReason::Stopped, at(30))
            .await
            .map_err(unexpected("end"))?,
        "end of the active session returned false"
    );
    let s2_ended = get(store, &s2.id).await?;
    let after_end = new_session(&chat, at(40));
    expect_conflict(
        store
            .begin_create(&after_end, Some(&replacing(&s2, EndReason::Expired)))
            .await,
        "replacing an ended session",
    )?;
    check_eq!(
        get(store, &after_end.id).await?,
        None,
        "a refused session was stored"
    );
    check_eq!(
        get(store, &s2.id).await?,
        s2_ended,
        "the ended session changed"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        None,
        "an active session appeared"
    );
    Ok(())
}

/// `mark_running` moves `creating` to `running` with the container id, and
/// is `NotFound` from any other status or for an unknown id.
///
/// # Errors
/// When the store breaks the property.
pub async fn mark_running_only_from_creating(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("running");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    let container = ContainerId::new("c-running");
    let running = store
        .mark_running(&s1.id, &container)
        .await
        .map_err(unexpected("mark_running"))?;
    let expected = Session {
        status: SessionStatus::Running,
        container_id: Some(container.clone()),
        ..s1.clone()
    };
    check_eq!(running, expected, "running session as returned");
    check_eq!(
        get(store, &s1.id).await?,
        Some(expected.clone()),
        "running session as read back"
    );

    let again = store
        .mark_running(&s1.id, &ContainerId::new("c-other"))
        .await;
    check!(
        matches!(again, Err(StoreError::NotFound(id)) if id == s1.id),
        "mark_running of a running session gave {again:?}"
    );
    check_eq!(
        get(store, &s1.id).await?,
        Some(expected),
        "a second mark_running changed the row"
    );

    let unknown = SessionId::new();
    let r = store.mark_running(&unknown, &container).await;
    check!(
        matches!(r, Err(StoreError::NotFound(id)) if id == unknown),
        "mark_running of an unknown id gave {r:?}"
    );

    let chat2 = fresh_chat("running-ended");
    let c = store
        .begin_create(&new_session(&chat2, at(5)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    store
        .end(&c.id, EndReason::CreateFailed, at(6))
        .await
        .map_err(unexpected("end"))?;
    let r = store.mark_running(&c.id, &container).await;
    check!(
        matches!(r, Err(StoreError::NotFound(_))),
        "mark_running of an ended session gave {r:?}"
    );
    let row = get(store, &c.id)
        .await?
        .ok_or("the ended session vanished")?;
    check_eq!(
        (row.status, row.container_id),
        (SessionStatus::Ended, None),
        "ended session after a refused mark_running"
    );
    Ok(())
}

/// `touch` moves an active session's times and TTL; on an ended or unknown
/// session it returns `None` and changes nothing, and `end` returns `false`.
///
/// # Errors
/// When the store breaks the property.
pub async fn touch_and_end_skip_ended_sessions(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("touch");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    let use1 = Touch {
        last_used_at: at(100),
        expires_at: at(100 + 900),
        idle_ttl: Duration::from_secs(900),
    };
    let touched = store
        .touch(&s1.id, use1)
        .await
        .map_err(unexpected("touch"))?;
    let expected = Session {
        last_used_at: use1.last_used_at,
        expires_at: use1.expires_at,
        idle_ttl: use1.idle_ttl,
        ..s1.clone()
    };
    check_eq!(
        touched,
        Some(expected.clone()),
        "touched session as returned"
    );
    check_eq!(
        get(store, &s1.id).await?,
        Some(expected),
        "touched session as read back"
    );

    check!(
        store
            .end(&s1.id, EndReason::Stopped, at(200))
            .await
            .map_err(unexpected("end"))?,
        "end of an active session returned false"
    );
    let ended = get(store, &s1.id).await?;
    let late = Touch {
        last_used_at: at(300),
        expires_at: at(1300),
        idle_ttl: Duration::from_secs(1000),
    };
    check_eq!(
        store
            .touch(&s1.id, late)
            .await
            .map_err(unexpected("touch"))?,
        None,
        "touch of an ended session"
    );
    check_eq!(
        get(store, &s1.id).await?,
        ended,
        "touch changed an ended session"
    );
    check!(
        !store
            .end(&s1.id, EndReason::Expired, at(400))
            .await
            .map_err(unexpected("end"))?,
        "end of an ended session returned true"
    );

    let unknown = SessionId::new();
    check_eq!(
        store
            .touch(&unknown, late)
            .await
            .map_err(unexpected("touch"))?,
        None,
        "touch of an unknown id"
    );
    check!(
        !store
            .end(&unknown, EndReason::Stopped, at(400))
            .await
            .map_err(unexpected("end"))?,
        "end of an unknown id returned true"
    );
    check_eq!(
        get(store, &unknown).await?,
        None,
        "touch or end created a row"
    );
    Ok(())
}

/// Ending twice keeps the first reason and time and answers `false`.
///
/// # Errors
/// When the store breaks the property.
pub async fn end_is_idempotent(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("end");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    check!(
        store
            .end(&s1.id, EndReason::ContainerGone, at(10))
            .await
            .map_err(unexpected("end"))?,
        "first end returned false"
    );
    let first = get(store, &s1.id).await?;
    check!(
        !store
            .end(&s1.id, EndReason::Stopped, at(20))
            .await
            .map_err(unexpected("end"))?,
        "second end returned true"
    );
    check_eq!(
        get(store, &s1.id).await?,
        first,
        "second end changed the row"
    );
    let row = first.ok_or("the ended session vanished")?;
    check_eq!(
        (row.status, row.end_reason, row.ended_at),
        (
            SessionStatus::Ended,
            Some(EndReason::ContainerGone),
            Some(at(10))
        ),
        "ended session"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        None,
        "active session after end"
    );
    Ok(())
}

/// `list_expired(now)` returns exactly the active sessions with
/// `expires_at <= now`.
///
/// # Errors
/// When the store breaks the property.
pub async fn list_expired_returns_only_active_due_sessions(store: &dyn SessionStore) -> Outcome {
    let mut mine = BTreeSet::new();
    let mut create = async |name: &str, created: i64, ttl_secs: u64| -> Result<Session, String> {
        let chat = fresh_chat(name);
        let mut new = new_session(&chat, at(created));
        new.idle_ttl = Duration::from_secs(ttl_secs);
        new.expires_at = at(created + i64::try_from(ttl_secs).unwrap_or(i64::MAX));
        let s = store
            .begin_create(&new, None)
            .await
            .map_err(unexpected("begin_create"))?;
        mine.insert(s.id);
        Ok(s)
    };
    let due = create("expired-due", 0, 10).await?; // expires at 10
    let later = create("expired-later", 0, 20).await?; // 20
    let exact = create("expired-exact", 5, 10).await?; // 15
    let gone = create("expired-ended", 0, 5).await?; // 5, but ended
    let moved = create("expired-touched", 0, 12).await?; // 12, then touched to 100
    store
        .end(&gone.id, EndReason::Stopped, at(6))
        .await
        .map_err(unexpected("end"))?;
    store
        .touch(
            &moved.id,
            Touch {
                last_used_at: at(1),
                expires_at: at(100),
                idle_ttl: Duration::from_secs(99),
            },
        )
        .await
        .map_err(unexpected("touch"))?;

    let expired_at = async |secs: i64| -> Result<BTreeSet<SessionId>, String> {
        let all = store
            .list_expired(at(secs))
            .await
            .map_err(unexpected("list_expired"))?;
        if let Some(bad) = all
            .iter()
            .find(|s| !s.is_active() || s.expires_at > at(secs))
        {
            return Err(format!("list_expired({secs}) returned {bad:?}"));
        }
        Ok(all
            .into_iter()
            .map(|s| s.id)
            .filter(|id| mine.contains(id))
            .collect())
    };
    check_eq!(expired_at(9).await?, BTreeSet::new(), "expired at 9");
    check_eq!(
        expired_at(10).await?,
        BTreeSet::from([due.id]),
        "expired at 10 (expires_at == now counts)"
    );
    check_eq!(
        expired_at(15).await?,
        BTreeSet::from([due.id, exact.id]),
        "expired at 15"
    );
    check_eq!(
        expired_at(99).await?,
        BTreeSet::from([due.id, exact.id, later.id]),
        "expired at 99"
    );
    check_eq!(
        expired_at(100).await?,
        BTreeSet::from([due.id, exact.id, later.id, moved.id]),
        "expired at 100"
    );
    Ok(())
}

/// `list_active` returns the active sessions oldest first, without ended
/// ones; `count_active` counts them.
///
/// # Errors
/// When the store breaks the property.
pub async fn list_active_is_oldest_first_and_counted(store: &dyn SessionStore) -> Outcome {
    let before = count(store).await?;
    let mut mine = Vec::new();
    // Created out of order, so insertion order is not the answer.
    for (name, created) in [
        ("active-c", 30),
        ("active-a", 10),
        ("active-b", 20),
        ("active-ended", 5),
    ] {
        let s = store
            .begin_create(&new_session(&fresh_chat(name), at(created)), None)
            .await
            .map_err(unexpected("begin_create"))?;
        mine.push(s);
    }
    store
        .end(&mine[3].id, EndReason::Stopped, at(40))
        .await
        .map_err(unexpected("end"))?;
    let running = store
        .mark_running(&mine[0].id, &ContainerId::new("c-active"))
        .await
        .map_err(unexpected("mark_running"))?;

    let listed = store
        .list_active()
        .await
        .map_err(unexpected("list_active"))?;
    if let Some(bad) = listed.iter().find(|s| !s.is_active()) {
        return Err(format!("list_active returned an ended session {bad:?}"));
    }
    if let Some(pair) = listed
        .windows(2)
        .find(|w| w[0].created_at > w[1].created_at)
    {
        return Err(format!(
            "list_active is not oldest first: {:?} before {:?}",
            pair[0].id, pair[1].id
        ));
    }
    let ids: Vec<_> = mine.iter().map(|s| s.id).collect();
    let listed_mine: Vec<_> = listed.into_iter().filter(|s| ids.contains(&s.id)).collect();
    check_eq!(
        listed_mine,
        vec![mine[1].clone(), mine[2].clone(), running],
        "this property's active sessions"
    );
    check_eq!(
        count(store).await?,
        before + 3,
        "count_active after three creates and one end"
    );
    Ok(())
}

/// `get` finds ended sessions with their end reason and time; `get_active`
/// no longer does.
///
/// # Errors
/// When the store breaks the property.
pub async fn get_returns_ended_sessions_with_reason(store: &dyn SessionStore) -> Outcome {
    let chat = fresh_chat("get");
    let s1 = store
        .begin_create(&new_session(&chat, at(0)), None)
        .await
        .map_err(unexpected("begin_create"))?;
    let running = store
        .mark_running(&s1.id, &ContainerId::new("c-get"))
        .await
        .map_err(unexpected("mark_running"))?;
    store
        .end(&s1.id, EndReason::Stopped, at(33))
        .await
        .map_err(unexpected("end"))?;
    let expected = Session {
        status: SessionStatus::Ended,
        end_reason: Some(EndReason::Stopped),
        ended_at: Some(at(33)),
        ..running
    };
    check_eq!(
        get(store, &s1.id).await?,
        Some(expected),
        "ended session as read back"
    );
    check_eq!(
        store
            .get_active(&chat)
            .await
            .map_err(unexpected("get_active"))?,
        None,
        "get_active of a chat whose session ended"
    );
    check_eq!(
        get(store, &SessionId::new()).await?,
        None,
        "get of an unknown id"
    );
    Ok(())
}

/// Many tasks create a session for one chat at once: exactly one wins,
/// every other one gets `Conflict`, and only the winner is stored.
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
    let news: Vec<_> = (0..RACERS).map(|_| new_session(&chat, at(10))).collect();
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
async fn race(
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

fn one_winner(results: &[Result<Session, StoreError>]) -> Result<&Session, String> {
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

/// A chat id no other property (or earlier run on the same store) uses.
pub fn fresh_chat(name: &str) -> ChatId {
    ChatId::parse(&format!("contract.{name}.{}", SessionId::new()))
        .expect("contract chat ids are valid")
}

/// 2026-01-01T00:00:00Z plus `secs`.
pub fn at(secs: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs)
}

/// A new session for `chat` created at `created`, with a 30 min idle TTL.
pub fn new_session(chat: &ChatId, created: Timestamp) -> NewSession {
    let idle_ttl = Duration::from_secs(1800);
    NewSession {
        id: SessionId::new(),
        chat_id: chat.clone(),
        image: "sandboxer-base:latest".into(),
        spec_hash: SpecHash::from_stored("0123456789abcdef01234567"),
        overrides: SpecOverrides {
            image: Some("python:3".into()),
            env: [
                ("LANG".to_owned(), "C.UTF-8".to_owned()),
                ("Q".to_owned(), "a \"b\" =c".to_owned()),
            ]
            .into(),
        },
        idle_ttl,
        created_at: created,
        expires_at: created + idle_ttl,
    }
}

/// How `begin_create` must store `new` at `generation`.
pub fn expected_creating(new: &NewSession, generation: u64) -> Session {
    Session {
        id: new.id,
        chat_id: new.chat_id.clone(),
        container_id: None,
        image: new.image.clone(),
        spec_hash: new.spec_hash.clone(),
        overrides: new.overrides.clone(),
        generation,
        idle_ttl: new.idle_ttl,
        created_at: new.created_at,
        last_used_at: new.created_at,
        expires_at: new.expires_at,
        status: SessionStatus::Creating,
        end_reason: None,
        ended_at: None,
    }
}

fn replacing(session: &Session, reason: EndReason) -> Replacing {
    Replacing {
        session_id: session.id,
        generation: session.generation,
        reason,
    }
}

async fn get(store: &dyn SessionStore, id: &SessionId) -> Result<Option<Session>, String> {
    store.get(id).await.map_err(unexpected("get"))
}

async fn count(store: &dyn SessionStore) -> Result<u64, String> {
    store
        .count_active()
        .await
        .map_err(unexpected("count_active"))
}

fn expect_conflict(result: Result<Session, StoreError>, what: &str) -> Outcome {
    match result {
        Err(StoreError::Conflict(_)) => Ok(()),
        other => Err(format!("{what}: expected Conflict, got {other:?}")),
    }
}

fn unexpected(call: &'static str) -> impl Fn(StoreError) -> String {
    move |e| format!("{call} failed: {e:?}")
}
