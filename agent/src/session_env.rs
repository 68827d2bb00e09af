//! The session's env: what the service sets once for a sandbox (a warm
//! sandbox claimed by a chat gets the chat's env this way), applied to
//! every command and process after the agent's own env and before the
//! request's. A process-wide value, not the agent's environment: mutating
//! that while threads read it is undefined behaviour.

use std::sync::RwLock;

static SESSION_ENV: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Replaces the session's env.
pub fn set(env: Vec<(String, String)>) {
    *SESSION_ENV
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = env;
}

/// The session's env, for a spawn.
pub fn get() -> Vec<(String, String)> {
    SESSION_ENV
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
