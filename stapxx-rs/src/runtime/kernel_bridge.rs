//! Pass 5 with kernel probes: the eBPF programs ([`crate::kernel`]) and the
//! host session ([`Session`]) side by side.
//!
//! The kernel side is attached before the `begin` probes run (as stap
//! registers every probe before `begin`). While the session runs, kernel
//! output records are printed as they arrive, in order with host output;
//! before a timer probe and before the `end` probes, the kernel's maps are
//! read into the host globals, so host probes see what kernel probes wrote.
//! What host probes change goes back to the kernel maps after each probe
//! (see `push`: kernel updates made in between are kept).

use super::interp::{Near, RtError};
use super::session::{Config, KernelReport, Session};
use super::values::{Globals, StatPartial, Store, Value};
use super::SourceInfo;
use crate::codegen::layout::ErrKind;
use crate::codegen::Compiled;
use crate::ir::{GlobalId, Program};
use crate::kernel::{self, GlobalValue, KernelSession, Record};
use crate::target::TargetInfo;
use grammar::Diagnostic;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Run a program that has kernel probes; returns the exit status.
pub fn run(
    prog: &Program,
    config: Config,
    src: Option<&(dyn SourceInfo + Sync)>,
    compiled: &Compiled,
    target: Option<&TargetInfo>,
) -> Result<i32, Diagnostic> {
    let maxerrors = config.limits.maxerrors;
    let verbose = config.verbose;
    let mut intervals = config.interval.map(super::interval::Clock::new);
    let additive = additive_globals(prog);
    let mut ks = KernelSession::start(compiled, prog, target)?;
    // A command whose modules the probes look up (user stacks, symbol
    // names) is held at its entry point until their tables are placed
    // (runtime/entry_hold.rs).
    let hold_exe = config
        .command_exe
        .clone()
        .filter(|_| ks.tables_unplaced(target))
        .filter(|_| {
            config
                .command
                .as_deref()
                .is_some_and(super::session::is_simple_command)
        });
    if ks.tables_unplaced(target) && hold_exe.is_none() && config.command_exe.is_some() {
        warn_unplaced(
            "the command is more than one program, and only one can be held at its start",
        );
    }
    let mut s = Session::new(prog, config, src)?;
    // `-c CMD`: the command's pid is target() before it may run.
    // Then, once the begin probes are done (and before their output is
    // seen or the command released), what they wrote goes to the kernel
    // and the kernel probes start.
    let mut set = Ok(());
    let mut started = Ok(());
    let mut last = Vec::new();
    let mut hold = None;
    s.start_with(
        |pid| {
            set = ks.set_target(pid);
            if let Some(exe) = &hold_exe {
                match super::entry_hold::EntryHold::arm(exe, pid) {
                    Ok(h) => hold = Some((pid, h)),
                    Err(e) => warn_unplaced(&e),
                }
            }
        },
        |g| {
            push(&ks, prog, &additive, g, None);
            last = g.stores.clone();
            started = ks.set_running(true);
        },
    );
    set?;
    started?;
    if let Some((pid, h)) = hold {
        let t0 = Instant::now();
        if h.wait() {
            let t1 = Instant::now();
            let placed = TargetInfo::from_pid(pid)
                .map_err(|e| e.to_string())
                .and_then(|t| ks.place_command_tables(&t));
            if let Err(e) = placed {
                warn_unplaced(&e);
            }
            if verbose > 0 {
                crate::ewriteln!(
                    "-c command at its entry point {:.1} ms after its release, held {:.1} ms while its tables were placed",
                    (t1 - t0).as_secs_f64() * 1e3,
                    t1.elapsed().as_secs_f64() * 1e3
                );
            }
        } else {
            warn_unplaced("the command did not reach its entry point");
        }
        h.release();
    }
    let tick = Duration::from_millis(20);
    let mut failed = false;
    // Kernel errors shown as `ERROR:` lines so far.
    let mut shown = 0u64;
    let mut countdown = Countdown::new(prog);
    // The error counts as of the last look that found the `-x` process
    // still running its program. When it exits or runs exec(), probes
    // caught in between fault on its vanished memory: those faults are the
    // target's end, not the script's errors, so they neither end the
    // session as errors nor count in the report.
    let mut before_end = ks.errors();
    loop {
        // Print kernel output until the next host timer is due (at most a
        // tick, to see signals and the target's end).
        let now = Instant::now();
        let until = s
            .next_timer()
            .into_iter()
            .chain(intervals.as_ref().map(|c| c.deadline()))
            .min()
            .map_or(tick, |t| t.saturating_duration_since(now))
            .min(tick);
        shown += pump(&mut ks, &mut s, Some(until));
        // exit() in a kernel probe, also when its record found no room.
        if ks.exit_requested() {
            s.stop();
        }
        // Read before the look at the target: if it is still running its
        // program after this, every one of these came before its end.
        let errors = ks.errors();
        // The traced process exited or ran exec(): the session ends (with
        // a line saying so), its end probes run and the report is printed.
        let ended = s.check_target();
        if !ended {
            before_end = errors;
        }
        // More probe errors than MAXERRORS (default 0) end the session, as
        // in stap: the last one is shown with its place in the script.
        if !failed && !ended && kernel::error_totals(&errors).0 > maxerrors {
            failed = true;
            // (error() has shown its own message.)
            if let Some((kind, tag)) = ks
                .last_error()
                .filter(|(k, _)| *k != ErrKind::Script as usize)
            {
                let near = compiled.spans.get(tag).map(|sp| Near::At(*sp));
                s.report(&RtError::new(ErrKind::message(kind), near));
                shown += 1;
            }
            s.fail();
        }
        // An interval ends: its statistics are reported and start afresh.
        if let Some(c) = intervals.as_mut() {
            if s.state() == super::State::Running && c.take_due(Instant::now()) {
                shown += pump(&mut ks, &mut s, Some(Duration::ZERO));
                end_interval(&mut ks, &mut s, prog, &mut last, verbose);
                push(&ks, prog, &additive, s.globals_mut(), Some(&last));
                last = s.globals_mut().stores.clone();
            }
        }
        // The timers due now see the kernel's maps as of now; one that
        // falls due meanwhile waits for the next turn, so no host probe
        // reads globals older than its deadline.
        let asof = Instant::now();
        if s.next_timer().is_some_and(|t| t <= asof) {
            merge(&ks, prog, s.globals_mut());
            // Only what a host probe changes after this goes back.
            last = s.globals_mut().stores.clone();
        }
        let running = s.wait_step(Duration::ZERO, Some(asof));
        // Globals a timer probe changed go to the kernel probes, also from
        // the turn that ended the session (a timer that printed a count,
        // reset it and called exit()): the kernel's values are read back
        // for the end probes below, and the reset must be in them.
        push(&ks, prog, &additive, s.globals_mut(), Some(&last));
        last = s.globals_mut().stores.clone();
        if !running {
            break;
        }
        countdown.tick();
    }
    countdown.clear();
    // Stop the kernel probes, let any handler already past the check
    // finish (they run for microseconds; stap waits the same way), then
    // read what they left.
    let _ = ks.set_running(false);
    std::thread::sleep(Duration::from_millis(20));
    shown += pump(&mut ks, &mut s, None);
    merge(&ks, prog, s.globals_mut());
    let errors = if s.target_ended() {
        before_end
    } else {
        ks.errors()
    };
    let lost = ks.lost(prog.probes.len());
    if let (Some(st), true) = (ks.unwind_stats(), verbose > 0) {
        crate::ewriteln!("{}", crate::unwind::stats_line(&st));
    }
    drop(ks);
    // Kernel errors already shown as `ERROR:` lines (error(), the one that
    // ended the session) are counted once.
    let (total, skipped) = kernel::error_totals(&errors);
    let mut lines = lost_lines(prog, &lost, compiled.maps.output_buffer, src);
    lines.extend(kernel::error_lines(&errors));
    s.set_kernel_report(KernelReport {
        lines,
        errors: total.saturating_sub(shown),
        skipped,
        skipped_reads: kernel::skipped_reads(&errors),
    });
    let code = s.finish();
    s.output().flush();
    Ok(code)
}

