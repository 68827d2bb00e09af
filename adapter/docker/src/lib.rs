//! The `SandboxRuntime` port on the Docker Engine, through bollard.
//!
//! `DockerSandboxRuntime::connect(DockerConfig, tracer)` gives the adapter;
//! bollard types stay inside. Feature `testing` adds `testing`: a locally
//! built busybox image, unique names and a cleanup guard for tests that run
//! against a real engine.

mod agent;
pub mod attr;
mod base_image;
mod config;
mod container;
mod create;
mod engine;
mod errors;
mod events;
mod exec;
mod files;
mod host_kill;
mod kill;
mod lifecycle;
mod liveness;
pub mod nodes;
mod runtime;
mod span;
mod volumes;
mod workspace;

#[cfg(feature = "testing")]
pub mod testing;

pub use agent::AgentBinary;
pub use base_image::{BaseImageRecipe, DEFAULT_PACKAGES, ImageBuildError, LABEL_RECIPE, Progress};
pub use config::{DockerConfig, TlsFiles};
pub use liveness::LivenessStats;
pub use nodes::{Capacity, DockerNodes, NodeConfig, NodeStatus};
pub use runtime::DockerSandboxRuntime;
