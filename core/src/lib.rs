//! Sandboxer's lifecycle core: the domain (pure), the ports the outside world
//! plugs into, and the use cases that drive sandboxes through their life.
//!
//! Nothing here knows Docker, SQL, HTTP or OpenTelemetry; adapters implement
//! the ports in `port` and the binary wires them together.

pub mod domain;
pub mod port;
pub mod trace;
pub mod usecase;

#[cfg(feature = "testing")]
pub mod testing;
