//! nginx with lua-nginx-module as the target (issue 8): real nginx builds
//! in both shapes (the Lua module compiled in, or loaded as a `.so`; see
//! `support::nginx`), serving the handlers of `tests/nginx/` on loopback
//! under `wrk` load while the scripts of `examples/` trace them.
//!
//! Every test checks what the script printed against what is known
//! independently: the frames of the handler (from its `-- @def:` markers),
//! the worker pids, the requests nginx logged while the script was
//! attached, wrk's own figures. It also checks that the server served every
//! request (no wrk errors, still answering afterwards) and that nothing of
//! ours stayed in the kernel.

mod support;

use std::path::Path;
use std::time::Duration;

use support::nginx::{self, Nginx, Server, Shape, Wrk};
use support::nginx_checks::{assert_hot_dominant, assert_served, marker, SECS};
use support::session::{run, strings, Stapxx};

/// The build of `shape` and the serializing lock, when this test can run.
fn setup(shape: Shape) -> Option<(std::sync::MutexGuard<'static, ()>, &'static Nginx)> {
    support::nginx_checks::setup(|| nginx::get(shape))
}

fn lua_stacks_on_a_worker(shape: Shape) {
    let Some((_serial, ng)) = setup(shape) else {
        return;
    };
    let s = Server::start(ng);
    let (out, err) = support::nginx_checks::lua_stacks_on_a_worker(ng, &s);
    let total = assert_hot_dominant(&out, &err);
    assert!(total >= 50, "{total} samples: {err}");
}

#[test]
fn lua_stacks_on_a_worker_module_compiled_in() {
    lua_stacks_on_a_worker(Shape::Static);
}

#[test]
fn lua_stacks_on_a_worker_module_as_so() {
    lua_stacks_on_a_worker(Shape::Dynamic);
}

/// `--master`: every worker is traced, each worker's main Lua VM found by
/// the nginx tapset (through `ngx_cycle`).
fn master_traces_every_worker(shape: Shape) {
    let Some((_serial, ng)) = setup(shape) else {
        return;
    };
    let s = Server::start(ng);
    let (out, err) = support::nginx_checks::lua_stacks_on_every_worker(
        ng,
        &s,
        "nginx.lua",
        "ngx_lua_get_main_lua_vm",
    );
    let total = assert_hot_dominant(&out, &err);
    assert!(total >= 50, "{total} samples: {err}");
}

#[test]
fn master_traces_every_worker_module_compiled_in() {
    master_traces_every_worker(Shape::Static);
}

#[test]
fn master_traces_every_worker_module_as_so() {
    master_traces_every_worker(Shape::Dynamic);
}

/// Requests the access log shows while `body` runs: `body` gets the
/// server; the count is taken with no request in flight before and after.
fn logged_during(s: &Server, body: impl FnOnce()) -> usize {
    let before = s.settled_requests();
    body();
    s.settled_requests() - before
}

/// The `N` of a line `... for N <what>:`.
fn count_for(out: &str, what: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            l.split(" for ")
                .nth(1)?
                .strip_suffix(&format!(" {what}:"))?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no 'for N {what}:' line in {out}"))
}

/// `min/avg/max: A/B/C`.
fn min_avg_max(out: &str) -> (i64, i64, i64) {
    let l = out
        .lines()
        .find_map(|l| l.strip_prefix("min/avg/max: "))
        .unwrap_or_else(|| panic!("no min/avg/max in {out}"));
    let v: Vec<i64> = l.split('/').map(|x| x.parse().expect("number")).collect();
    (v[0], v[1], v[2])
}

/// The rows of the `@hist_log` printed after the `value |---- count`
/// header: (bucket, count).
fn histogram(out: &str) -> Vec<(i64, u64)> {
    let mut rows = Vec::new();
    let mut inside = false;
    for l in out.lines() {
        if l.trim_start().starts_with("value |") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        let Some((v, rest)) = l.split_once('|') else {
            break;
        };
        let count = rest.split_whitespace().last().expect("count");
        rows.push((
            v.trim().parse().expect("bucket"),
            count.parse().expect("count"),
        ));
    }
    assert!(!rows.is_empty(), "no histogram in {out}");
    rows
}

