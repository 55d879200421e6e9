//! The profiles waiting to be pushed, oldest first, bounded by bytes and
//! by age. The profile being sent is out of the queue but still counted
//! in its bytes: memory is what the bound is about.

use super::report::{DropReason, PushReport};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One profile to push.
#[derive(Debug)]
pub struct Item {
    /// The gzipped pprof profile.
    pub profile: Vec<u8>,
    /// `from`/`until`, unix seconds.
    pub from: u64,
    pub until: u64,
    /// When it was submitted: its age is counted from here (a monotonic
    /// clock, so a clock step does not age or rejuvenate anything).
    pub submitted: Instant,
    /// Requests made with it so far.
    pub attempts: u32,
}

/// The queue and its bounds.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Item>,
    /// Bytes of the queued profiles and of the one being sent.
    bytes: u64,
    max_bytes: u64,
    max_age: Duration,
}

impl Queue {
    pub fn new(max_bytes: u64, max_age: Duration) -> Queue {
        Queue {
            items: VecDeque::new(),
            bytes: 0,
            max_bytes,
            max_age,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queue `item` at the back, or drop it (counted in `report`) when it
    /// does not fit: the profiles already waiting are older and go first.
    pub fn push(&mut self, item: Item, report: &mut PushReport) {
        let len = item.profile.len() as u64;
        if self.bytes + len > self.max_bytes {
            report.count_drop(DropReason::BufferFull, 1);
            return;
        }
        self.bytes += len;
        self.items.push_back(item);
    }

    /// Drop the profiles at the front that are older than the age bound.
    pub fn expire(&mut self, now: Instant, report: &mut PushReport) {
        while let Some(front) = self.items.front() {
            if now.saturating_duration_since(front.submitted) <= self.max_age {
                break;
            }
            let gone = self.items.pop_front().map_or(0, |i| i.profile.len() as u64);
            self.bytes -= gone;
            report.count_drop(DropReason::TooOld, 1);
        }
    }

    /// The oldest profile, to send; its bytes stay counted until
    /// [`Queue::done`] or [`Queue::retry`].
    pub fn take(&mut self) -> Option<Item> {
        self.items.pop_front()
    }

    /// The taken profile is finished with (delivered or dropped).
    pub fn done(&mut self, item: &Item) {
        self.bytes -= item.profile.len() as u64;
    }

    /// The taken profile goes back to the front, to be tried again first.
    pub fn retry(&mut self, item: Item) {
        self.items.push_front(item);
    }

    /// Drop everything still waiting, for `why`.
    pub fn drop_all(&mut self, why: DropReason, report: &mut PushReport) {
        report.count_drop(why, self.items.len() as u64);
        for i in self.items.drain(..) {
            self.bytes -= i.profile.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize, at: Instant) -> Item {
        Item {
            profile: vec![0; n],
            from: 0,
            until: 0,
            submitted: at,
            attempts: 0,
        }
    }

    #[test]
    fn bytes_bound_counts_the_one_in_flight() {
        let now = Instant::now();
        let mut r = PushReport::default();
        let mut q = Queue::new(100, Duration::from_secs(10));
        q.push(item(60, now), &mut r);
        let sending = q.take().unwrap();
        q.push(item(50, now), &mut r);
        assert_eq!(r.dropped(DropReason::BufferFull), 1);
        q.push(item(101, now), &mut r);
        assert_eq!(r.dropped(DropReason::BufferFull), 2);
        q.retry(sending);
        let again = q.take().unwrap();
        assert_eq!(again.profile.len(), 60);
        q.done(&again);
        q.push(item(100, now), &mut r);
        assert_eq!(r.dropped_total(), 2);
        assert!(!q.is_empty());
    }

    #[test]
    fn age_bound_drops_from_the_front() {
        let t0 = Instant::now();
        let mut r = PushReport::default();
        let mut q = Queue::new(1000, Duration::from_secs(5));
        q.push(item(1, t0), &mut r);
        q.push(item(2, t0 + Duration::from_secs(3)), &mut r);
        q.expire(t0 + Duration::from_secs(5), &mut r);
        assert_eq!(r.dropped_total(), 0);
        q.expire(t0 + Duration::from_secs(6), &mut r);
        assert_eq!(r.dropped(DropReason::TooOld), 1);
        assert_eq!(q.take().unwrap().profile.len(), 2);
        q.push(item(3, t0), &mut r);
        q.drop_all(DropReason::Unsent, &mut r);
        assert_eq!(r.dropped(DropReason::Unsent), 1);
        assert_eq!(q.bytes, 2, "the taken one is still counted");
    }
}
