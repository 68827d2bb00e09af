//! The ports: one trait per outside thing. Use cases hold them as
//! `Arc<dyn Port>`, handed in through their constructors.

pub mod clock;
pub mod coordination;
pub mod runtime;
pub mod store;
pub mod tracer;

pub use clock::{Clock, SystemClock};
pub use coordination::{Coordination, Solo};
pub use runtime::{
    CreateRequest, ProcessLimits, RuntimeError, RuntimeSandbox, RuntimeWorkspace, SandboxRef,
    SandboxRuntime, StopOutcome,
};
pub use store::{Replacing, SessionStore, StoreError, Touch};
pub use tracer::{AttributeValue, Parent, Span, SpanKind, Tracer};
