//! A clock that moves only when told.

use std::sync::Mutex;
use std::time::Duration;

use chrono::TimeZone;

use crate::domain::Timestamp;
use crate::port::Clock;

#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    /// 2026-01-01T00:00:00Z.
    pub fn at_epoch() -> Self {
        Self::new(chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    pub fn set(&self, to: Timestamp) {
        *self.0.lock().unwrap() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}
