//! WAL checkpoints off the request path. SQLite's automatic checkpoint runs
//! inside whichever commit crosses its threshold and fsyncs the database
//! file there: milliseconds added to an ordinary `touch`. A background task
//! on its own connection (its own thread) checkpoints instead, passively,
//! so writers never wait for it; SQLite's own stays as a distant safety net
//! for the case this task falls behind.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `PRAGMA wal_autocheckpoint` (pages) while the background task runs:
/// about 40 MiB of WAL, far above what one interval of writes adds.
pub(crate) const SAFETY_NET_PAGES: u32 = 10_000;

pub(crate) struct Checkpointer {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing every `every`.
    ///
    /// # Errors
    /// When its connection cannot be opened.
    pub(crate) async fn start(
        connect: &SqliteConnectOptions,
        every: Duration,
    ) -> Result<Self, sqlx::Error> {
        let mut conn = connect.connect().await?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => checkpoint(&mut conn).await,
                }
            }
            let _ = conn.close().await;
        });
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops the task and closes its connection.
    pub(crate) async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// PASSIVE copies what it can without waiting for readers or writers.
/// A failure is left for the next tick (or SQLite's safety net): there is
/// no caller to report it to, and a busy checkpoint is harmless.
async fn checkpoint(conn: &mut SqliteConnection) {
    let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(conn)
        .await;
}
