//! The one reaper: on every SIGCHLD it collects all exited children with
//! `wait(-1, WNOHANG)`, hands the status of a command the agent spawned to
//! that command's waiter, and just reaps the rest (orphans reparented to
//! PID 1 or to us as subreaper).
//!
//! Spawning and reaping take the same lock. A child that exits at once is
//! then never reaped before its waiter is registered, and std's `spawn`,
//! which itself waits for a child whose exec failed, never finds that child
//! already taken (it panics on ECHILD). This is also why nothing here uses
//! `tokio::process`: its own reaping would race the `wait(-1)` loop.

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Instant;

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions, WaitStatus};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Mutex, oneshot};

/// How a spawned command ended, and when the reaper saw it.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: WaitStatus,
    pub at: Instant,
}

impl Exit {
    /// The code a shell would report: the exit code, or 128 + the signal.
    pub fn code(&self) -> i64 {
        match (self.status.exit_status(), self.status.terminating_signal()) {
            (Some(code), _) => i64::from(code),
            (None, Some(signal)) => 128 + i64::from(signal),
            (None, None) => -1,
        }
    }
}

type Waiters = HashMap<i32, oneshot::Sender<Exit>>;

pub struct Reaper {
    waiters: Mutex<Waiters>,
}

impl Reaper {
    /// Listens for SIGCHLD before anything is spawned (so no exit is
    /// missed), reaps whatever is already waiting, and keeps reaping in a
    /// task for the life of the runtime.
    pub fn start() -> io::Result<Arc<Self>> {
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Arc::new(Self {
            waiters: Mutex::new(HashMap::new()),
        });
        let task = Arc::clone(&reaper);
        tokio::spawn(async move {
            loop {
                task.reap_all().await;
                // Signals coalesce; the loop above takes every zombie.
                if sigchld.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok(reaper)
    }

    /// Spawns `command` and registers its waiter, under the reaper's lock.
    /// Blocks (fork and exec): call it from a blocking thread.
    pub fn spawn(
        &self,
        command: &mut Command,
    ) -> io::Result<(Child, oneshot::Receiver<Exit>, Instant)> {
        let mut waiters = self.waiters.blocking_lock();
        let started = Instant::now();
        let child = command.spawn()?;
        let (tx, rx) = oneshot::channel();
        waiters.insert(Pid::from_child(&child).as_raw_pid(), tx);
        Ok((child, rx, started))
    }

    async fn reap_all(&self) {
        let mut waiters = self.waiters.lock().await;
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    let exit = Exit {
                        status,
                        at: Instant::now(),
                    };
                    if let Some(waiter) = waiters.remove(&pid.as_raw_pid()) {
                        // The command's request may be gone; nothing to do.
                        let _ = waiter.send(exit);
                    }
                }
                Ok(None) | Err(Errno::CHILD) => return,
                Err(Errno::INTR) => {}
                Err(e) => {
                    eprintln!("sandboxer-agent: wait failed: {e}");
                    return;
                }
            }
        }
    }
}
