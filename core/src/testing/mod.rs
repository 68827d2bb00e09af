//! Hand-written fakes of the ports, for use-case tests (feature `testing`),
//! and the contract suites every implementation of a port runs.

// The contract suites' findings: a broken property returns `Err(what was
// seen)` instead of panicking, so a suite can name the property that failed.
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

mod clock;
mod fake_processes;
mod fake_userland;
mod fake_workspace;
mod memory_store;
mod recording_tracer;
mod runtime;
pub mod runtime_contract;
mod runtime_op;
pub mod store_contract;

pub use clock::ManualClock;
pub use fake_workspace::{FakeFile, FakeFiles, FakeWorkspace};
pub use memory_store::{MemoryStore, StoreOp};
pub use recording_tracer::{RecordedSpan, RecordingTracer, SpanStatus};
pub use runtime::{FakeContainer, FakeRuntime};
pub use runtime_op::RuntimeOp;