/// ngx-rps under --master against wrk on `/fast`: the seconds wrk covered
/// fully agree with wrk's Requests/sec within 10%, and the per-second
/// figures add up to exactly the requests nginx logged meanwhile.
#[test]
fn ngx_rps_matches_wrk() {
    let Some((_serial, ng)) = setup(Shape::Static) else {
        return;
    };
    let s = Server::start(ng);
    let master = s.master_pid().to_string();
    let mut wrk_res = None;
    let mut res = None;
    let logged = logged_during(&s, || {
        let mut st = Stapxx::start("examples/ngx-rps.sxx", &strings(&["--master", &master]));
        st.wait_stderr("Tracing ");
        wrk_res = Some(Wrk::start(&s.url("/fast"), 5, 2, 16).wait());
        // The second after the load, so its last partial second is printed.
        std::thread::sleep(Duration::from_millis(1500));
        res = Some(st);
    });
    let w = wrk_res.unwrap();
    let (out, _) = res.unwrap().interrupt();
    assert_served(&s, &w);
    let per_sec: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_suffix(" req/sec")?.rsplit(' ').next()?.parse().ok())
        .collect();
    let total: u64 = out
        .lines()
        .find_map(|l| l.strip_suffix(" requests in total")?.parse().ok())
        .unwrap_or_else(|| panic!("no total in {out}"));
    assert_eq!(per_sec.iter().sum::<u64>(), total, "{out}");
    assert_eq!(total, logged as u64, "{out}");
    // The seconds between the first and the last busy one ran under load
    // all along.
    let busy: Vec<u64> = per_sec.iter().copied().filter(|&n| n > 0).collect();
    assert!(busy.len() >= 4, "{out}");
    let full = &busy[1..busy.len() - 1];
    let avg = full.iter().sum::<u64>() as f64 / full.len() as f64;
    eprintln!("ngx-rps: {avg:.0} req/sec over {full:?}; wrk: {:.0}", w.rps);
    assert!(
        (avg - w.rps).abs() <= w.rps * 0.10,
        "ngx-rps says {avg:.0} req/sec, wrk {:.0}: {out}\n{}",
        w.rps,
        w.output
    );
}

/// ngx-req-latency-distr under --master: one latency per request nginx
/// logged while it was attached (the load runs between its begin output
/// and its end), and a histogram that adds up to that count.
#[test]
fn request_latency_histogram_counts_every_request() {
    let Some((_serial, ng)) = setup(Shape::Dynamic) else {
        return;
    };
    let s = Server::start(ng);
    let master = s.master_pid().to_string();
    let mut w = None;
    let mut st = None;
    let logged = logged_during(&s, || {
        let mut p = Stapxx::start(
            "examples/ngx-req-latency-distr.sxx",
            &strings(&["--master", &master]),
        );
        p.wait_stderr("Hit Ctrl-C to end.");
        w = Some(Wrk::start(&s.url("/hot"), 2, 2, 8).wait());
        st = Some(p);
    });
    let (out, _) = st.unwrap().interrupt();
    assert_served(&s, &w.unwrap());
    let n = count_for(&out, "requests");
    assert_eq!(n, logged as u64, "{out}");
    let hist = histogram(&out);
    assert_eq!(hist.iter().map(|r| r.1).sum::<u64>(), n, "{out}");
    let (min, avg, max) = min_avg_max(&out);
    assert!(0 <= min && min <= avg && avg <= max, "{out}");
    // Every latency falls in the histogram's range.
    assert!(
        hist[0].0 <= min && max < 2 * hist.last().unwrap().0.max(1),
        "{out}"
    );
}

/// func-latency-distr on lua-nginx-module's content handler (compiled
/// into nginx): one call per request, each taking at least the time the
/// hot handler spins.
#[test]
fn function_latency_histogram() {
    let Some((_serial, ng)) = setup(Shape::Static) else {
        return;
    };
    let s = Server::start(ng);
    let master = s.master_pid().to_string();
    let mut w = None;
    let mut st = None;
    let logged = logged_during(&s, || {
        let mut p = Stapxx::start(
            "examples/func-latency-distr.sxx",
            &strings(&[
                "--master",
                &master,
                "--arg",
                "func=ngx_http_lua_content_handler",
            ]),
        );
        p.wait_stderr("Tracing ngx_http_lua_content_handler in ");
        w = Some(Wrk::start(&s.url("/hot"), 2, 2, 8).wait());
        st = Some(p);
    });
    let (out, _) = st.unwrap().interrupt();
    assert_served(&s, &w.unwrap());
    assert_eq!(count_for(&out, "calls"), logged as u64, "{out}");
    let hist = histogram(&out);
    assert_eq!(
        hist.iter().map(|r| r.1).sum::<u64>(),
        logged as u64,
        "{out}"
    );
    let (min, avg, max) = min_avg_max(&out);
    assert!(0 < min && min <= avg && avg <= max, "{out}");
}

