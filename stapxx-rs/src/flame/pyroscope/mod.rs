//! Pushing pprof profiles to Grafana Pyroscope (`--pyroscope URL`).
//!
//! Pyroscope's HTTP ingest API, as its server API page documents it
//! (<https://grafana.com/docs/pyroscope/latest/configure-server/about-server-api/>):
//! `POST /ingest` with the metadata in the query: `name` (the application
//! and its tags, `app{k=v,...}`; for pprof a prefix the profile type is
//! appended to), `from`/`until` (unix seconds), `format=pprof`,
//! `sampleRate` (Hz), `spyName`; for pprof the body is a
//! `multipart/form-data` form whose file field `profile` holds the
//! profile (a `sample_type_config` field is only needed for sample types
//! the server does not know; ours, `samples/count` and `cpu/nanoseconds`,
//! are those of a Go CPU profile, which it knows).
//!
//! A server that is down, slow or failing must never stop or slow the
//! sampling, and nothing may be lost silently:
//!
//! * [`Pusher::submit`] only queues (a lock held for a queue operation,
//!   never over a request); a background thread ([`worker`]) sends;
//! * the queue ([`queue`]) is bounded in bytes (`--push-buffer`) and in
//!   age (`--push-max-age`); what falls outside is dropped and counted;
//! * failures (refused or broken connections, timeouts, HTTP errors) are
//!   retried oldest first, with exponential backoff up to a cap;
//! * [`Pusher::finish`] gives the backlog a grace period, then counts the
//!   rest as dropped; its [`PushReport`] says what happened, as warnings
//!   when anything was dropped.

pub mod config;
pub mod queue;
pub mod report;
pub mod send;
pub mod worker;

pub use config::PushConfig;
pub use report::{DropReason, PushReport};

use crate::cli::Options;
use queue::{Item, Queue};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use worker::{Shared, State};

/// How long the end of a run waits for profiles still to be delivered.
pub const END_GRACE: Duration = Duration::from_secs(5);

/// A background pusher of profiles to one Pyroscope server.
pub struct Pusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pusher {
    /// The pusher the command line asks for (`--pyroscope` and its
    /// options); `exe`, the traced executable, names the application when
    /// `--pyroscope-app` does not. `None` without `--pyroscope`.
    pub fn from_options(opts: &Options, exe: Option<&Path>) -> Option<Result<Pusher, String>> {
        config::from_cli(&opts.cli, exe).map(|c| c.and_then(Pusher::start))
    }

    /// Start the thread that pushes to `cfg`'s server.
    pub fn start(cfg: PushConfig) -> Result<Pusher, String> {
        let report = PushReport {
            url: cfg.shown_url(),
            buffer_bytes: cfg.buffer_bytes,
            max_age: cfg.max_age,
            ..PushReport::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Queue::new(cfg.buffer_bytes, cfg.max_age),
                report,
                deadline: None,
            }),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pyroscope-push".into())
            .spawn(move || worker::run(&s, &cfg))
            .map_err(|e| format!("cannot start the Pyroscope push thread: {e}"))?;
        Ok(Pusher {
            shared,
            thread: Some(thread),
        })
    }

    /// Queue a gzipped pprof profile covering `from`..`until` for pushing.
    /// Never waits for the server: a profile that does not fit in the
    /// buffer is dropped (and counted) instead.
    pub fn submit(&self, profile_gz: Vec<u8>, from: SystemTime, until: SystemTime) {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let item = Item {
            profile: profile_gz,
            from: secs(from),
            until: secs(until),
            submitted: Instant::now(),
            attempts: 0,
        };
        let mut st = self.shared.lock();
        let State { queue, report, .. } = &mut *st;
        queue.push(item, report);
        drop(st);
        self.shared.wake.notify_one();
    }

    /// What happened so far (the thread goes on).
    pub fn report(&self) -> PushReport {
        self.shared.lock().report.clone()
    }

    /// Deliver what is pending within `grace`, then stop the thread; what
    /// is still undelivered then is counted as dropped.
    pub fn finish(mut self, grace: Duration) -> PushReport {
        self.stop(grace)
    }

    fn stop(&mut self, grace: Duration) -> PushReport {
        {
            let mut st = self.shared.lock();
            st.deadline = Some(Instant::now() + grace);
            st.report.grace = grace;
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.lock().report.clone()
    }
}

impl Drop for Pusher {
    /// A pusher dropped without [`Pusher::finish`] stops at once (its
    /// thread must not outlive it).
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Duration::ZERO);
        }
    }
}

/// Push one profile for a whole run (`from`..`until`) and wait for it
/// within [`END_GRACE`]; prints the report's warnings (and with `-v` its
/// summary) on stderr. A no-op without `--pyroscope`.
pub fn push_run(
    opts: &Options,
    exe: Option<&Path>,
    profile_gz: Vec<u8>,
    from: SystemTime,
    until: SystemTime,
) -> Result<(), String> {
    let Some(pusher) = Pusher::from_options(opts, exe) else {
        return Ok(());
    };
    let pusher = pusher?;
    pusher.submit(profile_gz, from, until);
    print_report(opts, &pusher.finish(END_GRACE));
    Ok(())
}

/// The report's warnings, and with `-v` its summary, on stderr.
pub fn print_report(opts: &Options, report: &PushReport) {
    for w in report.warnings() {
        crate::ewriteln!("WARNING: {w}");
    }
    if opts.cli.verbose > 0 {
        crate::ewriteln!("{}", report.summary());
    }
}
