//! The session's lifecycle, as stap's runtime and staprun run it:
//!
//! 1. `begin` probes, in order of their sequence number (`begin(-1)`
//!    first), then of appearance; a `-c` command is started before them
//!    but held until they are done.
//! 2. Running: `timer.*` probes fire on absolute deadlines (no drift; a
//!    deadline missed by more than a period is skipped, not made up in a
//!    burst). The session stops on `exit()`, on SIGINT/SIGTERM/SIGHUP, when
//!    the `-c` command exits, when the `-x` process exits or runs exec()
//!    (see [`crate::target::watch`]), or on errors (more than MAXERRORS,
//!    default 0). The end of the `-x` process, which the script did not
//!    ask for, is said in a `WARNING:` line; the `-c` command's end, the
//!    usual way such a run ends, only with `-v`.
//! 3. Stop: after `exit()`, a signal or the command's end, the `end`
//!    probes run; after errors the `end` probes are skipped and the `error`
//!    probes run instead (stap's `probe error`). Then, if there were errors,
//!    `WARNING: Number of errors: N, skipped probes: 0`.
//!
//! Every probe of a state runs only while the session is still in that
//! state: `exit()` in a `begin` probe lets that handler finish but skips the
//! remaining `begin` probes; an error in an `end` probe skips the remaining
//! `end` probes and runs the `error` probes.
//!
//! A runtime error prints `ERROR: message near <token> at file:line:col`
//! (`error("msg")` prints just `ERROR: msg`); the exit status is 1 if any
//! error was printed, else 0, as staprun's. Stdout that cannot be written
//! stops the session as a signal does: exit status 141 when the reader
//! went away (quietly, as `| head` expects), else 1 with one `ERROR:`. A
//! second SIGINT/SIGTERM while the session is stopping kills the process
//! at once (staprun does the same).

use super::host::Host;
use super::interp::{Interp, Limits, Near, RtError};
use super::output::Output;
use super::values::Globals;
use super::{describe_near, SourceInfo};
use crate::ir::{Exec, Program};
use crate::probes::SiteKind;
use crate::target::watch::{Fate, Watch};
use grammar::Diagnostic;
use std::io::PipeWriter;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the host runtime needs from the command line.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `-x PID`.
    pub target: Option<u32>,
    /// `-c CMD`: started before the `begin` probes run, released after
    /// them; `target()` is its pid and the session ends when it exits. If
    /// the session ends first, the command is killed.
    pub command: Option<String>,
    /// The executable `command` runs (looked up as the shell would).
    pub command_exe: Option<std::path::PathBuf>,
    pub limits: Limits,
    /// `--skip-badvars`.
    pub skip_badvars: bool,
    /// `-v`: show repeated warnings too.
    pub verbose: u8,
    /// Catch SIGINT/SIGTERM/SIGHUP (off for in-process tests).
    pub signals: bool,
    /// The `-x` process: the session ends when it exits or runs exec().
    pub watch: Option<Watch>,
    /// `--interval`: report and restart the statistics this often
    /// (`runtime/interval.rs`).
    pub interval: Option<Duration>,
}

/// How often a session with nothing else to do looks at the `-x` process.
const WATCH_PERIOD: Duration = Duration::from_millis(100);

/// stap's session states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Starting,
    Running,
    Stopping,
    Error,
}

/// The longest timer period (pass 2 clamps timers to it).
#[cfg(test)]
const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);

struct Timer {
    probe: usize,
    pp: String,
    period: Duration,
    next: Instant,
}

/// A running (or about to run) host session.
pub struct Session<'p> {
    interp: Interp<'p>,
    src: Option<&'p (dyn SourceInfo + Sync)>,
    state: State,
    limits: Limits,
    begin: Vec<(usize, String)>,
    end: Vec<(usize, String)>,
    error: Vec<(usize, String)>,
    timers: Vec<Timer>,
    command: Option<String>,
    child: Option<Child>,
    release: Option<PipeWriter>,
    events: Option<Receiver<i32>>,
    signals: Option<signal_hook::iterator::Handle>,
    kernel_report: KernelReport,
    /// The `-x` process, until its end has been seen.
    watch: Option<Watch>,
    /// The `-x` process exited or ran exec() (sticky).
    target_ended: bool,
    verbose: u8,
}

