//! `--interval SECONDS` (issue 17): a long run cut into intervals, each
//! reported as a whole run would be, for continuous profiling.
//!
//! At each interval's end the statistics the kernel probes aggregate into
//! (`bts[bt] <<< 1`) switch to their second map (`codegen/maps.rs`,
//! `GEN_OFFSET`); once no handler can still be writing to the first
//! (`KernelSession::flip_generation` waits out an RCU grace period), the
//! host reads it, runs the script's `end` probes over the interval's
//! statistics, hands what they printed to the flame-graph outputs
//! (numbered files, pushes; `crate::flame::end_interval`), then empties
//! the host's statistics and that map. Every sample lands in exactly one
//! interval, and memory stays what one interval needs.
//!
//! Only statistics start afresh: scalars and arrays are the script's state
//! (entry times, configuration from `begin`) and keep their values.

use std::time::{Duration, Instant};

/// When intervals end: every `period` from the start, a missed one (a slow
/// report) skipped rather than made up.
pub struct Clock {
    period: Duration,
    next: Instant,
}

impl Clock {
    pub fn new(period: Duration) -> Clock {
        Clock {
            period,
            next: Instant::now() + period,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// Whether an interval ends at `now`; if so, the clock moves on.
    pub fn take_due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        while self.next <= now {
            self.next += self.period;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_missed_intervals() {
        let mut c = Clock::new(Duration::from_secs(2));
        let t0 = c.deadline() - Duration::from_secs(2);
        assert!(!c.take_due(t0 + Duration::from_millis(1999)));
        assert!(c.take_due(t0 + Duration::from_secs(5)));
        assert_eq!(c.deadline(), t0 + Duration::from_secs(6));
        assert!(!c.take_due(t0 + Duration::from_secs(5)));
    }
}
