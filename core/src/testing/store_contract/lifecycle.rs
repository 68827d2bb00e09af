//! Contract properties of a session's life after create: touch, end, the
//! listings and `get`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::domain::{ContainerId, EndReason, Session, SessionId, SessionStatus, WorkspaceFate};
use crate::port::store::{SessionStore, Touch};

use super::Outcome;
use super::support::*;

/// The store answers.
///
/// # Errors
/// When `ping` fails.
pub async fn ping_answers(store: &dyn SessionStore) -> Outcome {
    store.ping().await.map_err(unexpected("ping"))
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
            .end(&s1.id, EndReason::Stopped, at(200), WorkspaceFate::Delete)
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
            .end(&s1.id, EndReason::Expired, at(400), keep_until(500))
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
            .end(&unknown, EndReason::Stopped, at(400), WorkspaceFate::Delete)
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

/// Ending twice keeps the first reason, time and workspace fate and
/// answers `false`.
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
            .end(&s1.id, EndReason::ContainerGone, at(10), keep_until(1000))
            .await
            .map_err(unexpected("end"))?,
        "first end returned false"
    );
    let first = get(store, &s1.id).await?;
    let kept = workspace_of(store, &chat).await?;
    check!(
        !store
            .end(&s1.id, EndReason::Stopped, at(20), WorkspaceFate::Delete)
            .await
            .map_err(unexpected("end"))?,
        "second end returned true"
    );
    check_eq!(
        get(store, &s1.id).await?,
        first,
        "second end changed the row"
    );
    check_eq!(
        workspace_of(store, &chat).await?,
        kept,
        "second end changed the workspace"
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
        .end(&gone.id, EndReason::Stopped, at(6), WorkspaceFate::Delete)
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
        .end(
            &mine[3].id,
            EndReason::Stopped,
            at(40),
            WorkspaceFate::Delete,
        )
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
        .end(&s1.id, EndReason::Stopped, at(33), WorkspaceFate::Delete)
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
