//! The wire protocol between the service and `sandboxer-agent`, the PID 1 of
//! every sandbox: length-prefixed binary frames with a request id
//! ([`frame`]), the messages they carry ([`message`]), and a client that
//! keeps many requests in flight over any async byte stream ([`client`]).
//!
//! Runtime-neutral: the Docker adapter carries it over a container's attach
//! stream; tests carry it over a child process's pipes.

pub mod client;
pub mod frame;
pub mod message;

pub use client::{AgentClient, ClientError};
pub use frame::{Decoded, FrameCodec, MAX_FRAME_BYTES, encode_frame};
pub use message::*;
