//! Live processes: started by the caller's id, kept running whatever
//! happens to the connection, their output in bounded rings with absolute
//! offsets (`ring`, `live`), stdin written at offsets (`stdin`), optionally
//! on a terminal (`pty`), spawned and supervised by `run`.
//!
//! Ended processes are remembered (state, exit code, output) for
//! `ENDED_TTL`, at most `ENDED_MAX` of them; a running one is never
//! forgotten.

mod live;
mod output;
mod pty;
mod ring;
mod run;
mod stdin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustix::process::Signal;
use sandboxer_agent_proto::{
    AgentError, ErrorKind, ProcessSpec, PtySize, ReadSpec, Reply, StdinWrite,
};
use tokio::time::Instant;

use crate::kill::{self, Markers};
use crate::reap::Reaper;
use live::Process;

const ENDED_TTL: Duration = Duration::from_secs(10 * 60);
const ENDED_MAX: usize = 64;

pub struct Processes {
    reaper: Arc<Reaper>,
    markers: Arc<Markers>,
    table: Mutex<HashMap<String, Arc<Process>>>,
    seq: AtomicU64,
}

impl Processes {
    pub fn new(reaper: Arc<Reaper>, markers: Arc<Markers>) -> Self {
        Self {
            reaper,
            markers,
            table: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Option<Arc<Process>> {
        self.table().get(id).cloned()
    }

    /// Processes running now.
    pub fn running(&self) -> u32 {
        u32::try_from(running_in(&self.table())).unwrap_or(u32::MAX)
    }

    pub async fn start(&self, spec: ProcessSpec) -> Reply {
        if spec.argv.is_empty() {
            return bad_request("an empty argv");
        }
        if spec.id.is_empty() {
            return bad_request("an empty process id");
        }
        let (process, created) = {
            let mut table = self.table();
            forget_ended(&mut table);
            if let Some(process) = table.get(&spec.id) {
                if process.spec != spec {
                    let why = format!("process id {} is taken by another command", spec.id);
                    return Reply::Error(AgentError::new(ErrorKind::Conflict, why));
                }
                (Arc::clone(process), false)
            } else {
                // Counted and inserted under one lock: concurrent starts
                // never pass the limit together.
                let running = running_in(&table);
                if running >= spec.max_running as usize {
                    let why = format!(
                        "{running} processes are running, the limit is {}",
                        spec.max_running
                    );
                    return Reply::Error(AgentError::new(ErrorKind::TooMany, why));
                }
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                let process = Process::new(spec, seq, self.markers.next());
                table.insert(process.spec.id.clone(), Arc::clone(&process));
                (process, true)
            }
        };
        if created {
            // Its own task: the spawn completes even if this request's
            // task were dropped, and others starting the same id wait on it.
            let launch = tokio::spawn(run::launch(Arc::clone(&process), Arc::clone(&self.reaper)));
            if launch.await.is_err() {
                process.refuse(126, "sandboxer-agent: the start failed\n");
            }
        }
        process.wait_spawned().await;
        let mut info = process.info();
        info.created = created;
        Reply::Process(info)
    }

    /// Every remembered process, oldest start first.
    pub fn list(&self) -> Reply {
        let mut processes: Vec<_> = {
            let mut table = self.table();
            forget_ended(&mut table);
            table.values().cloned().collect()
        };
        processes.sort_by_key(|p| (p.started_ms, p.seq));
        Reply::Processes(processes.iter().map(|p| p.info()).collect())
    }

    pub fn status(&self, id: &str) -> Reply {
        self.get(id)
            .map_or_else(|| not_found(id), |process| Reply::Process(process.info()))
    }

    pub async fn read(&self, spec: ReadSpec) -> Reply {
        match self.get(&spec.id) {
            Some(process) => process.read(&spec).await,
            None => not_found(&spec.id),
        }
    }

    pub async fn write_stdin(&self, request: StdinWrite) -> Reply {
        match self.get(&request.id) {
            Some(process) => stdin::write(&process, request).await,
            None => not_found(&request.id),
        }
    }

    /// To the process's group; nothing to do once its main process is gone.
    pub async fn signal(&self, id: &str, signal: i32) -> Reply {
        let Some(signal) = Signal::from_named_raw(signal) else {
            return bad_request(&format!("{signal} is not a signal number"));
        };
        let Some(process) = self.get(id) else {
            return not_found(id);
        };
        process.wait_spawned().await;
        if let Some(group) = process.group() {
            kill::signal_group(group, signal);
        }
        Reply::Done
    }

    /// KILL to the group, the marker sweep for what left it, then the
    /// ended process once reaped and drained.
    pub async fn kill(&self, id: &str) -> Reply {
        let Some(process) = self.get(id) else {
            return not_found(id);
        };
        process.wait_spawned().await;
        if process.is_running() {
            if let Some(group) = process.kill_requested() {
                kill::signal_group(group, Signal::KILL);
            }
            let marker = process.marker.clone();
            let _ = tokio::task::spawn_blocking(move || kill::sweep(&marker)).await;
            process.wait_ended().await;
        }
        Reply::Process(process.info())
    }

    pub async fn resize(&self, id: &str, size: PtySize) -> Reply {
        let Some(process) = self.get(id) else {
            return not_found(id);
        };
        if process.spec.pty.is_none() {
            let why = format!("process {id:?} has no terminal");
            return Reply::Error(AgentError::new(ErrorKind::Conflict, why));
        }
        process.wait_spawned().await;
        match process.pty().map(|master| master.resize(size)) {
            Some(Err(e)) => Reply::Error(AgentError::new(
                ErrorKind::Io,
                format!("cannot resize the terminal: {e}"),
            )),
            // Resized, or the process has ended.
            _ => Reply::Done,
        }
    }
}

fn running_in(table: &HashMap<String, Arc<Process>>) -> usize {
    table.values().filter(|p| p.is_running()).count()
}

/// Forgets ended processes past `ENDED_TTL`, then the oldest ended ones
/// past `ENDED_MAX`.
fn forget_ended(table: &mut HashMap<String, Arc<Process>>) {
    let now = Instant::now();
    table.retain(|_, p| {
        p.ended_at()
            .is_none_or(|at| now.saturating_duration_since(at) < ENDED_TTL)
    });
    let mut ended: Vec<_> = table
        .iter()
        .filter_map(|(id, p)| p.ended_at().map(|at| (at, id.clone())))
        .collect();
    if ended.len() > ENDED_MAX {
        ended.sort();
        for (_, id) in &ended[..ended.len() - ENDED_MAX] {
            table.remove(id);
        }
    }
}

fn not_found(id: &str) -> Reply {
    let why = format!("no process {id:?}");
    Reply::Error(AgentError::new(ErrorKind::NotFound, why))
}

fn bad_request(why: &str) -> Reply {
    Reply::Error(AgentError::new(ErrorKind::BadRequest, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(n: u64) -> Arc<Process> {
        let spec = ProcessSpec {
            // Padded: ended in the same instant, the id decides the order.
            id: format!("p{n:02}"),
            argv: vec!["true".into()],
            env: Vec::new(),
            workdir: String::new(),
            stdin: None,
            keep_stdin_open: false,
            pty: None,
            timeout_ms: 0,
            kill_grace_ms: 0,
            buffer_bytes: 16,
            max_running: 1,
        };
        let process = Process::new(spec, n, format!("m{n}"));
        process.refuse(127, "gone\n");
        process
    }

    #[test]
    fn the_oldest_ended_processes_are_forgotten_past_the_limit() {
        let mut table = HashMap::new();
        for n in 0..70 {
            let process = ended(n);
            table.insert(process.spec.id.clone(), process);
        }
        forget_ended(&mut table);
        assert_eq!(table.len(), ENDED_MAX);
        assert!((0..6).all(|n| !table.contains_key(&format!("p{n:02}"))));
        assert!((6..70).all(|n| table.contains_key(&format!("p{n:02}"))));
    }
}
