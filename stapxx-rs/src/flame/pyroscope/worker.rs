//! The pusher's thread: sends the queued profiles oldest first, one at a
//! time; after a failure the same profile is tried again after a wait
//! that doubles with each failure in a row (up to a cap), so a server that
//! is down is not hammered and one that comes back gets the backlog in
//! order. The queue's lock is never held over a request: `submit` only
//! ever waits for a queue operation.

use super::config::PushConfig;
use super::queue::Queue;
use super::report::{DropReason, PushReport};
use super::send;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A profile refused by the server (HTTP 4xx other than 408/429) is
/// tried this many times, then dropped: one the server will never take
/// must not hold back the ones behind it until it ages out.
pub const MAX_REFUSED_ATTEMPTS: u32 = 3;

/// What the caller and the thread share.
pub struct Shared {
    pub state: Mutex<State>,
    /// Signalled on submit and on finish.
    pub wake: Condvar,
}

pub struct State {
    pub queue: Queue,
    pub report: PushReport,
    /// Set by `finish`: deliver what is pending until then, then stop.
    pub deadline: Option<Instant>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The wait before the next try after `failures` failures in a row.
pub fn backoff(cfg: &PushConfig, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    cfg.backoff_initial
        .saturating_mul(1 << doublings)
        .min(cfg.backoff_max)
}

/// The thread's body; returns when `finish` asked it to and nothing more
/// can be delivered in time.
pub fn run(shared: &Shared, cfg: &PushConfig) {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(cfg.request_timeout)
        .build();
    let mut failures: u32 = 0;
    let mut next_try = Instant::now();
    let mut st = shared.lock();
    loop {
        let now = Instant::now();
        let State {
            queue,
            report,
            deadline,
        } = &mut *st;
        queue.expire(now, report);
        if let Some(d) = *deadline {
            if queue.is_empty() || now >= d {
                queue.drop_all(DropReason::Unsent, report);
                return;
            }
        }
        if queue.is_empty() {
            st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        if now < next_try {
            let until = deadline.map_or(next_try, |d| d.min(next_try));
            st = shared
                .wake
                .wait_timeout(st, until.saturating_duration_since(now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        let Some(mut item) = queue.take() else {
            continue;
        };
        if item.attempts > 0 {
            report.retries += 1;
        }
        // At the end, no request may outlast the grace.
        let timeout = deadline.map_or(cfg.request_timeout, |d| {
            cfg.request_timeout.min(d.saturating_duration_since(now))
        });
        drop(st);
        let result = send::post(&agent, cfg, &item, timeout);
        st = shared.lock();
        let State { queue, report, .. } = &mut *st;
        item.attempts += 1;
        match result {
            Ok(()) => {
                report.sent += 1;
                report.sent_bytes += item.profile.len() as u64;
                queue.done(&item);
                failures = 0;
                next_try = Instant::now();
            }
            Err(f) => {
                report.last_error = Some(f.message);
                failures += 1;
                next_try = Instant::now() + backoff(cfg, failures);
                if f.refused && item.attempts >= MAX_REFUSED_ATTEMPTS {
                    queue.done(&item);
                    report.count_drop(DropReason::Refused, 1);
                } else {
                    queue.retry(item);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut c = PushConfig::new("http://h", "a").unwrap();
        c.backoff_initial = Duration::from_millis(100);
        c.backoff_max = Duration::from_millis(700);
        let waits: Vec<u128> = (1..=6).map(|n| backoff(&c, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700, 700]);
        assert_eq!(backoff(&c, 1000).as_millis(), 700);
    }
}