/// The kernel probes' share of the final report.
#[derive(Debug, Default)]
pub struct KernelReport {
    /// Shown as warnings before the totals (errors by kind).
    pub lines: Vec<String>,
    /// Errors not already counted as `ERROR:` lines of this session.
    pub errors: u64,
    pub skipped: u64,
    /// Reads `--skip-badvars` turned into 0.
    pub skipped_reads: u64,
}

impl<'p> Session<'p> {
    /// Check the program and set up its globals; nothing runs yet. Kernel
    /// probes (`Exec::Kernel`) are left to the eBPF back end.
    pub fn new(
        prog: &'p Program,
        config: Config,
        src: Option<&'p (dyn SourceInfo + Sync)>,
    ) -> Result<Session<'p>, Diagnostic> {
        Self::with_output(prog, config, src, Output::stdio(true))
    }

    /// As [`Session::new`], printing into `out`.
    pub fn with_output(
        prog: &'p Program,
        config: Config,
        src: Option<&'p (dyn SourceInfo + Sync)>,
        out: Output,
    ) -> Result<Session<'p>, Diagnostic> {
        Self::setup(prog, config, src, out).map_err(|mut d| {
            if let Some(src) = src {
                d.span = d.span.map(|s| src.original(s));
                for (s, _) in &mut d.places {
                    *s = src.original(*s);
                }
            }
            d
        })
    }

    fn setup(
        prog: &'p Program,
        config: Config,
        src: Option<&'p (dyn SourceInfo + Sync)>,
        mut out: Output,
    ) -> Result<Session<'p>, Diagnostic> {
        if prog.probes.is_empty() {
            return Err(Diagnostic::bare("no probes found"));
        }
        let mut begin = Vec::new();
        let mut end = Vec::new();
        let mut error = Vec::new();
        let mut timers = Vec::new();
        for (i, p) in prog.probes.iter().enumerate() {
            if p.exec != Exec::Host {
                // The eBPF back end's.
                continue;
            }
            // Pass 2 matched the points; the host reads its sites only.
            for site in &p.sites {
                let pp = site.point.clone();
                match &site.kind {
                    SiteKind::Begin(s) => begin.push((*s, i, pp)),
                    SiteKind::End(s) => end.push((*s, i, pp)),
                    SiteKind::Error(s) => error.push((*s, i, pp)),
                    SiteKind::Timer(period) => timers.push(Timer {
                        probe: i,
                        pp,
                        period: *period,
                        next: Instant::now(),
                    }),
                    _ => {}
                }
            }
        }
        let order = |mut v: Vec<(i64, usize, String)>| -> Vec<(usize, String)> {
            v.sort_by_key(|(s, _, _)| *s);
            v.into_iter().map(|(_, i, pp)| (i, pp)).collect()
        };
        if config.verbose > 0 {
            out = Output::stdio(false);
        }
        let limits = config.limits;
        let mut interp = Interp::new(prog, limits, out, Host::new(config.target))?;
        interp.skip_badvars = config.skip_badvars;
        interp.verbose = config.verbose;
        let mut s = Session {
            interp,
            src,
            state: State::Starting,
            limits,
            begin: order(begin),
            end: order(end),
            error: order(error),
            timers,
            command: config.command.clone(),
            child: None,
            release: None,
            events: None,
            signals: None,
            kernel_report: KernelReport::default(),
            watch: config.watch.clone(),
            target_ended: false,
            verbose: config.verbose,
        };
        if config.signals {
            s.catch_signals().map_err(Diagnostic::bare)?;
        }
        Ok(s)
    }

    fn catch_signals(&mut self) -> Result<(), String> {
        use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
        let stopping = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            // A second signal kills at once.
            signal_hook::flag::register_conditional_default(sig, Arc::clone(&stopping))
                .map_err(|e| format!("cannot catch signal {sig}: {e}"))?;
        }
        let mut sigs = vec![SIGINT, SIGTERM, SIGHUP];
        if self.command.is_some() {
            sigs.push(SIGCHLD);
        }
        let mut signals = signal_hook::iterator::Signals::new(&sigs)
            .map_err(|e| format!("cannot catch signals: {e}"))?;
        self.signals = Some(signals.handle());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("stapxx-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig != SIGCHLD {
                        stopping.store(true, Ordering::SeqCst);
                    }
                    if tx.send(sig).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
        self.events = Some(rx);
        Ok(())
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The script's globals, e.g. to merge kernel map contents in before
    /// [`Session::finish`] runs the `end` probes.
    pub fn globals_mut(&mut self) -> &mut Globals {
        &mut self.interp.globals
    }

    /// The output, e.g. for a back end's own warnings.
    /// Print a hex user backtrace a kernel probe sent, symbolized.
    pub fn print_ustack(&mut self, style: super::ustack::Style, stack: &str) {
        let text = super::ustack::format(&mut self.interp.host, style, stack);
        self.interp.out.print(text.as_bytes());
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.interp.out
    }

    /// Start the `-c` command (held), run the `begin` probes, release the
    /// command. Afterwards the session is running unless a probe stopped it.
    pub fn start(&mut self) {
        self.start_with(|_| {}, |_| {});
    }

    /// As [`Session::start`]; `on_command` gets the `-c` command's pid
    /// while it is still held, before the `begin` probes run (the kernel
    /// side sets its `target()` there, so no early event is missed);
    /// `after_begin` runs once the `begin` probes are done, before their
    /// output is flushed and before the command is released (the kernel
    /// side starts its probes there).
    pub fn start_with(
        &mut self,
        on_command: impl FnOnce(u32),
        after_begin: impl FnOnce(&mut Globals),
    ) {
        if let Some(cmd) = self.command.clone() {
            match spawn_held(&cmd) {
                Ok((child, release)) => {
                    on_command(child.id());
                    self.interp.host.set_target(Some(child.id()));
                    self.child = Some(child);
                    self.release = Some(release);
                }
                Err(e) => {
                    self.interp
                        .out
                        .error(format!("cannot run command '{cmd}': {e}").as_bytes());
                    self.state = State::Error;
                }
            }
        }
        let begin = self.begin.clone();
        for (probe, pp) in &begin {
            if self.state != State::Starting {
                break;
            }
            self.handler_unflushed(*probe, pp);
        }
        if self.state == State::Starting {
            self.state = State::Running;
        }
        after_begin(&mut self.interp.globals);
        self.interp.out.flush();
        self.check_output();
        // The command may run now (or, if the session already stopped, die
        // at once in finish()).
        self.release = None;
        let now = Instant::now();
        for t in &mut self.timers {
            t.next = now.checked_add(t.period).unwrap_or(now);
        }
    }

    /// Run one handler and apply what it did to the session state.
    fn handler(&mut self, probe: usize, pp: &str) {
        self.handler_unflushed(probe, pp);
        self.interp.out.flush();
        self.check_output();
    }

    /// Stdout cannot be written (the reader went away, the disk is full):
    /// stop as a signal stops the session, as staprun stops when its
    /// output fails; the `end` probes still run.
    fn check_output(&mut self) {
        if self.interp.out.stdout_failure().is_some()
            && matches!(self.state, State::Starting | State::Running)
        {
            self.state = State::Stopping;
        }
    }

    /// A handler whose output stays buffered (the begin probes': it is
    /// shown once the kernel probes run, so "ready" lines mean ready).
    fn handler_unflushed(&mut self, probe: usize, pp: &str) {
        if let Err(e) = self.interp.run_probe(probe, pp) {
            self.report(&e);
            if self.interp.out.errors > self.limits.maxerrors {
                self.state = State::Error;
            }
        }
        if self.interp.exit_requested {
            self.interp.exit_requested = false;
            if matches!(self.state, State::Starting | State::Running) {
                self.state = State::Stopping;
            }
        }
    }

    /// Print an error as stap does (`ERROR: msg near TOKEN at FILE:L:C`).
    pub fn report(&mut self, e: &RtError) {
        let mut msg = e.msg.clone();
        if let Some(near) = e.near {
            if let Some(text) = self.near_text(near) {
                msg.extend_from_slice(b" near ");
                msg.extend_from_slice(text.as_bytes());
            }
        }
        self.interp.out.error(&msg);
    }

    fn near_text(&self, near: Near) -> Option<String> {
        describe_near(self.src?, near)
    }

    /// What the kernel probes counted, for the report at the end: lines to
    /// show before the totals, and the errors not already shown as
    /// `ERROR:` lines.
    pub fn set_kernel_report(&mut self, report: KernelReport) {
        self.kernel_report = report;
    }

    /// Stop the session as `exit()` does (a kernel probe asked for it).
    pub fn stop(&mut self) {
        if self.state == State::Running || self.state == State::Starting {
            self.state = State::Stopping;
        }
    }

    /// Stop after an error reported by a kernel probe.
    pub fn fail(&mut self) {
        self.state = State::Error;
    }

    /// When the next timer probe is due, if there is one.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.iter().map(|t| t.next).min()
    }

    /// Fire the timers due as of `asof` (now when `None`), then wait up
    /// to `max` (less if a timer is due sooner) for a signal or the `-c`
    /// command's exit. Returns whether the session is still running. A back
    /// end with its own event sources calls this in its loop with a short
    /// `max`, and with the instant it prepared the timers' globals for: a
    /// timer falling due just after that waits for the next step (and its
    /// own preparation) instead of running on stale globals.
    pub fn wait_step(&mut self, max: Duration, asof: Option<Instant>) -> bool {
        // (A back end's own output, printed since the last step.)
        self.interp.out.flush();
        self.check_output();
        if self.state != State::Running {
            return false;
        }
        // Timers that are due, earliest first (ties in script order).
        loop {
            let now = asof.unwrap_or_else(Instant::now);
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, t)| t.next <= now)
                .min_by_key(|(i, t)| (t.next, *i))
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let (probe, pp) = (self.timers[i].probe, self.timers[i].pp.clone());
            self.handler(probe, &pp);
            let t = &mut self.timers[i];
            t.next = next_deadline(t.next, t.period, Instant::now());
            // Busy timers must not starve signals.
            self.poll_events(Duration::ZERO);
            if self.state != State::Running {
                return false;
            }
        }
        if self.child_exited() || self.check_target() {
            self.state = State::Stopping;
            return false;
        }
        let now = Instant::now();
        let max = if self.watch.is_some() {
            max.min(WATCH_PERIOD)
        } else {
            max
        };
        let wait = self
            .timers
            .iter()
            .map(|t| t.next.saturating_duration_since(now))
            .min()
            .unwrap_or(max)
            .min(max);
        self.poll_events(wait);
        self.state == State::Running
    }

    /// Wait up to `wait` for a signal and act on it.
    fn poll_events(&mut self, wait: Duration) {
        let got = match &self.events {
            Some(rx) => match rx.recv_timeout(wait) {
                Ok(sig) => Some(sig),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                    None
                }
            },
            None => {
                std::thread::sleep(wait.min(Duration::from_millis(50)));
                None
            }
        };
        let stop = match got {
            Some(signal_hook::consts::SIGCHLD) => self.child_exited(),
            Some(_) => true,
            None => false,
        };
        if stop && self.state == State::Running {
            self.state = State::Stopping;
        }
    }

    /// Whether the `-c` command has exited; with `-v`, the first time,
    /// says so.
    fn child_exited(&mut self) -> bool {
        let Some(c) = &mut self.child else {
            return false;
        };
        let status = match c.try_wait() {
            Ok(None) => return false,
            Ok(Some(status)) => Some(status),
            Err(_) => None,
        };
        if self.verbose > 0 && matches!(self.state, State::Starting | State::Running) {
            let pid = c.id();
            let how = match status
                .map(|s| (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)))
            {
                Some((Some(code), _)) => format!("exited with status {code}"),
                Some((None, Some(sig))) => format!("was killed by signal {sig}"),
                _ => "ended".to_string(),
            };
            self.interp
                .out
                .warn(format!("the -c command (pid {pid}) {how}: ending the session").as_bytes());
        }
        true
    }

    /// Whether [`Session::check_target`] has seen the `-x` process end.
    pub fn target_ended(&self) -> bool {
        self.target_ended
    }

    /// Whether the `-x` process has exited or run exec() (then the
    /// session stops, once, with a `WARNING:` line saying which). Sticky.
    pub fn check_target(&mut self) -> bool {
        if self.target_ended {
            return true;
        }
        let Some(w) = &self.watch else {
            return false;
        };
        let fate = w.fate();
        if fate == Fate::Running {
            return false;
        }
        let msg = w.message(&fate);
        self.watch = None;
        self.target_ended = true;
        if matches!(self.state, State::Starting | State::Running) {
            if let Some(m) = msg {
                self.interp.out.warn(m.as_bytes());
            }
            self.state = State::Stopping;
        }
        true
    }

    /// Run until stopped.
    pub fn run(&mut self) {
        while self.wait_step(Duration::from_secs(3600), None) {}
    }

    /// `--interval`: run the `end` probes over one interval's values, as
    /// at the end of a run, and go on. (`exit()` in one ends the session,
    /// and the rest are left for the end.)
    pub fn end_interval(&mut self) {
        let end = self.end.clone();
        for (probe, pp) in &end {
            if self.state != State::Running {
                break;
            }
            self.handler(*probe, pp);
        }
        self.interp.out.flush();
    }

    /// Run the `end` (or, after errors, `error`) probes, print the error
    /// summary, flush; returns the exit status.
    pub fn finish(&mut self) -> i32 {
        if self.state != State::Error {
            self.state = State::Stopping;
            let end = self.end.clone();
            for (probe, pp) in &end {
                if self.state != State::Stopping {
                    break;
                }
                self.handler(*probe, pp);
            }
        }
        if self.state == State::Error {
            let error = self.error.clone();
            for (probe, pp) in &error {
                self.handler(*probe, pp);
            }
        }
        for line in std::mem::take(&mut self.kernel_report.lines) {
            self.interp.out.warn(line.as_bytes());
        }
        // Reads --skip-badvars hid are no errors, but they are told.
        let skipped_reads = self.interp.skipped_reads + self.kernel_report.skipped_reads;
        if skipped_reads > 0 {
            let line = crate::kernel::skipped_reads_line(skipped_reads);
            self.interp.out.warn(line.as_bytes());
        }
        let errors = self.interp.out.errors + self.kernel_report.errors;
        let skipped = self.kernel_report.skipped;
        if errors > 0 || skipped > 0 {
            self.interp
                .out
                .warn(format!("Number of errors: {errors}, skipped probes: {skipped}").as_bytes());
        }
        self.interp.out.flush();
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if let Some(h) = self.signals.take() {
            h.close();
        }
        // As a command-line tool killed by SIGPIPE (128 + 13) when the
        // reader went away; 1 for any other failed write, as for errors.
        match self.interp.out.stdout_failure() {
            Some(std::io::ErrorKind::BrokenPipe) => 141,
            Some(_) => 1,
            None if errors > 0 => 1,
            None => 0,
        }
    }
}

