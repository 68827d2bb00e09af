//! Killing an exec's processes by host pid, for a local engine whose
//! runtime runs container processes as host processes (runc, crun).
//!
//! Only processes in the container's cgroup are considered, and of those
//! only the ones carrying the exec's marker in their environment or in the
//! exec's session (Docker makes each exec a session leader; its host pid
//! is the session id seen from here). Each is SIGSTOPped, round after round
//! until no new one appears, then all are SIGKILLed.

use std::collections::BTreeSet;
use std::fs;
use std::io;

use rustix::process::{Pid, Signal, kill_process};

/// Runtimes whose container processes are not host processes (gVisor,
/// Kata): their pids mean nothing here.
pub(crate) fn runs_host_processes(runtime: &str) -> bool {
    !(runtime.contains("runsc") || runtime.contains("kata") || runtime.contains("gvisor"))
}

/// Stops then kills the exec's processes; the number signalled.
pub(crate) fn kill_tree(
    container_id: &str,
    session: Option<i32>,
    marker: &str,
) -> io::Result<usize> {
    let mut stopped: BTreeSet<i32> = BTreeSet::new();
    for _ in 0..200 {
        let mut new = 0;
        for pid in pids()? {
            if stopped.contains(&pid) || !in_container(pid, container_id) {
                continue;
            }
            let Some((state, sid)) = state_and_session(pid) else {
                continue;
            };
            if state == 'Z' {
                continue;
            }
            if session == Some(sid) || has_marker(pid, marker) {
                if let Some(p) = Pid::from_raw(pid) {
                    let _ = kill_process(p, Signal::STOP);
                }
                stopped.insert(pid);
                new += 1;
            }
        }
        if new == 0 {
            break;
        }
    }
    for pid in &stopped {
        if let Some(p) = Pid::from_raw(*pid) {
            let _ = kill_process(p, Signal::KILL);
        }
    }
    Ok(stopped.len())
}

fn pids() -> io::Result<Vec<i32>> {
    Ok(fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

fn in_container(pid: i32, container_id: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(container_id))
}

/// State letter and session id from `/proc/<pid>/stat` (fields 3 and 6;
/// the command name may hold spaces and parentheses, so parse after the last `)`).
fn state_and_session(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let session = fields.nth(2)?.parse().ok()?;
    Some((state, session))
}

fn has_marker(pid: i32, marker: &str) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = i32::try_from(std::process::id()).unwrap();
        let (state, session) = state_and_session(me).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(session >= 0);
        assert!(!has_marker(me, "SANDBOXER_EXEC_ID=nothing-like-this"));
        assert!(runs_host_processes("runc"));
        assert!(!runs_host_processes("runsc"));
    }
}