/// lj-vm-states on a worker running the hot handler: mostly compiled code
/// (render's loop), and the per-state counts add up.
#[test]
fn vm_states_on_a_worker() {
    let Some((_serial, ng)) = setup(Shape::Dynamic) else {
        return;
    };
    let s = Server::start(ng);
    for _ in 0..5 {
        assert_eq!(s.get("/hot").unwrap().0, 200);
    }
    let worker = s.workers()[1].to_string();
    let wrk = Wrk::start(&s.url("/hot"), SECS + 3, 2, 8);
    std::thread::sleep(Duration::from_millis(500));
    let (out, _) = run(
        "examples/lj-vm-states.sxx",
        &strings(&["-x", &worker, "--arg", &format!("time={SECS}")]),
    );
    assert_served(&s, &wrk.wait());
    let observed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Observed ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no 'Observed N' in {out}"));
    let states: Vec<(String, u64, u64)> = out
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let (pct, n) = rest.split_once("% (")?;
            Some((
                name.to_string(),
                pct.parse().ok()?,
                n.strip_suffix(" samples)")?.parse().ok()?,
            ))
        })
        .collect();
    assert_eq!(states.iter().map(|s| s.2).sum::<u64>(), observed, "{out}");
    assert_eq!(states[0].0, "Compiled", "{out}");
    assert!(states[0].1 >= 80, "{out}");
}

/// The handlers exist where the server configuration names them.
#[test]
fn handler_files_are_in_place() {
    for f in ["hot.lua", "fast.lua"] {
        assert!(Path::new(&nginx::handler(f)).is_file(), "{f}");
    }
    assert!(marker("hot.lua", "hot:render") > marker("hot.lua", "def:render"));
}

#[test]
fn parses_wrk_reports() {
    let r = nginx::parse_wrk(
        "Running 2s test @ http://127.0.0.1:1/\n  2 threads and 8 connections\n\
         \x20 21345 requests in 2.00s, 3.1MB read\n\
         \x20 Socket errors: connect 0, read 2, write 0, timeout 1\n\
         \x20 Non-2xx or 3xx responses: 4\n\
         Requests/sec:  10671.87\nTransfer/sec:      1.55MB\n",
    );
    assert_eq!(r.requests, 21345);
    assert_eq!(r.errors, 7);
    assert!((r.rps - 10671.87).abs() < 1e-6);
}

/// `.callee` on the nginx build: `ngx_http_free_request` destroys each
/// request's pool through `ngx_destroy_pool` once, while connection pools
/// are destroyed from elsewhere; the callee probe sees exactly the first
/// (its `$pool` read at the callee), the plain function probe both.
#[test]
fn callee_probe_counts_request_pools() {
    let Some((_serial, ng)) = setup(Shape::Static) else {
        return;
    };
    let s = Server::start(ng);
    let master = s.master_pid().to_string();
    let script = support::scratch().join("callee-pools.stp");
    std::fs::write(
        &script,
        format!(
            r#"global from_requests, null_pools, all
probe begin {{ warn("Tracing pools\n") }}
probe process("{0}").function("ngx_http_free_request").callee("ngx_destroy_pool") {{
  from_requests++
  if ($pool == 0) null_pools++
}}
probe process("{0}").function("ngx_destroy_pool") {{ all++ }}
probe end {{ printf("requests %d null %d all %d\n", from_requests, null_pools, all) }}
"#,
            ng.nginx.display()
        ),
    )
    .unwrap();
    let mut w = None;
    let mut st = None;
    let logged = logged_during(&s, || {
        let mut p = Stapxx::start(
            &script.display().to_string(),
            &strings(&["--master", &master]),
        );
        p.wait_stderr("Tracing pools");
        w = Some(Wrk::start(&s.url("/hot"), 1, 1, 4).wait());
        st = Some(p);
    });
    let (out, _) = st.unwrap().interrupt();
    assert_served(&s, &w.unwrap());
    let nums: Vec<u64> = out
        .lines()
        .find(|l| l.starts_with("requests "))
        .unwrap_or_else(|| panic!("{out}"))
        .split(' ')
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(nums[0], logged as u64, "{out}");
    assert_eq!(nums[1], 0, "{out}");
    assert!(nums[2] > nums[0], "{out}");
}