/// The report of output records the kernel probes could not send: the
/// total, then (with several handlers losing some) each handler's share.
fn lost_lines(
    prog: &Program,
    lost: &[u64],
    buffer: u32,
    src: Option<&(dyn SourceInfo + Sync)>,
) -> Vec<String> {
    let total: u64 = lost.iter().sum();
    if total == 0 {
        return Vec::new();
    }
    let mb = buffer >> 20;
    let mut lines = vec![format!(
        "{total} output records lost: the output fell behind the probes \
         (a slow or stopped reader); `-s MB` sets the buffer, now {mb} MB"
    )];
    let losers: Vec<usize> = (0..lost.len()).filter(|&i| lost[i] > 0).collect();
    if losers.len() > 1 {
        for i in losers {
            let p = &prog.probes[i];
            let at = src
                .and_then(|s| s.position(p.span.file, p.span.start))
                .map(|pos| format!(" at {pos}"))
                .unwrap_or_default();
            lines.push(format!("  {} of them by probe {}{at}", lost[i], p.pp));
        }
    }
    lines
}

/// While a timed run waits (a `timer.s/ms` probe that calls `exit()`),
/// a one-line countdown on stderr when it is a terminal; nothing otherwise.
struct Countdown {
    end: Option<Instant>,
    shown: Option<u64>,
}

