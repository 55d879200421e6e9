//! Flame graphs from stap backtrace output (issue 7).
//!
//! stap output (frame lines innermost first, then `\t<count>`)
//!   -> [`collect`]: distinct backtraces and counts (incremental)
//!      ([`native`]: C frames, `0x4005d0 : main+0x1c/0x30 [/bin/foo]` ->
//!      `main`, named here already and coloured as C)
//!   -> [`lua`]: frame names (`@file.lua:LINE` -> `mod:func`), kinds
//!      ([`nesting`] keeps pathological sources away from the parser)
//!   -> [`fold`]: folded stacks, root first (`a;b;c 12`)
//!   -> [`svg`]: the SVG, drawn by inferno, coloured by frame kind
//!
//! Two ways in:
//!
//! * live: `stapxx-rs SCRIPT ... --flamegraph OUT.svg --folded OUT.folded`.
//!   [`begin_live`] (called by `main` before the passes) asks the runtime's
//!   [`Output::stdio`](crate::runtime::Output::stdio) to copy the script's
//!   stdout into a [`collect::Collector`]; the script's output still goes
//!   to stdout unchanged. [`finish_live`] (called by the driver at the end
//!   of pass 5) names, folds and writes the files. Lua sources are read
//!   through `/proc/PID/root` of the traced process, or `--lua-root DIR`.
//! * saved output: `stapxx-rs flamegraph [INPUT] [-o OUT] [--folded]
//!   [--lua-root DIR] [--luajit PATH] [--title TEXT]` ([`main`]).
//!
//! Either way, the same input gives the same files, byte for byte (for
//! `builtin#N` frames, named by [`ffnames`]: given the same LuaJIT, which
//! a live run finds in the traced process, [`fflookup`]).

pub mod collect;
pub mod fflookup;
pub mod ffnames;
pub mod fold;
pub mod lua;
pub mod native;
pub mod nesting;
pub mod pprof;
pub mod pyroscope;
pub mod svg;

use crate::cli::{FlameCli, Options};
use crate::runtime::output::{set_stdout_tee, StdoutTee};
use collect::{Backtraces, Collector};
use fflookup::FastLookup;
use fold::Folded;
use lua::{Namer, SourceRoot};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
pub use svg::SvgOptions;

/// Name and fold backtraces: the folded stacks, and the warning about
/// unreadable Lua sources (one for all of them), if any. `fast` names
/// `builtin#N` frames.
pub fn fold(
    bt: &Backtraces,
    root: SourceRoot,
    fast: Option<Arc<FastLookup>>,
) -> (Folded, Option<String>) {
    let mut namer = Namer::new(root).with_fast_names(fast);
    let folded = Folded::new(bt, &mut namer);
    (folded, namer.warning())
}

/// The SVG of `folded` in memory.
pub fn svg_bytes(folded: &Folded, opts: &SvgOptions) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    svg::write_svg(folded, opts, &mut out)?;
    Ok(out)
}

// --- live runs ----------------------------------------------------------------

/// A live collection: the collector the running script's stdout is copied
/// into, where its outputs go, and since when it collects.
struct Live {
    collector: Arc<Mutex<Collector>>,
    outputs: Outputs,
    /// `--interval`: the number of the next interval's files (from 1).
    interval: Option<u32>,
    /// The collection's start: wall clock (ns since the epoch) and monotonic.
    since: (i64, std::time::Instant),
    /// The traced process (its root holds the Lua sources), once known.
    pid: Option<u32>,
    /// `--pyroscope`: pushes each profile in the background.
    pusher: Option<pyroscope::Pusher>,
    /// Names for `builtin#N` frames, from the traced LuaJIT (once known).
    fast: Option<Arc<FastLookup>>,
}

/// The files a live run writes (copied from the options at the start).
struct Outputs {
    flamegraph: Option<std::path::PathBuf>,
    folded: Option<std::path::PathBuf>,
    pprof: Option<std::path::PathBuf>,
    lua_root: Option<std::path::PathBuf>,
}

static LIVE: Mutex<Option<Live>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Option<Live>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn wants_flame(opts: &Options) -> bool {
    opts.cli.flamegraph.is_some()
        || opts.cli.folded.is_some()
        || opts.cli.pprof.is_some()
        || opts.cli.pyroscope.is_some()
}

fn epoch_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn now() -> (i64, std::time::Instant) {
    (epoch_ns(), std::time::Instant::now())
}

/// timer.profile's period: one tick of CONFIG_HZ.
fn tick_ns() -> i64 {
    1_000_000_000 / crate::kernel::kernel_hz().max(1) as i64
}

