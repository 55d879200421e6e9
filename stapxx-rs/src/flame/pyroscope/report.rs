//! What a [`Pusher`](super::Pusher) did: profiles delivered, dropped (by
//! reason), retried, and the last failure; as warnings at the end of a run
//! (nothing when all went well) and as a one-line `-v` summary.

use std::collections::BTreeMap;
use std::time::Duration;

/// Why a profile was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// It did not fit in the buffer (`--push-buffer`) next to those
    /// waiting, or was larger than the whole buffer.
    BufferFull,
    /// It waited longer than `--push-max-age` without being delivered.
    TooOld,
    /// The server refused it (an HTTP 4xx other than 408/429) on every try.
    Refused,
    /// It was still waiting when the grace at the end ran out.
    Unsent,
}

/// The outcome of a [`Pusher`](super::Pusher)'s life.
#[derive(Debug, Clone, Default)]
pub struct PushReport {
    /// `URL/ingest`, a password in it masked.
    pub url: String,
    /// Profiles the server accepted (2xx).
    pub sent: u64,
    /// Their bytes (the gzipped profiles, without the form around them).
    pub sent_bytes: u64,
    /// Profiles given up, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Requests that repeated one that failed.
    pub retries: u64,
    /// The last failure, as the user should read it.
    pub last_error: Option<String>,
    /// The bounds, for the messages.
    pub buffer_bytes: u64,
    pub max_age: Duration,
    /// The grace `finish` was given.
    pub grace: Duration,
}

impl PushReport {
    /// Profiles dropped for `why`.
    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped.get(&why).copied().unwrap_or(0)
    }

    /// Profiles dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    pub(super) fn count_drop(&mut self, why: DropReason, n: u64) {
        if n > 0 {
            *self.dropped.entry(why).or_insert(0) += n;
        }
    }

    /// One line per reason profiles were dropped, to be printed as
    /// `WARNING: <line>` at the end of a run; empty when none were.
    pub fn warnings(&self) -> Vec<String> {
        let last = match &self.last_error {
            Some(e) => format!(" (last error: {e})"),
            None => String::new(),
        };
        self.dropped
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(why, n)| {
                let reason = match why {
                    DropReason::BufferFull => format!(
                        "they did not fit in the push buffer ({}) while the server was not \
                         taking them",
                        bytes_bound(self.buffer_bytes)
                    ),
                    DropReason::TooOld => format!(
                        "they were not delivered within --push-max-age ({})",
                        duration(self.max_age)
                    ),
                    DropReason::Refused => "the server refused them".to_string(),
                    DropReason::Unsent => format!(
                        "they were not delivered within the {} the end of the run waits for them",
                        duration(self.grace)
                    ),
                };
                format!(
                    "{n} profile(s) could not be pushed to {}: {reason}{last}",
                    self.url
                )
            })
            .collect()
    }

    /// One line for `-v`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "pyroscope: {} profile(s) ({} bytes) pushed to {}, {} retr{}",
            self.sent,
            self.sent_bytes,
            self.url,
            self.retries,
            if self.retries == 1 { "y" } else { "ies" }
        );
        let drops: Vec<String> = self
            .dropped
            .iter()
            .map(|(why, n)| format!("{n} {}", reason_word(*why)))
            .collect();
        if drops.is_empty() {
            s.push_str(", none dropped");
        } else {
            s.push_str(&format!(", dropped: {}", drops.join(", ")));
        }
        if let Some(e) = &self.last_error {
            s.push_str(&format!("; last error: {e}"));
        }
        s
    }
}

fn reason_word(why: DropReason) -> &'static str {
    match why {
        DropReason::BufferFull => "buffer full",
        DropReason::TooOld => "too old",
        DropReason::Refused => "refused",
        DropReason::Unsent => "unsent at the end",
    }
}

/// `--push-buffer N MB` when the bound is whole megabytes, else bytes.
fn bytes_bound(b: u64) -> String {
    if b > 0 && b.is_multiple_of(1 << 20) {
        format!("--push-buffer {} MB", b >> 20)
    } else {
        format!("{b} bytes")
    }
}

/// Whole seconds as `N s`, else milliseconds.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> PushReport {
        PushReport {
            url: "http://h:1/ingest".into(),
            buffer_bytes: 64 << 20,
            max_age: Duration::from_secs(300),
            grace: Duration::from_millis(2500),
            ..PushReport::default()
        }
    }

    #[test]
    fn all_well_is_silent() {
        let mut r = report();
        r.sent = 3;
        r.sent_bytes = 1200;
        r.retries = 1;
        assert!(r.warnings().is_empty());
        assert_eq!(
            r.summary(),
            "pyroscope: 3 profile(s) (1200 bytes) pushed to http://h:1/ingest, 1 retry, none dropped"
        );
    }

    #[test]
    fn drops_name_reason_and_bound() {
        let mut r = report();
        r.count_drop(DropReason::Unsent, 2);
        r.count_drop(DropReason::BufferFull, 1);
        r.count_drop(DropReason::TooOld, 0);
        r.last_error = Some("connection refused".into());
        assert_eq!(r.dropped_total(), 3);
        assert_eq!(
            r.warnings(),
            [
                "1 profile(s) could not be pushed to http://h:1/ingest: they did not fit in the \
                 push buffer (--push-buffer 64 MB) while the server was not taking them (last \
                 error: connection refused)",
                "2 profile(s) could not be pushed to http://h:1/ingest: they were not delivered \
                 within the 2500 ms the end of the run waits for them (last error: connection \
                 refused)",
            ]
        );
        assert_eq!(
            r.summary(),
            "pyroscope: 0 profile(s) (0 bytes) pushed to http://h:1/ingest, 0 retries, dropped: \
             1 buffer full, 2 unsent at the end; last error: connection refused"
        );
    }
}
