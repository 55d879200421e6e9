//! Running `examples/lj-lua-stacks.sxx` (and the other example scripts)
//! on a live process, and reading what it printed: shared by the tests of
//! every LuaJIT target (our builds, embedders, neovim).
//!
//! Every run clears `DEBUGINFOD_URLS`: what a target's debug info is
//! (local, or none at all) is part of what a test checks, so no run may
//! fetch a debug file from a server the environment happens to name.

use std::ffi::OsStr;
use std::process::Command;

use super::workspace_root;

/// Sampling time of every run, in seconds.
pub const SECS: u32 = 2;

/// A 4000 Hz sampling probe (one sample per 250 µs on each CPU), for the
/// tests that measure shares: enough samples in two seconds even when the
/// target gets a fraction of a loaded machine.
pub const PROBE_4KHZ: &str = "probe=perf.sw.cpu_clock.sample(250000)";

/// `stapxx-rs ARGS` from the workspace root, with no debuginfod server.
fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"));
    cmd.current_dir(workspace_root()).env("DEBUGINFOD_URLS", "");
    cmd
}

/// Runs `script` (relative to the workspace) on `pid` for `secs` and returns
/// its stdout and stderr; it must succeed and report no probe errors.
pub fn run_script(script: &str, pid: u32, secs: u32, extra: &[&str]) -> (String, String) {
    let out = command()
        .args([
            script,
            "-x",
            &pid.to_string(),
            "--arg",
            &format!("time={secs}"),
        ])
        .args(extra.iter().flat_map(|a| ["--arg", a]))
        .output()
        .expect("run stapxx-rs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("error"), "stderr: {stderr}");
    (stdout, stderr)
}

/// Runs lj-lua-stacks on `pid` for [`SECS`] with `args` (`NAME=VALUE`
/// script arguments); checks stap++'s progress lines.
pub fn sample(pid: u32, args: &[&str]) -> (String, String) {
    let (out, err) = run_script("examples/lj-lua-stacks.sxx", pid, SECS, args);
    assert!(err.contains(&format!("Start tracing {pid} (")), "{err}");
    assert!(
        err.contains(&format!("Please wait for {SECS} seconds...")),
        "{err}"
    );
    assert!(err.contains("Time's up. Quitting now..."), "{err}");
    (out, err)
}

/// lj-lua-stacks on `pid` for [`SECS`] with `--arg min=0`, the `--arg`s
/// `args` and the options `opts`; it must succeed. Returns stdout and
/// stderr.
pub fn sample_with(pid: u32, args: &[&str], opts: &[&OsStr]) -> (String, String) {
    let out = command()
        .args(["examples/lj-lua-stacks.sxx", "-x", &pid.to_string()])
        .args(["--arg", &format!("time={SECS}"), "--arg", "min=0"])
        .args(args.iter().flat_map(|a| ["--arg", a]))
        .args(opts)
        .output()
        .expect("run stapxx-rs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (stdout, stderr)
}

/// The `N` of lj-lua-stacks' `Found N JITted samples.`
pub fn jitted(err: &str) -> u64 {
    err.lines()
        .find_map(|l| {
            l.split("Found ")
                .nth(1)?
                .strip_suffix(" JITted samples.")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no 'Found N JITted samples.' in {err}"))
}

/// Percent (one decimal) of `part` in `total`.
pub fn pct(part: u64, total: u64) -> f64 {
    assert!(total > 0);
    part as f64 * 100.0 / total as f64
}

/// Samples and share of the most frequent backtrace, which must be `want`.
pub fn assert_dominant(
    bts: &[(Vec<String>, u64)],
    want: &[String],
    min_pct: u64,
    err: &str,
) -> u64 {
    assert!(!bts.is_empty(), "no backtraces; stderr: {err}");
    let total: u64 = bts.iter().map(|b| b.1).sum();
    assert_eq!(bts[0].0, want, "dominant backtrace; all: {bts:#?}");
    assert!(
        bts[0].1 * 100 >= total * min_pct,
        "dominant backtrace has {} of {total} samples (want {min_pct}%): {bts:#?}",
        bts[0].1
    );
    total
}

/// lj-lua-stacks' stderr as stap++ prints it, and nothing else, for a run
/// of [`SECS`] on `pid` running `exe` with `jitted` JIT samples.
pub fn stap_pp_stderr(pid: u32, exe: &std::path::Path, jitted: u64) -> String {
    format!(
        "WARNING: Start tracing {pid} ({})\n\
         WARNING: Please wait for {SECS} seconds...\n\
         WARNING: Time's up. Quitting now...\n\
         WARNING: Found {jitted} JITted samples.\n",
        exe.display()
    )
}
