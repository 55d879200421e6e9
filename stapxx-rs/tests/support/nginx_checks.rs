//! What the nginx tests check, whichever nginx runs (our builds of
//! [`super::nginx`], Debian's packages of [`super::debian_nginx`]): that
//! every request was served, and that lj-lua-stacks finds the hot
//! handler's frames on one worker (`-x`) and on every worker (`--master`).

use std::sync::MutexGuard;
use std::time::Duration;

use super::nginx::{self, Nginx, Server, Wrk, WrkResult};
use super::session::{run, strings};

pub use super::lj_stacks::SECS;

/// The serializing lock (uprobes fire for every process of an executable,
/// the CPUs are shared with wrk, and the leftover check must see only one
/// test's objects) and the nginx `get` gives, when this test can run.
pub fn setup(
    get: impl FnOnce() -> Option<&'static Nginx>,
) -> Option<(MutexGuard<'static, ()>, &'static Nginx)> {
    let guard = super::need_bpf()?;
    if !super::have_tool("wrk") {
        super::missing("wrk (package wrk)");
        return None;
    }
    let ng = get()?;
    Some((guard, ng))
}

/// Checks that wrk saw no error and the server still answers.
pub fn assert_served(s: &Server, w: &WrkResult) {
    assert!(w.requests > 0, "wrk: {}", w.output);
    assert_eq!(w.errors, 0, "failed requests: {}", w.output);
    assert_eq!(s.get("/fast").expect("GET /fast").0, 200);
}

/// The `-- @MARKER` line of `tests/nginx/FILE`.
pub fn marker(file: &str, marker: &str) -> u32 {
    super::marker_line_of(&nginx::handler(file), marker)
}

/// A frame of `tests/nginx/FILE` at `line`, as lj-lua-stacks prints it.
pub fn frame(file: &str, line: u32) -> String {
    format!("@{}:{line}", nginx::handler(file).display())
}

/// The name lj-lua-stacks gives the C function behind `ngx.log` where the
/// Lua module's symbol table names it.
pub const NGX_LOG: &str = "C:ngx_http_lua_ngx_log";

/// The backtrace of a sample in hot.lua's render loop, compiled by the JIT
/// (the workers run with the JIT on): the trace, render (called by the
/// C function behind ngx.log, printed as `log`), report, handle, and the
/// chunk that content_by_lua_file runs (a main chunk "starts" at line 0).
pub fn hot_backtrace_with(log: &str) -> Vec<String> {
    let f = "hot.lua";
    vec![
        format!("T:{}", frame(f, marker(f, "def:render"))),
        frame(f, marker(f, "def:render")),
        log.into(),
        frame(f, marker(f, "def:report")),
        frame(f, marker(f, "def:handle")),
        frame(f, 0),
    ]
}

/// [`hot_backtrace_with`] the symbol's name.
pub fn hot_backtrace() -> Vec<String> {
    hot_backtrace_with(NGX_LOG)
}

/// Asserts that the most frequent backtrace is `want` with at least 80%
/// of the samples; returns the number of samples.
pub fn assert_dominant(out: &str, err: &str, want: &[String]) -> u64 {
    let bts = super::backtraces(out);
    assert!(!bts.is_empty(), "no backtraces; stderr: {err}");
    let total: u64 = bts.iter().map(|b| b.1).sum();
    assert_eq!(bts[0].0, want, "dominant backtrace; all: {bts:#?}");
    assert!(
        bts[0].1 * 100 >= total * 80,
        "the hot backtrace has {} of {total} samples: {bts:#?}",
        bts[0].1
    );
    total
}

/// [`assert_dominant`] for [`hot_backtrace`].
pub fn assert_hot_dominant(out: &str, err: &str) -> u64 {
    assert_dominant(out, err, &hot_backtrace())
}

/// Loads `/hot` with wrk and profiles with lj-lua-stacks (`target` is
/// `-x PID` or `--master PID`) for [`SECS`] meanwhile.
pub fn lua_stacks_under_load(s: &Server, target: &[String]) -> (String, String) {
    // Warm up: the JIT compiles render's loop on the first requests.
    for _ in 0..5 {
        assert_eq!(s.get("/hot").unwrap().0, 200);
    }
    let wrk = Wrk::start(&s.url("/hot"), SECS + 3, 2, 32);
    std::thread::sleep(Duration::from_millis(500));
    let mut args = target.to_vec();
    args.extend(strings(&["--arg", &format!("time={SECS}")]));
    let (out, err) = run("examples/lj-lua-stacks.sxx", &args);
    assert_served(s, &wrk.wait());
    assert!(
        err.contains(&format!("Please wait for {SECS} seconds...")),
        "{err}"
    );
    (out, err)
}

/// lj-lua-stacks with `-x` on the first worker of `s` (running `ng`),
/// under load: checks that it traced that worker of that executable.
/// Returns stdout and stderr.
pub fn lua_stacks_on_a_worker(ng: &Nginx, s: &Server) -> (String, String) {
    let worker = s.workers()[0];
    let (out, err) = lua_stacks_under_load(s, &strings(&["-x", &worker.to_string()]));
    assert!(
        err.contains(&format!("Start tracing {worker} ({})", ng.nginx.display())),
        "{err}"
    );
    (out, err)
}

/// `--master` traces every worker of `s` (running `ng`): a script records
/// the pids its `timer.profile` probe saw (`$^pid_ok` is the test over
/// all workers) where `vm`, a function of the tapset `module`, found the
/// Lua VM, and those must be both workers; then lj-lua-stacks samples the
/// workers' Lua VMs under load, naming both. Returns its stdout and
/// stderr.
pub fn lua_stacks_on_every_worker(
    ng: &Nginx,
    s: &Server,
    module: &str,
    vm: &str,
) -> (String, String) {
    let workers = s.workers();
    assert_eq!(workers.len(), 2);
    let master = s.master_pid().to_string();
    let script = super::scratch().join(format!("pids-{}.stp", s.port));
    std::fs::write(
        &script,
        format!(
            "global seen\n\
             @use {module}\n\
             probe timer.profile {{\n\
             \x20   if ($^pid_ok && {vm}() != 0) {{ seen[pid()] <<< 1 }}\n\
             }}\n\
             probe timer.s(2) {{ exit() }}\n\
             probe end {{ foreach (p+ in seen) {{ printf(\"%d\\n\", p) }} }}\n"
        ),
    )
    .unwrap();
    // `reuseport` spreads connections over the workers by a hash: with 8,
    // all of them land on one worker 1 time in 128 (seen once, under the
    // suite's load); with 32, about 1 time in 2^31.
    let wrk = Wrk::start(&s.url("/hot"), 3, 2, 32);
    std::thread::sleep(Duration::from_millis(300));
    let (out, _) = run(script.to_str().unwrap(), &strings(&["--master", &master]));
    assert_served(s, &wrk.wait());
    let seen: Vec<u32> = out.lines().map(|l| l.parse().expect("pid")).collect();
    assert_eq!(seen, workers, "Lua VMs sampled under --master {master}");

    let (out, err) = lua_stacks_under_load(s, &strings(&["--master", &master]));
    assert!(
        err.contains(&format!(
            "Start tracing {} {} ({})",
            workers[0],
            workers[1],
            ng.nginx.display()
        )),
        "{err}"
    );
    (out, err)
}