impl Countdown {
    fn new(prog: &Program) -> Countdown {
        use std::io::IsTerminal;
        let end = if std::io::stderr().is_terminal() {
            timed_exit(prog).map(|d| Instant::now() + d)
        } else {
            None
        };
        Countdown { end, shown: None }
    }

    fn tick(&mut self) {
        let Some(end) = self.end else { return };
        let left = end.saturating_duration_since(Instant::now()).as_secs() + 1;
        if self.shown != Some(left) {
            crate::ewrite!("\rstapxx-rs: {left} s left ");
            self.shown = Some(left);
        }
    }

    fn clear(&mut self) {
        if self.shown.is_some() {
            crate::ewrite!("\r\x1b[K");
            self.shown = None;
        }
    }
}

/// The period of the earliest host timer probe that calls `exit()`.
fn timed_exit(prog: &Program) -> Option<Duration> {
    use crate::ir::{Builtin, ExprKind};
    prog.probes
        .iter()
        .filter_map(|p| {
            let mut exits = false;
            for st in &p.body {
                crate::ir::print::walk_stmt(st, &mut |e| {
                    if matches!(e.kind, ExprKind::Builtin(Builtin::Exit, _)) {
                        exits = true;
                    }
                });
            }
            let d = p.sites.iter().find_map(|s| match s.kind {
                crate::probes::SiteKind::Timer(d) => Some(d),
                _ => None,
            })?;
            exits.then_some(d)
        })
        .min()
}

/// Print what the kernel probes sent and act on `exit()`; returns how many
/// `error()` records it showed (each is a probe error the kernel counted
/// too: whether it ends the session is MAXERRORS's business).
fn pump(ks: &mut KernelSession, s: &mut Session<'_>, wait: Option<Duration>) -> u64 {
    let mut stop = false;
    let mut errors = 0;
    let mut handle = |r: Record, s: &mut Session<'_>| match r {
        Record::Print(b) => s.output().print(&b),
        Record::Ustack(style, stack) => s.print_ustack(style, &stack),
        Record::Kstack(style, stack) => s
            .output()
            .print(crate::runtime::ustack::format_kernel(style, &stack).as_bytes()),
        Record::Warn(m) => s.output().warn(m.as_bytes()),
        Record::System(cmd) => s.output().system(&cmd),
        Record::Error(m) => {
            s.output().error(m.as_bytes());
            errors += 1;
        }
        Record::Exit => stop = true,
    };
    match wait {
        Some(t) => ks.poll(t, |r| handle(r, s)),
        None => ks.drain(|r| handle(r, s)),
    }
    if stop {
        s.stop();
    }
    errors
}

