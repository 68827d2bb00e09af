//! Hand-written fakes of the ports, for use-case tests (feature `testing`),
//! and the contract suites every implementation of a port runs.

mod clock;
mod fake_userland;
mod fake_workspace;
mod memory_store;
mod recording_tracer;
mod runtime;
pub mod runtime_contract;
mod runtime_op;
pub mod store_contract;

pub use clock::ManualClock;
pub use fake_workspace::FakeFiles;
pub use memory_store::{MemoryStore, StoreOp};
pub use recording_tracer::{RecordedSpan, RecordingTracer, SpanStatus};
pub use runtime::{FakeContainer, FakeRuntime};
pub use runtime_op::RuntimeOp;