/// The deadline after `due` for a timer of `period`: one period later, or,
/// when that has passed already (a slow handler), the first one after
/// `now` on the same grid (missed ticks are skipped, not made up).
fn next_deadline(due: Instant, period: Duration, now: Instant) -> Instant {
    let p = period.as_nanos().max(1);
    let behind = now.saturating_duration_since(due).as_nanos();
    let ticks = (behind / p + 1).min(u128::from(u32::MAX)) as u32;
    period
        .checked_mul(ticks)
        .and_then(|d| due.checked_add(d))
        .unwrap_or_else(|| now.checked_add(period).unwrap_or(now))
}

/// Whether `cmd` has a shell control operator (`;`, `&`, `|`, parentheses,
/// backquotes, newline) outside quotes: then it is more than one command.
fn has_shell_operator(cmd: &str) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in cmd.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ';' | '&' | '|' | '(' | ')' | '`' | '\n' if !single && !double => return true,
            _ => {}
        }
    }
    false
}

/// One command (quoting, globs and redirections allowed): the shell can
/// `exec` it, so target() is the command itself, not a shell around it.
pub fn is_simple_command(cmd: &str) -> bool {
    let first_word = cmd.split_whitespace().next().unwrap_or("");
    !has_shell_operator(cmd) && !first_word.contains('=')
}