/// Send host-written scalars and array elements (those that differ from
/// `before`, or all non-empty ones) to the kernel's maps. Statistics stay
/// apart: the host's and the kernel's partials are merged on reads.
fn push(
    ks: &KernelSession,
    prog: &Program,
    additive: &HashSet<GlobalId>,
    g: &mut Globals,
    before: Option<&Vec<Store>>,
) {
    for (i, st) in g.stores.iter().enumerate() {
        let id = GlobalId(i as u32);
        let old = before.and_then(|b| b.get(i));
        match st {
            Store::Scalar(v) => {
                let (changed, read) = match old {
                    Some(Store::Scalar(o)) => (o != v, Some(kv(o))),
                    _ => (*v != Value::zero(prog.globals[i].ty), None),
                };
                if changed {
                    let additive = additive.contains(&id);
                    let _ = ks.write_scalar(id, &kv(v), read.as_ref(), additive);
                }
            }
            Store::Array(a) => {
                for (k, v) in a.iter() {
                    let same = matches!(old, Some(Store::Array(o)) if o.get(k) == Some(v));
                    if !same {
                        let key: Vec<kernel::Value> = k.iter().map(kv).collect();
                        let _ = ks.write_element(id, &key, &kv(v));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Scalar globals the kernel probes change only by adding (`g++`, `g += n`
/// as statements, which are atomic adds). A host write to one of them is
/// sent as the difference to the value it read, so kernel increments made
/// meanwhile are kept: as if the host probe ran first, then the kernel
/// probes. Any other global the kernel also writes keeps the kernel's
/// value when it changed since the host read it.
pub fn additive_globals(prog: &Program) -> HashSet<GlobalId> {
    use crate::ir::{Exec, ExprKind, LongOp, Place, Stmt, StmtKind};
    let mut adds: HashMap<GlobalId, usize> = HashMap::new();
    let mut writes: HashMap<GlobalId, usize> = HashMap::new();
    fn stmts(
        ss: &[Stmt],
        adds: &mut HashMap<GlobalId, usize>,
        writes: &mut HashMap<GlobalId, usize>,
    ) {
        for s in ss {
            match &s.kind {
                StmtKind::Expr(e) => match &e.kind {
                    ExprKind::Crement {
                        place: Place::Global(g),
                        ..
                    }
                    | ExprKind::AssignOp(Place::Global(g), LongOp::Add | LongOp::Sub, _) => {
                        *adds.entry(*g).or_default() += 1
                    }
                    _ => {}
                },
                StmtKind::Delete(Place::Global(g)) => *writes.entry(*g).or_default() += 1,
                StmtKind::Block(b) => stmts(b, adds, writes),
                StmtKind::If {
                    then, otherwise, ..
                } => {
                    stmts(then, adds, writes);
                    stmts(otherwise, adds, writes);
                }
                StmtKind::Loop { body, .. } => stmts(body, adds, writes),
                StmtKind::Foreach(f) => stmts(&f.body, adds, writes),
                StmtKind::Try { body, handler, .. } => {
                    stmts(body, adds, writes);
                    stmts(handler, adds, writes);
                }
                _ => {}
            }
        }
    }
    let kernel_bodies = prog
        .probes
        .iter()
        .filter(|p| p.exec == Exec::Kernel)
        .map(|p| &p.body)
        .chain(prog.functions.iter().map(|f| &f.body));
    for body in kernel_bodies {
        stmts(body, &mut adds, &mut writes);
        for s in body {
            crate::ir::print::walk_stmt(s, &mut |e| match &e.kind {
                ExprKind::Crement {
                    place: Place::Global(g),
                    ..
                }
                | ExprKind::Assign(Place::Global(g), _)
                | ExprKind::AssignOp(Place::Global(g), _, _) => *writes.entry(*g).or_default() += 1,
                _ => {}
            });
        }
    }
    adds.into_iter()
        .filter(|(g, n)| writes.get(g).copied().unwrap_or(0) == *n)
        .map(|(g, _)| g)
        .collect()
}

fn kv(v: &Value) -> kernel::Value {
    match v {
        Value::Long(n) => kernel::Value::Long(*n),
        Value::Str(b) => kernel::Value::Str(String::from_utf8_lossy(b).into_owned()),
    }
}

fn value(v: kernel::Value) -> Value {
    match v {
        kernel::Value::Long(n) => Value::Long(n),
        kernel::Value::Str(s) => Value::Str(s.into_bytes()),
    }
}

/// One CPU's share of a kernel statistic as a host partial (same layout).
fn partial(st: kernel::Stat) -> StatPartial {
    StatPartial {
        count: st.count,
        sum: st.sum,
        min: st.min,
        max: st.max,
        avg_s: st.avg_s,
        m2: st.m2,
        variance_s: st.variance_s,
        log: st.log,
        linear: st.linear,
    }
}

/// `--interval` (`runtime/interval.rs`): the kernel probes switch to fresh
/// statistics; the `end` probes report the interval's over the host's
/// copy, whose statistics then start afresh too. `last` becomes the
/// globals as read, so only what the end probes change goes back.
fn end_interval(
    ks: &mut KernelSession,
    s: &mut Session<'_>,
    prog: &Program,
    last: &mut Vec<Store>,
    verbose: u8,
) {
    let t0 = Instant::now();
    let old = match ks.flip_generation() {
        Ok(g) => g,
        Err(e) => {
            s.output()
                .warn(format!("--interval: cannot switch statistics: {e}").as_bytes());
            return;
        }
    };
    let t1 = Instant::now();
    merge_rows(s.globals_mut(), ks.read_globals_of(prog, old));
    let t2 = Instant::now();
    *last = s.globals_mut().stores.clone();
    s.end_interval();
    if let Err(e) = crate::flame::end_interval() {
        s.output().warn(e.as_bytes());
    }
    let t3 = Instant::now();
    s.globals_mut().reset_stats();
    ks.clear_generation(old);
    if verbose > 0 {
        let ms = |a: Instant, b: Instant| b.duration_since(a).as_secs_f64() * 1e3;
        crate::ewriteln!(
            "interval ended in {:.1} ms: switch and grace period {:.1} ms, reading the \
             statistics {:.1} ms, end probes and outputs {:.1} ms, emptying {:.1} ms",
            ms(t0, Instant::now()),
            ms(t0, t1),
            ms(t1, t2),
            ms(t2, t3),
            ms(t3, Instant::now())
        );
    }
}

/// Copy the kernel's globals into the host's.
fn merge(ks: &KernelSession, prog: &Program, g: &mut Globals) {
    merge_rows(g, ks.read_globals(prog));
}

fn merge_rows(g: &mut Globals, rows: Vec<(GlobalId, GlobalValue)>) {
    g.clear_merged();
    for (id, val) in rows {
        let GlobalId(_) = id;
        match val {
            GlobalValue::Scalar(v) => {
                let _ = g.set_scalar(id, value(v));
            }
            GlobalValue::Array(rows) => {
                for (k, v) in rows {
                    let key = k.into_iter().map(value).collect();
                    let _ = g.set_element(id, key, value(v));
                }
            }
            GlobalValue::Stats(rows) => {
                for (k, cpus) in rows {
                    let key: Option<Vec<Value>> = if k.is_empty() {
                        None
                    } else {
                        Some(k.into_iter().map(value).collect())
                    };
                    for st in cpus {
                        let _ = g.add_stat_partial(id, key.clone(), partial(st));
                    }
                }
            }
        }
    }
}

/// Why a `-c` command's user stacks cannot be unwound beyond their first
/// frame nor named in the kernel: said once (the addresses still print).
fn warn_unplaced(why: &str) {
    crate::ewriteln!(
        "WARNING: in the -c command, user backtraces give only the probed frame and symbols in kernel probes only addresses: {why}"
    );
}
