//! The lifecycle policy: idle TTL and max lifetime; every use extends a
//! session's expiry (DESIGN section 1).

use std::time::Duration;

use thiserror::Error;

use super::session::{Session, Timestamp};

/// Idle TTL when the operator sets none (DESIGN section 1).
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(30 * 60);
/// Max lifetime when the operator sets none (DESIGN section 1).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    idle_ttl: Duration,
    max_lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidPolicy {
    #[error("idle TTL must be at least one second")]
    TtlTooShort,
    #[error("max lifetime must be at least one second")]
    LifetimeTooShort,
    #[error("TTL of {ttl_seconds} s is longer than the max lifetime of {max_seconds} s")]
    TtlAboveLifetime { ttl_seconds: u64, max_seconds: u64 },
}

impl Policy {
    /// # Errors
    /// `InvalidPolicy` when either duration is under a second.
    pub fn new(idle_ttl: Duration, max_lifetime: Duration) -> Result<Self, InvalidPolicy> {
        if idle_ttl < Duration::from_secs(1) {
            return Err(InvalidPolicy::TtlTooShort);
        }
        if max_lifetime < Duration::from_secs(1) {
            return Err(InvalidPolicy::LifetimeTooShort);
        }
        Ok(Self {
            idle_ttl,
            max_lifetime,
        })
    }

    pub fn idle_ttl(&self) -> Duration {
        self.idle_ttl
    }

    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// Checks a TTL a caller asked for: at least a second, at most the max lifetime.
    ///
    /// # Errors
    /// `InvalidPolicy` when it is out of those bounds.
    pub fn check_ttl(&self, ttl: Duration) -> Result<Duration, InvalidPolicy> {
        if ttl < Duration::from_secs(1) {
            return Err(InvalidPolicy::TtlTooShort);
        }
        if ttl > self.max_lifetime {
            return Err(InvalidPolicy::TtlAboveLifetime {
                ttl_seconds: ttl.as_secs(),
                max_seconds: self.max_lifetime.as_secs(),
            });
        }
        Ok(ttl)
    }

    /// When a session opened at `created_at` with `ttl` first expires.
    pub fn initial_expiry(&self, created_at: Timestamp, ttl: Duration) -> Timestamp {
        (created_at + ttl).min(self.end_of_life(created_at))
    }

    /// The new `expires_at` after a use at `now`: `now + ttl`, capped by max lifetime.
    pub fn expiry_after_use(&self, session: &Session, ttl: Duration, now: Timestamp) -> Timestamp {
        (now + ttl).min(self.end_of_life(session.created_at))
    }

    /// Expired by idle TTL or by max lifetime.
    pub fn is_expired(&self, session: &Session, now: Timestamp) -> bool {
        now >= session.expires_at || now >= self.end_of_life(session.created_at)
    }

    /// Past max lifetime: the next use gets a new session.
    pub fn is_past_lifetime(&self, session: &Session, now: Timestamp) -> bool {
        now >= self.end_of_life(session.created_at)
    }

    fn end_of_life(&self, created_at: Timestamp) -> Timestamp {
        created_at + self.max_lifetime
    }
}

impl Default for Policy {
    /// 30 min idle TTL, 24 h max lifetime (DESIGN section 1).
    fn default() -> Self {
        Self {
            idle_ttl: DEFAULT_IDLE_TTL,
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }
}