/// examples/sample-bt.sxx (C stacks unwound by CFI) on a worker under wrk
/// on the cheap Lua handler: samples in a request go from `_start` through
/// the event loop and nginx's content phase into the Lua module's handler;
/// some of them go on into LuaJIT's interpreter and the Lua module's C
/// functions it calls (`ngx.say`). (Samples in JIT-compiled trace code, which
/// has no CFI, stop at their first frame: see `-v`'s counts.)
fn c_stacks_on_a_worker(shape: Shape) {
    let Some((_serial, ng)) = setup(shape) else {
        return;
    };
    let s = Server::start(ng);
    let worker = s.workers()[0].to_string();
    // 32 connections: reuseport hashes them over the workers, and with 8
    // all land on the other worker about 1 time in 128.
    let wrk = Wrk::start(&s.url("/fast"), SECS + 3, 2, 32);
    std::thread::sleep(Duration::from_millis(500));
    let (out, err) = run(
        "examples/sample-bt.sxx",
        &strings(&["-x", &worker, "--arg", &format!("time={SECS}"), "-v"]),
    );
    assert_served(&s, &wrk.wait());
    // The unwind table's make-up, for BENCHMARKS.md (`--nocapture`).
    for l in err.lines().filter(|l| l.starts_with("unwind ")) {
        eprintln!("{l}");
    }
    let (mut total, mut handler, mut into_luajit) = (0, 0, 0);
    for (frames, n) in support::backtraces(&out) {
        total += n;
        // (function, module) per frame, root first.
        let f: Vec<(&str, &str)> = frames
            .iter()
            .rev()
            .map(|l| {
                let rest = l.split_once(" : ").map_or("", |x| x.1);
                let name = rest.split('+').next().unwrap_or("");
                let module = rest.rsplit_once(" [").map_or("", |x| x.1);
                (name, module.trim_end_matches(']'))
            })
            .collect();
        let at = |from: usize, want: &dyn Fn(&str) -> bool| {
            f.iter()
                .skip(from)
                .position(|x| want(x.0))
                .map(|i| i + from)
        };
        let chain = at(0, &|n| n == "_start")
            .filter(|&i| i == 0)
            .and_then(|i| at(i, &|n| n == "ngx_process_events_and_timers"))
            .and_then(|i| at(i, &|n| n == "ngx_http_core_content_phase"))
            .and_then(|i| at(i, &|n| n.starts_with("ngx_http_lua_content_")));
        let Some(h) = chain else { continue };
        handler += n;
        let vm = f[h..].iter().position(|x| x.1.contains("libluajit"));
        if vm.is_some_and(|v| {
            f[h + v..]
                .iter()
                .any(|x| x.0.starts_with("ngx_http_lua_ngx_"))
        }) {
            into_luajit += n;
        }
    }
    assert!(total >= 50, "{total} samples: {err}");
    assert!(
        handler * 10 >= total && into_luajit >= 2,
        "of {total} samples, {handler} through the Lua handler, {into_luajit} on into LuaJIT and back to the module:\n{out}"
    );
}

#[test]
fn c_stacks_on_a_worker_module_compiled_in() {
    c_stacks_on_a_worker(Shape::Static);
}

#[test]
fn c_stacks_on_a_worker_module_as_so() {
    c_stacks_on_a_worker(Shape::Dynamic);
}

/// lj-lua-stacks' mixed stacks (`--arg mixed=1`) of a worker under wrk on
/// `path`: per backtrace, the frames root first (C frames by function, Lua
/// frames as printed) and its count.
fn mixed_stacks(path: &str) -> Vec<(Vec<String>, u64)> {
    let Some((_serial, ng)) = setup(Shape::Dynamic) else {
        return Vec::new();
    };
    let s = Server::start(ng);
    for _ in 0..5 {
        assert_eq!(s.get(path).unwrap().0, 200);
    }
    let worker = s.workers()[0].to_string();
    // (32 connections, as above: some reach the traced worker.)
    let wrk = Wrk::start(&s.url(path), SECS + 3, 2, 32);
    std::thread::sleep(Duration::from_millis(500));
    let (out, _) = run(
        "examples/lj-lua-stacks.sxx",
        &strings(&[
            "-x",
            &worker,
            "--arg",
            &format!("time={SECS}"),
            "--arg",
            "mixed=1",
            "--arg",
            "min=0",
        ]),
    );
    assert_served(&s, &wrk.wait());
    support::backtraces(&out)
        .into_iter()
        .map(|(frames, n)| {
            let f = frames
                .iter()
                .rev()
                .map(|l| match l.split_once(" : ") {
                    Some((_, rest)) => rest.split('+').next().unwrap_or("").to_string(),
                    None => l.clone(),
                })
                .collect();
            (f, n)
        })
        .collect()
}

