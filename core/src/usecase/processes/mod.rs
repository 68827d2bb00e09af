//! Live processes of a chat's sandbox (DESIGN section 10): start, signal,
//! kill, their I/O, and follow streams. Every call gets-or-creates the
//! chat's sandbox and holds its lease while it runs, as an exec does; a
//! follow stream holds it for as long as it is attached, and a process with
//! nobody attached holds nothing.

mod follow_output;
mod kill_process;
mod process_io;
mod signal_process;
mod start_process;

use std::time::Duration;

pub use follow_output::{
    FollowEvent, FollowMode, FollowProcessOutput, OutputFollower, OutputStream,
};
pub use kill_process::KillProcess;
pub use process_io::ProcessIo;
pub use signal_process::SignalProcess;
pub use start_process::StartProcess;

use crate::domain::ProcessId;
use crate::port::ProcessLimits;
use crate::port::tracer::Span;
use crate::trace::attr::key;

/// Running processes per sandbox unless configured.
pub const DEFAULT_MAX_PROCESSES: u32 = 64;
/// Output buffered per stream of a process unless configured.
pub const DEFAULT_PROCESS_BUFFER_BYTES: u64 = 4 * 1024 * 1024;

/// What the process use cases are tuned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSettings {
    pub limits: ProcessLimits,
    /// Bytes per stream one read of a follow stream asks for.
    pub read_chunk: u64,
    /// How long a follow stream's read waits for output before it says
    /// where it stands (a heartbeat, which also finds a vanished client).
    pub heartbeat: Duration,
}

impl Default for ProcessSettings {
    fn default() -> Self {
        Self {
            limits: ProcessLimits {
                max_running: DEFAULT_MAX_PROCESSES,
                buffer_bytes: DEFAULT_PROCESS_BUFFER_BYTES,
            },
            read_chunk: 1024 * 1024,
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// `sandbox.process.id` on a span.
fn process_attr(id: &ProcessId) -> impl FnOnce(&mut dyn Span) {
    let id = id.to_string();
    move |span| span.set_attribute(key::PROCESS_ID, id.into())
}