/// The pprof profile of `bt`, gzipped; frames named by `namer` (the one
/// that folded them, so each Lua source is read and parsed once).
fn pprof_bytes(bt: &Backtraces, namer: &mut Namer, t: pprof::Timing) -> Result<Vec<u8>, String> {
    let p = pprof::profile(bt, namer, t);
    pprof::gzipped(&p).map_err(|e| format!("encoding the pprof profile failed: {e}"))
}

/// `path` with the interval's number before its extensions:
/// `a.svg` -> `a.3.svg`, `p.pb.gz` -> `p.3.pb.gz`, `out` -> `out.3`.
pub fn numbered(path: &Path, n: u32) -> std::path::PathBuf {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return path.with_extension(n.to_string());
    };
    // A leading dot belongs to the name (`.prof` -> `.prof.3`).
    let cut = name[1..].find('.').map(|i| i + 1);
    let new = match cut {
        Some(i) => format!("{}.{n}{}", &name[..i], &name[i..]),
        None => format!("{name}.{n}"),
    };
    path.with_file_name(new)
}

/// Before the passes: when `--flamegraph`/`--folded`/`--pprof` is given,
/// start copying the script's stdout into a collector.
pub fn begin_live(opts: &Options) {
    if !wants_flame(opts) {
        return;
    }
    let cli = &opts.cli;
    if cli.pass < 5 || cli.list_args || cli.dump_src {
        crate::ewriteln!(
            "WARNING: --flamegraph/--folded/--pprof/--pyroscope need a run (pass 5): no flame \
             graph is written"
        );
        return;
    }
    let c = Arc::new(Mutex::new(Collector::new()));
    let tee: StdoutTee = c.clone();
    set_stdout_tee(Some(tee));
    *live() = Some(Live {
        collector: c,
        outputs: Outputs {
            flamegraph: cli.flamegraph.clone(),
            folded: cli.folded.clone(),
            pprof: cli.pprof.clone(),
            lua_root: cli.lua_root.clone(),
        },
        interval: cli.interval.map(|_| 1),
        since: now(),
        pid: None,
        pusher: None,
        fast: None,
    });
}

/// Just before pass 5 runs: the traced process (`pid`, for its Lua
/// sources) and executable (`exe`, the default `--pyroscope-app`); starts
/// the pusher. Collection restarts here, so profiles cover the run only.
pub fn start_run(opts: &Options, pid: Option<u32>, exe: Option<&Path>) -> Result<(), String> {
    let mut guard = live();
    let Some(l) = guard.as_mut() else {
        return Ok(());
    };
    l.pid = pid;
    l.since = now();
    l.fast = Some(FastLookup::for_run(pid, exe));
    if let Some(p) = pyroscope::Pusher::from_options(opts, exe) {
        l.pusher = Some(p?);
    }
    Ok(())
}

/// `--interval`: an interval's `end` probes have printed its backtraces:
/// write them to the next numbered files and collect afresh. `pid`: as
/// A no-op without flame outputs.
pub fn end_interval() -> Result<(), String> {
    let mut guard = live();
    let Some(l) = guard.as_mut() else {
        return Ok(());
    };
    let bt = l.collector.lock().unwrap_or_else(|e| e.into_inner()).take();
    let since = std::mem::replace(&mut l.since, now());
    let n = l.interval.unwrap_or(1);
    l.interval = Some(n + 1);
    emit(l, &bt, since, Some(n))
}

/// After pass 5: fold what the script printed and write the requested
/// files (with `--interval`, the last interval's); push the last profile
/// and wait for the pushes within [`pyroscope::END_GRACE`].
pub fn finish_live(opts: &Options) -> Result<(), String> {
    let Some(mut l) = live().take() else {
        return Ok(());
    };
    set_stdout_tee(None);
    let bt = l.collector.lock().unwrap_or_else(|e| e.into_inner()).take();
    let since = l.since;
    let written = emit(&l, &bt, since, l.interval);
    if let Some(p) = l.pusher.take() {
        pyroscope::print_report(opts, &p.finish(pyroscope::END_GRACE));
    }
    written
}