/// Whether `f` (root first) goes from `_start` through the event loop and
/// the content phase into the Lua module's content handler; the index of
/// the handler's frame.
fn under_content_handler(f: &[String]) -> Option<usize> {
    let at = |from: usize, want: &dyn Fn(&str) -> bool| {
        f.iter().skip(from).position(|x| want(x)).map(|i| i + from)
    };
    at(0, &|x| x == "_start")
        .filter(|&i| i == 0)
        .and_then(|i| at(i, &|x| x == "ngx_process_events_and_timers"))
        .and_then(|i| at(i, &|x| x == "ngx_http_core_content_phase"))
        .and_then(|i| at(i, &|x| x.starts_with("ngx_http_lua_content_")))
}

/// The cheap handler, interpreted: the Lua chunk's frame sits under the
/// content handler (and the VM entry), and over the module's C function it
/// calls (`ngx.say`), whose C callees come on top.
#[test]
fn mixed_c_and_lua_stacks() {
    let bts = mixed_stacks("/fast");
    if bts.is_empty() && !support::ci() {
        return;
    }
    let fast = format!("@{}:", nginx::handler("fast.lua").display());
    let spliced: u64 = bts
        .iter()
        .filter(|(f, _)| {
            under_content_handler(f).is_some_and(|h| {
                let lua = f[h..].iter().position(|x| x.starts_with(&fast));
                lua.is_some_and(|l| f[h + l..].iter().any(|x| x == "ngx_http_lua_ngx_echo"))
            })
        })
        .map(|b| b.1)
        .sum();
    assert!(spliced >= 2, "{spliced} spliced samples: {bts:#?}");
}

/// The hot handler runs JIT-compiled code (no CFI): the walk starts from
/// the VM frame the trace runs in, so its Lua frames, the trace's `T:`
/// innermost, still sit under the content handler.
#[test]
fn mixed_stacks_through_jit_code() {
    let bts = mixed_stacks("/hot");
    if bts.is_empty() && !support::ci() {
        return;
    }
    let hot = format!("@{}:", nginx::handler("hot.lua").display());
    let total: u64 = bts.iter().map(|b| b.1).sum();
    let traced: u64 = bts
        .iter()
        .filter(|(f, _)| {
            under_content_handler(f).is_some_and(|h| {
                f[h + 1..].iter().any(|x| x.starts_with(&hot))
                    && f.last().is_some_and(|x| x.starts_with(&format!("T:{hot}")))
            })
        })
        .map(|b| b.1)
        .sum();
    assert!(total >= 50, "{total} samples");
    assert!(
        traced * 2 >= total,
        "{traced} of {total} in traces under the handler: {bts:#?}"
    );
}

/// The script of the following tests: requests per worker pid where
/// `$^pid_ok` (at `ngx_http_log_request`, where the access log line is
/// written), and the pids in which nginx's signal handler ran, with
/// `$^pid_ok` and without (masters get SIGHUP, SIGCHLD, SIGUSR2, SIGQUIT;
/// workers are told through their channel, not by signals).
fn per_pid_script(ng: &Nginx, name: &str) -> String {
    let script = support::scratch().join(format!("{name}.stp"));
    std::fs::write(
        &script,
        format!(
            r#"global reqs, ok_sig, other_sig
probe begin {{ warn("Tracing $^target\n") }}
probe process("{0}").function("ngx_http_log_request") {{
  if ($^pid_ok && $r == $r->main) reqs[pid()]++
}}
probe process("{0}").function("ngx_signal_handler") {{
  if ($^pid_ok) ok_sig[pid()]++
  else other_sig[pid()]++
}}
probe end {{
  foreach (p+ in reqs) printf("req %d %d\n", p, reqs[p])
  foreach (p+ in ok_sig) printf("sig %d\n", p)
  foreach (p+ in other_sig) printf("master-sig %d\n", p)
}}
"#,
            ng.nginx.display()
        ),
    )
    .unwrap();
    script.display().to_string()
}

/// What [`per_pid_script`] printed: requests by pid, the pids whose signal
/// handler ran with `$^pid_ok`, and those without.
type PerPid = (std::collections::BTreeMap<u32, u64>, Vec<u32>, Vec<u32>);

