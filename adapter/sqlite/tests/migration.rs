//! A database of the release before workspaces (migrations 0001 and 0002
//! only, with sessions in it) opened by this build: every session names its
//! workspace, the session's own id (that release named each session's
//! volume after the session), each active session's workspace is live, the
//! indexes of 0001 are all still there, and the store works on from there.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::DateTime;
use sandboxer_core::domain::{
    ChatId, ContainerId, EndReason, Session, SessionId, SessionStatus, SpecHash, SpecOverrides,
    Workspace, WorkspaceFate, WorkspaceId, WorkspaceStatus,
};
use sandboxer_core::port::{Replacing, SessionStore};
use sandboxer_core::testing::store_contract::{at, keep_until, new_session, next_session};
use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The schema version the release before workspaces shipped.
const BEFORE_WORKSPACES: i64 = 2;

const INSERT_OLD_SESSION: &str = "INSERT INTO sessions (id, chat_id, container_id, image, \
     spec_hash, generation, idle_ttl_ms, created_at, last_used_at, expires_at, status, \
     end_reason, ended_at) VALUES (?1, ?2, ?3, 'img:1', 'hash', ?4, 1800000, ?5, ?5, ?5 + 1800000, \
     ?6, ?7, ?8)";

/// A session row as the release before wrote it.
struct OldRow {
    id: SessionId,
    chat: &'static str,
    container: Option<&'static str>,
    generation: i64,
    created_ms: i64,
    status: &'static str,
    ended: Option<(&'static str, i64)>,
}

impl OldRow {
    fn new(chat: &'static str, generation: i64, created_ms: i64, status: &'static str) -> Self {
        Self {
            id: SessionId::new(),
            chat,
            container: (status != "creating").then_some("c-old"),
            generation,
            created_ms,
            status,
            ended: None,
        }
    }

    fn ended(self, reason: &'static str, at_ms: i64) -> Self {
        Self {
            ended: Some((reason, at_ms)),
            ..self
        }
    }
}

async fn old_database(path: &Path, rows: &[OldRow]) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    MIGRATOR.run_to(BEFORE_WORKSPACES, &mut conn).await.unwrap();
    for row in rows {
        sqlx::query(INSERT_OLD_SESSION)
            .bind(row.id.to_string())
            .bind(row.chat)
            .bind(row.container)
            .bind(row.generation)
            .bind(row.created_ms)
            .bind(row.status)
            .bind(row.ended.map(|(reason, _)| reason))
            .bind(row.ended.map(|(_, at)| at))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn
}

/// Name and SQL of every index on `sessions`.
async fn session_indexes(conn: &mut SqliteConnection) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT name, sql FROM sqlite_schema \
         WHERE type = 'index' AND tbl_name = 'sessions' AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

fn ms(at: i64) -> chrono::DateTime<chrono::Utc> {
    DateTime::from_timestamp_millis(at).unwrap()
}

fn legacy_workspace(row: &OldRow) -> Workspace {
    Workspace {
        id: WorkspaceId::of_legacy_session(row.id),
        chat_id: ChatId::parse(row.chat).unwrap(),
        created_at: ms(row.created_ms),
        created_by: row.id,
        status: WorkspaceStatus::Live,
        hibernated_at: None,
        retained_until: None,
    }
}

#[tokio::test]
async fn a_database_from_before_workspaces_is_migrated_with_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    let rows = [
        OldRow::new("chat-a", 1, 1_000, "ended").ended("expired", 5_000),
        OldRow::new("chat-a", 2, 6_000, "running"),
        OldRow::new("chat-b", 1, 7_000, "creating"),
        OldRow::new("chat-c", 1, 500, "ended").ended("create_failed", 600),
    ];
    let [a1, a2, b1, c1] = &rows;
    let mut old = old_database(&path, &rows).await;
    let old_indexes = session_indexes(&mut old).await;
    assert_eq!(old_indexes.len(), 5, "{old_indexes:?}");
    drop(old);

    let store = common::open(&path).await;
    for row in &rows {
        let s = store.get(&row.id).await.unwrap().unwrap();
        assert_eq!(s.workspace_id, WorkspaceId::of_legacy_session(row.id));
    }
    // Every column came across.
    assert_eq!(
        store.get(&a1.id).await.unwrap(),
        Some(Session {
            id: a1.id,
            chat_id: ChatId::parse("chat-a").unwrap(),
            workspace_id: WorkspaceId::of_legacy_session(a1.id),
            container_id: Some(ContainerId::new("c-old")),
            image: "img:1".into(),
            spec_hash: SpecHash::from_stored("hash"),
            overrides: SpecOverrides::default(),
            generation: 1,
            idle_ttl: Duration::from_secs(1800),
            created_at: ms(1_000),
            last_used_at: ms(1_000),
            expires_at: ms(1_801_000),
            status: SessionStatus::Ended,
            end_reason: Some(EndReason::Expired),
            ended_at: Some(ms(5_000)),
        })
    );
    // Only active sessions had a volume to keep.
    assert_eq!(
        store.list_workspaces().await.unwrap(),
        vec![legacy_workspace(a2), legacy_workspace(b1)]
    );
    let chat_c = ChatId::parse(c1.chat).unwrap();
    assert_eq!(store.get_workspace(&chat_c).await.unwrap(), None);

    let mut conn = common::raw(&path).await;
    let new_indexes = session_indexes(&mut conn).await;
    for index in &old_indexes {
        assert!(new_indexes.contains(index), "{index:?} in {new_indexes:?}");
    }
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, vec![(1, true), (2, true), (3, true), (4, true)]);

    // The migrated rows carry on: a's session is replaced on its kept
    // workspace and hibernates, b's is deleted, c starts on a fresh one.
    let a2_now = store.get(&a2.id).await.unwrap().unwrap();
    let replacing = Replacing {
        session_id: a2.id,
        generation: 2,
        reason: EndReason::MaxLifetime,
    };
    let a3 = store
        .begin_create(&next_session(&a2_now, at(0)), Some(&replacing))
        .await
        .unwrap();
    assert_eq!((a3.generation, a3.workspace_id), (3, a2_now.workspace_id));
    assert!(
        store
            .end(&a3.id, EndReason::Hibernated, at(1), keep_until(100))
            .await
            .unwrap()
    );
    assert!(
        store
            .end(&b1.id, EndReason::Stopped, at(1), WorkspaceFate::Delete)
            .await
            .unwrap()
    );
    let c2 = store
        .begin_create(&new_session(&chat_c, at(2)), None)
        .await
        .unwrap();
    assert_eq!(c2.generation, 2);
    assert_eq!(store.count_hibernated().await.unwrap(), 1);
    assert_eq!(store.count_active().await.unwrap(), 1);
}

#[tokio::test]
async fn an_empty_database_from_before_workspaces_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir);
    drop(old_database(&path, &[]).await);
    let store = common::open(&path).await;
    assert_eq!(store.list_workspaces().await.unwrap(), vec![]);
    assert_eq!(store.count_active().await.unwrap(), 0);
}
