//! Hand-written fakes of the ports, for use-case tests (feature `testing`).

mod clock;
mod memory_store;
mod recording_tracer;
mod runtime;
pub mod store_contract;

pub use clock::ManualClock;
pub use memory_store::{MemoryStore, StoreOp};
pub use recording_tracer::{RecordedSpan, RecordingTracer, SpanStatus};
pub use runtime::{FakeContainer, FakeRuntime, RuntimeOp};