fn per_pid(out: &str) -> PerPid {
    let mut res = PerPid::default();
    for l in out.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let n = |i: usize| -> u64 { f[i].parse().unwrap_or_else(|_| panic!("{l}")) };
        match f[0] {
            "req" => {
                res.0.insert(n(1) as u32, n(2));
            }
            "sig" => res.1.push(n(1) as u32),
            "master-sig" => res.2.push(n(1) as u32),
            _ => panic!("unexpected line {l:?} in {out}"),
        }
    }
    res
}

/// The access log's requests per pid from line `from` on.
fn logged_per_pid(s: &Server, from: usize) -> std::collections::BTreeMap<u32, u64> {
    let mut m = std::collections::BTreeMap::new();
    for (pid, _, _) in &s.access_log()[from..] {
        *m.entry(*pid).or_insert(0) += 1;
    }
    m
}

/// `--master` follows nginx as it is reloaded twice under wrk and loses a
/// worker to SIGKILL in between (killed while idle, so no request is cut
/// between the probe and the log line): the requests counted per pid are
/// exactly the access log's, the workers started after the session
/// (by both reloads and the respawn) included; the master, whose signal
/// handler runs for the reloads and the dead worker, never passes
/// `$^pid_ok`.
#[test]
fn master_follows_reloads_and_a_respawned_worker() {
    let Some((_serial, ng)) = setup(Shape::Static) else {
        return;
    };
    let s = Server::start(ng);
    let master = s.master_pid();
    let first = s.workers();
    let script = per_pid_script(ng, "follow-reloads");
    let mut st = Stapxx::start(&script, &strings(&["--master", &master.to_string()]));
    st.wait_stderr(&format!("Tracing {} {}", first[0], first[1]));
    let from = s.settled_requests();

    let wrk = Wrk::start(&s.url("/fast"), 3, 2, 32);
    std::thread::sleep(Duration::from_millis(1000));
    let second = s.reload();
    let w1 = wrk.wait();
    s.settled_requests();
    let third = s.kill_worker(second[0]);
    let respawned: Vec<u32> = third
        .iter()
        .copied()
        .filter(|w| !second.contains(w))
        .collect();
    let wrk = Wrk::start(&s.url("/fast"), 3, 2, 32);
    std::thread::sleep(Duration::from_millis(1000));
    let fourth = s.reload();
    let w2 = wrk.wait();
    s.settled_requests();
    let logged = logged_per_pid(&s, from);
    let (out, err) = st.interrupt_following();
    // wrk counts as errors the idle keep-alive connections that retiring
    // workers close under it (nginx logs nothing for them); every request
    // nginx logged is in the counts below.
    for w in [&w1, &w2] {
        eprintln!(
            "wrk across a reload: {} requests, {} errors",
            w.requests, w.errors
        );
        assert!(w.requests > 0, "{}", w.output);
    }
    assert_eq!(s.get("/fast").expect("GET /fast").0, 200);

    let (reqs, sig, other) = per_pid(&out);
    assert_eq!(reqs, logged, "requests per pid; stderr: {err}");
    // Every generation of workers served (and was counted): the first, the
    // first reload's, the respawned one, the second reload's.
    for w in [
        first[0],
        first[1],
        second[1],
        respawned[0],
        fourth[0],
        fourth[1],
    ] {
        assert!(reqs.contains_key(&w), "worker {w} not counted: {out}");
    }
    assert!(
        !reqs.contains_key(&master) && !sig.contains(&master),
        "{out}"
    );
    assert_eq!(other, vec![master], "{out}");
}

/// lj-lua-stacks under `--master` across a reload: the reload is done (old
/// workers gone) before any request for `/hot` arrives, so the hot
/// backtrace it finds comes from workers that did not exist when the
/// session started. With the Lua module as a shared object, which the
/// reloaded configuration loads again.
#[test]
fn lua_stacks_follow_a_reload() {
    let Some((_serial, ng)) = setup(Shape::Dynamic) else {
        return;
    };
    let s = Server::start(ng);
    let master = s.master_pid().to_string();
    let before = s.workers();
    let mut st = Stapxx::start(
        "examples/lj-lua-stacks.sxx",
        &strings(&["--master", &master, "--arg", &format!("time={}", SECS + 2)]),
    );
    st.wait_stderr("Please wait for ");
    let after = s.reload();
    assert!(after.iter().all(|w| !before.contains(w)));
    for _ in 0..5 {
        assert_eq!(s.get("/hot").unwrap().0, 200);
    }
    let w = nginx::wrk(&s.url("/hot"), SECS, 2, 32);
    let (out, err) = st.finish_following();
    assert_served(&s, &w);
    assert!(
        err.contains(&format!("Start tracing {} {} (", before[0], before[1])),
        "{err}"
    );
    let total = assert_hot_dominant(&out, &err);
    assert!(total >= 50, "{total} samples: {err}");
}