/// Start `cmd` through `/bin/sh`, held until the returned pipe end is
/// dropped: the shell first reads its fd 9 (the pipe's other end) to EOF.
/// (`Command::spawn` waits for the exec, so the hold cannot be in a
/// `pre_exec` hook.) Simple commands are exec'd by the shell, so the
/// child's pid is the command's.
fn spawn_held(cmd: &str) -> std::io::Result<(Child, PipeWriter)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (reader, writer) = std::io::pipe()?;
    let rfd = reader.as_raw_fd();
    let run = if is_simple_command(cmd) {
        format!("exec {cmd}")
    } else {
        cmd.to_string()
    };
    let script = format!("read _ <&9; exec 9<&-; {run}");
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(script);
    // SAFETY: the hook only calls dup2(2) and fcntl(2), which are
    // async-signal-safe, on a descriptor the child inherited.
    unsafe {
        c.pre_exec(move || {
            if rfd == 9 {
                let flags = libc::fcntl(9, libc::F_GETFD);
                if flags < 0 || libc::fcntl(9, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(rfd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn()?;
    drop(reader);
    Ok((child, writer))
}

/// Run a host-only program to the end: `begin`, timers until stopped,
/// `end`/`error`. Returns the exit status, or an error found before any
/// probe ran. Runs on its own thread with a large stack (script functions
/// recurse on it).
pub fn run(
    prog: &Program,
    config: Config,
    src: Option<&(dyn SourceInfo + Sync)>,
) -> Result<i32, Diagnostic> {
    if prog.probes.iter().any(|p| p.exec != Exec::Host) {
        return Err(Diagnostic::bare(
            "this script has kernel probes, which need the eBPF back end",
        ));
    }
    std::thread::scope(|scope| {
        let h = std::thread::Builder::new()
            .name("stapxx-host".into())
            .stack_size(256 << 20)
            .spawn_scoped(scope, move || -> Result<i32, Diagnostic> {
                let mut s = Session::new(prog, config, src)?;
                s.start();
                s.run();
                Ok(s.finish())
            })
            .map_err(|e| Diagnostic::bare(format!("cannot start the runtime thread: {e}")))?;
        h.join().unwrap_or_else(|_| {
            Err(Diagnostic::bare(
                "internal error: the runtime thread panicked",
            ))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_stay_on_the_grid() {
        let t0 = Instant::now();
        let p = Duration::from_millis(100);
        assert_eq!(next_deadline(t0, p, t0), t0 + p);
        assert_eq!(next_deadline(t0, p, t0 + Duration::from_millis(99)), t0 + p);
        // 250 ms late: the ticks at +100 and +200 are skipped.
        assert_eq!(
            next_deadline(t0, p, t0 + Duration::from_millis(250)),
            t0 + Duration::from_millis(300)
        );
        let far = next_deadline(t0, MAX_PERIOD, t0);
        assert!(far > t0);
    }
}
