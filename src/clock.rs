/*!
Time as the charm's waits see it: real in the charm, virtual in tests, so that a retry budget
runs out without a test waiting for it.
*/

use std::time::{Duration, Instant};

/// Now, and waiting.
pub trait Clock {
    /// Now.
    fn now(&self) -> Instant;
    /// Waits `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}