/// A binary upgrade under `--master`: SIGUSR2 makes the master fork a new
/// master that runs the executable anew and starts its own workers; then
/// the old master is told to quit. The session goes on with the new
/// master's workers (uprobes are on the file, which the new master runs
/// too), counting exactly what the access log has per pid, neither master
/// passing `$^pid_ok`; when the new master is stopped too, the session
/// ends by itself and says so.
#[test]
fn master_follows_a_binary_upgrade() {
    let Some((_serial, ng)) = setup(Shape::Static) else {
        return;
    };
    let mut s = Server::start_orphan(ng);
    let old = s.master_pid();
    let old_workers = s.workers();
    let script = per_pid_script(ng, "follow-upgrade");
    let mut st = Stapxx::start(&script, &strings(&["--master", &old.to_string()]));
    st.wait_stderr("Tracing ");
    let from = s.settled_requests();
    let w1 = nginx::wrk(&s.url("/fast"), 2, 2, 32);
    s.settled_requests();
    let (new, new_workers) = s.upgrade();
    let w2 = nginx::wrk(&s.url("/fast"), 2, 2, 32);
    assert_served(&s, &w1);
    assert_served(&s, &w2);
    s.settled_requests();
    let logged = logged_per_pid(&s, from);
    assert!(
        !st.stderr().contains("exited"),
        "the session ended with the old master: {}",
        st.stderr()
    );
    // nginx stopped: no master left, the session ends.
    drop(s);
    let (out, err) = st.finish_following();
    assert!(
        err.contains(&format!(
            "WARNING: master process {old} (nginx) exited, and so did the master(s) that took over from it ({new}): ending the session"
        )),
        "{err}"
    );
    let (reqs, sig, other) = per_pid(&out);
    assert_eq!(reqs, logged, "requests per pid; stderr: {err}");
    for w in old_workers.iter().chain(&new_workers) {
        assert!(reqs.contains_key(w), "worker {w} not counted: {out}");
    }
    for m in [old, new] {
        assert!(!reqs.contains_key(&m) && !sig.contains(&m), "{out}");
    }
    // The old master got SIGUSR2 and SIGQUIT, untraced.
    assert!(other.contains(&old), "{out}");
    assert!(other.iter().all(|p| [old, new].contains(p)), "{out}");
}

