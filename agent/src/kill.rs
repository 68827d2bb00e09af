//! Ending a command's whole tree: signals to its process group, then a
//! sweep by marker for descendants that left the group (`setsid`, a double
//! fork into a new group). Every command's processes carry
//! `MARKER_VAR=<value unique to the command>` in their environment, which
//! descendants inherit unless they clear it on purpose (a best effort: the
//! group kill is the main tool, the sweep catches the usual escapes).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::process::{Pid, Signal};
use sandboxer_agent_proto::MARKER_VAR;

/// Scans after which a sweep gives up on a tree that keeps forking.
const SWEEP_TRIES: usize = 50;
/// Time for killed processes to leave /proc's view before the next scan.
const SWEEP_PAUSE: Duration = Duration::from_millis(10);

/// Marker values, unique across commands, live processes and agent
/// restarts (the agent's pid and start time, then a sequence number).
pub struct Markers {
    boot: String,
    seq: AtomicU64,
}

impl Markers {
    pub fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            boot: format!("{}-{nanos}", std::process::id()),
            seq: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        format!("{}-{}", self.boot, self.seq.fetch_add(1, Ordering::Relaxed))
    }
}

/// Signals the process group `pgid`; a group already gone is fine.
pub fn signal_group(pgid: Pid, signal: Signal) {
    // ESRCH: nobody left in the group. Nothing else can fail for our own
    // children's group.
    let _ = rustix::process::kill_process_group(pgid, signal);
}

/// SIGKILLs every process whose environment carries `MARKER_VAR=marker`,
/// scanning again until a scan finds none (or the tries run out). Returns
/// how many distinct processes it killed. Blocks: reads /proc.
pub fn sweep(marker: &str) -> u32 {
    let needle = format!("{MARKER_VAR}={marker}").into_bytes();
    let own = rustix::process::getpid();
    let mut killed = HashSet::new();
    for _ in 0..SWEEP_TRIES {
        let found = scan(&needle, own);
        if found.is_empty() {
            break;
        }
        for pid in found {
            // A process killed but not yet gone may show up again: killing
            // it twice is harmless, counting it twice is not.
            if rustix::process::kill_process(pid, Signal::KILL).is_ok() {
                killed.insert(pid.as_raw_pid());
            }
        }
        std::thread::sleep(SWEEP_PAUSE);
    }
    u32::try_from(killed.len()).unwrap_or(u32::MAX)
}

/// The processes whose environment has the entry `needle`. Unreadable
/// entries (other users' processes, processes that just ended, zombies
/// with an empty environment) are skipped.
fn scan(needle: &[u8], own: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let pid = Pid::from_raw(name.to_str()?.parse().ok()?)?;
        if pid == own {
            return None;
        }
        let environ = std::fs::read(format!("/proc/{}/environ", pid.as_raw_pid())).ok()?;
        environ
            .split(|b| *b == 0)
            .any(|entry| entry == needle)
            .then_some(pid)
    })
    .collect()
}