/// Write `bt`, collected since `since`, to every requested output (and
/// push it); numbered `n` with `--interval`.
fn emit(
    l: &Live,
    bt: &Backtraces,
    since: (i64, std::time::Instant),
    n: Option<u32>,
) -> Result<(), String> {
    let out = &l.outputs;
    let name = |p: &Path| match n {
        Some(n) => numbered(p, n),
        None => p.to_path_buf(),
    };
    let root = match (&out.lua_root, l.pid) {
        (Some(dir), _) => SourceRoot::Dir(dir.clone()),
        (None, Some(pid)) => SourceRoot::Process(pid),
        (None, None) => SourceRoot::Host,
    };
    let mut namer = Namer::new(root).with_fast_names(l.fast.clone());
    let folded = Folded::new(bt, &mut namer);
    if let Some(w) = namer.warning() {
        crate::ewriteln!("WARNING: {w}");
    }
    if out.pprof.is_some() || l.pusher.is_some() {
        let t = pprof::Timing {
            period_ns: tick_ns(),
            time_nanos: since.0,
            duration_nanos: since.1.elapsed().as_nanos() as i64,
        };
        let bytes = pprof_bytes(bt, &mut namer, t)?;
        if let Some(path) = &out.pprof {
            write_file(&name(path), &bytes)?;
        }
        if let Some(p) = &l.pusher {
            let from = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(t.time_nanos as u64);
            let until = from + std::time::Duration::from_nanos(t.duration_nanos as u64);
            p.submit(bytes, from, until);
        }
    }
    if folded.stacks.is_empty() {
        let which = n.map_or(String::new(), |n| format!(" in interval {n}"));
        crate::ewriteln!(
            "WARNING: the run printed no backtraces{which} (frame lines, each backtrace ended \
             by a line with its count): the flame graph is empty"
        );
    }
    if let Some(path) = &out.folded {
        write_file(&name(path), folded.text().as_bytes())?;
    }
    if let Some(path) = &out.flamegraph {
        let bytes = render_svg(&folded, &SvgOptions::default())?;
        write_file(&name(path), &bytes)?;
    }
    Ok(())
}

/// The SVG; for no stacks, inferno's "no valid input" picture.
fn render_svg(folded: &Folded, opts: &SvgOptions) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match svg::write_svg(folded, opts, &mut out) {
        Ok(()) => Ok(out),
        Err(_) if folded.stacks.is_empty() => Ok(out),
        Err(e) => Err(format!("drawing the flame graph failed: {e}")),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// --- the `flamegraph` subcommand ------------------------------------------------

/// `stapxx-rs flamegraph ARGS...` (the arguments after the word
/// `flamegraph`); returns the exit code.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let cli = crate::cli::parse_flame_args(args.iter().cloned());
    match run_subcommand(&cli) {
        Ok(()) => 0,
        Err(msg) => {
            crate::ewriteln!("stapxx-rs: {msg}");
            1
        }
    }
}

fn run_subcommand(cli: &FlameCli) -> Result<(), String> {
    let input = cli.input.as_ref().filter(|p| p.as_os_str() != "-");
    let bt = match input {
        Some(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            read_backtraces(f).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => read_backtraces(std::io::stdin().lock())
            .map_err(|e| format!("cannot read standard input: {e}"))?,
    };
    let name = input.map_or_else(|| "standard input".to_string(), |p| p.display().to_string());
    if bt.stacks.is_empty() {
        return Err(format!(
            "no backtraces in {name} (expected frame lines, each backtrace ended by a line \
             with its count)"
        ));
    }
    let root = match &cli.lua_root {
        Some(dir) => SourceRoot::Dir(dir.clone()),
        None => SourceRoot::Host,
    };
    let fast = Some(match &cli.luajit {
        Some(path) => FastLookup::for_binary(path)?,
        None => FastLookup::unavailable(
            "to name them, give the LuaJIT that ran (its executable or libluajit, with debug \
             info) as --luajit PATH",
        ),
    });
    let mut namer = Namer::new(root).with_fast_names(fast);
    let folded = Folded::new(&bt, &mut namer);
    if let Some(w) = namer.warning() {
        crate::ewriteln!("WARNING: {w}");
    }
    let bytes = if cli.pprof {
        let period = cli.period_ns.map_or_else(tick_ns, |p| p as i64);
        let t = pprof::Timing {
            period_ns: period,
            time_nanos: 0,
            duration_nanos: 0,
        };
        pprof_bytes(&bt, &mut namer, t)?
    } else if cli.folded {
        folded.text().into_bytes()
    } else {
        let mut opts = SvgOptions::default();
        if let Some(t) = &cli.title {
            opts.title = t.clone();
        }
        render_svg(&folded, &opts)?
    };
    match &cli.output {
        Some(path) => write_file(path, &bytes),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write the output: {e}"))
        }
    }
}

/// Read backtrace output in chunks (the whole text is never kept).
fn read_backtraces<R: Read>(mut r: R) -> std::io::Result<Backtraces> {
    let mut c = Collector::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => c.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(c.finish())
}

#[cfg(test)]
mod tests {
    use super::numbered;
    use std::path::Path;

    #[test]
    fn interval_numbers_go_before_the_extensions() {
        let n = |p: &str| numbered(Path::new(p), 3).display().to_string();
        assert_eq!(n("a.svg"), "a.3.svg");
        assert_eq!(n("dir.d/p.pb.gz"), "dir.d/p.3.pb.gz");
        assert_eq!(n("out"), "out.3");
        assert_eq!(n(".prof"), ".prof.3");
        assert_eq!(n(".prof.gz"), ".prof.3.gz");
    }
}