/// Continuous profiling of nginx (issue 17): lj-lua-stacks on every worker
/// (`--master`) with `--interval 2 --pyroscope` and per-process labels,
/// 10 s under wrk on `/hot`, nginx reloaded twice meanwhile. The receiver
/// (a loopback stand-in: no Pyroscope server is packaged in the registries
/// reachable here) gets 5 profiles (±1), each read by `go tool pprof` and
/// naming the handler's frames; the workers of each reload show up in the
/// pid labels of the later profiles; the profiles' total is the run's
/// printed total; nginx answered every request it got with 200.
#[test]
fn continuous_profiles_across_reloads() {
    let Some((_serial, ng)) = setup(Shape::Dynamic) else {
        return;
    };
    if !support::pprof::have_go() {
        return;
    }
    let s = Server::start(ng);
    for _ in 0..5 {
        assert_eq!(s.get("/hot").unwrap().0, 200);
    }
    let r = support::pyroscope::Receiver::start();
    let master = s.master_pid().to_string();
    let wrk = Wrk::start(&s.url("/hot"), 14, 2, 32);
    std::thread::sleep(Duration::from_millis(500));
    let mut st = Stapxx::start(
        "examples/lj-lua-stacks.sxx",
        &strings(&[
            "--master",
            &master,
            "--arg",
            "time=10",
            "--arg",
            "min=0",
            "--arg",
            "labels=1",
            "--interval",
            "2",
            "--pyroscope",
            &r.url(),
            "--pyroscope-app",
            "nginx",
        ]),
    );
    st.wait_stderr("Please wait for ");
    std::thread::sleep(Duration::from_secs(2));
    let first = s.reload();
    std::thread::sleep(Duration::from_secs(2));
    let second = s.reload();
    let (out, err) = st.finish_following();
    let w = wrk.wait();
    assert!(w.requests > 0, "wrk: {}", w.output);
    assert!(!w.output.contains("Non-2xx"), "wrk: {}", w.output);
    assert!(
        s.access_log().iter().all(|(_, status, _)| *status == 200),
        "{:?}",
        s.access_log()
            .iter()
            .filter(|l| l.1 != 200)
            .collect::<Vec<_>>()
    );
    assert!(!err.contains("could not be pushed"), "{err}");

    let got = r.requests();
    assert!(
        (4..=6).contains(&got.len()),
        "{} profiles: {err}",
        got.len()
    );
    let dir = support::scratch().join("nginx-push");
    let mut total = 0;
    let mut pids: Vec<Vec<u32>> = Vec::new();
    for (i, q) in got.iter().enumerate() {
        assert_eq!(q.param("name"), Some("nginx{}"));
        let file = support::pyroscope::save_profile(&dir, &format!("p{i}.pb.gz"), &q.profile());
        let top = support::pprof::go_pprof(&file, &["-top", "-cum", "-sample_index=samples"]);
        // `Showing nodes accounting for M, P% of N total`: N samples.
        let n: u64 = top
            .lines()
            .find_map(|l| l.strip_prefix("Showing nodes accounting for "))
            .and_then(|l| l.rsplit_once(" of "))
            .and_then(|(_, n)| n.strip_suffix(" total"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("profile {i}: {top}"));
        total += n;
        // The handler's frames, named from hot.lua's source.
        for f in [
            "hot:handle",
            "hot:report",
            "C:ngx_http_lua_ngx_log",
            "hot:__tostring",
        ] {
            assert!(
                top.lines().any(|l| l.ends_with(&format!("  {f}"))),
                "profile {i} has no {f}: {top}"
            );
        }
        let tags = support::pprof::go_pprof(&file, &["-tags", "-sample_index=samples"]);
        let mut in_pids = false;
        let mut these = Vec::new();
        for l in tags.lines() {
            if l.trim_start().starts_with("pid:") {
                in_pids = true;
            } else if l.trim().is_empty() {
                in_pids = false;
            } else if in_pids {
                if let Some(p) = l.rsplit_once("): ").and_then(|(_, p)| p.parse().ok()) {
                    these.push(p);
                }
            }
        }
        pids.push(these);
    }
    let printed: u64 = out
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, printed, "{out}");
    for (which, workers) in [("first", &first), ("second", &second)] {
        assert!(
            pids.iter().any(|p| p.iter().any(|x| workers.contains(x))),
            "no samples of the {which} reload's workers {workers:?} in {pids:?}"
        );
    }
}

/// A system library's variables through its distribution's debug package:
/// libpcre's `pcre_exec` under nginx's `ngx.re.find`, its DWARF only in
/// the separate file libpcre3-dbg puts under `/usr/lib/debug/.build-id/`.
/// Each request's subject length is `$length` (and `$start_offset` 0) at
/// the entry, and one match is `$return` 1, in the order sent.
#[test]
fn library_variables_from_a_distribution_debug_package() {
    let Some((_serial, ng)) = setup(Shape::Static) else {
        return;
    };
    let s = Server::start(ng);
    let worker = s.workers()[0];
    let maps = std::fs::read_to_string(format!("/proc/{worker}/maps")).expect("maps");
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libpcre.so"))
        .unwrap_or_else(|| panic!("nginx maps no libpcre:\n{maps}"))
        .to_string();
    let script = format!(
        "probe process(\"{lib}\").function(\"pcre_exec\") {{\n\
         \x20   printf(\"length %d offset %d\\n\", $length, $start_offset)\n\
         }}\n\
         probe process(\"{lib}\").function(\"pcre_exec\").return {{\n\
         \x20   printf(\"return %d\\n\", $return)\n\
         }}\n\
         probe begin {{ printf(\"ready\\n\") }}\n"
    );
    let master = s.master_pid().to_string();
    let p = Stapxx::start("-e", &strings(&[&script, "--master", &master]));
    let t0 = std::time::Instant::now();
    while !p.stdout().contains("ready") {
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", p.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let sizes = [3478, 10, 200, 1000, 65];
    let mut want = String::from("ready\n");
    for n in sizes {
        let (st, body) = s.get(&format!("/re?n={n}")).expect("GET /re");
        assert_eq!((st, body.trim()), (200, n.to_string().as_str()));
        want.push_str(&format!("length {n} offset 0\nreturn 1\n"));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (out, err) = p.interrupt();
    assert_eq!(out, want, "{err}");
}
