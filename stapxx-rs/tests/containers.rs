//! Targets in containers as they are really built (issue 20): overlayfs
//! roots in their own mount and pid namespaces, entered with `chroot` or
//! with `pivot_root` (`support::container`), holding the LuaJIT and nginx
//! fixtures at paths this host does not have.
//!
//! What is checked against what is known independently:
//!
//! * lj-lua-stacks on LuaJIT (both layouts, the VM linked in and as a
//!   `.so`) running `tests/lua/split.lua` inside (copied into the root, or
//!   in a bind-mounted volume): the backtraces are those
//!   the tests outside expect (`lj_lua_stacks.rs`), with the chunk paths
//!   of the container, in the workload's 3:1 split; the flame-graph names
//!   come from the Lua source, which exists only inside; the start-up
//!   report names the executable as the container sees it and says the
//!   target is pid 1 of another pid namespace;
//! * the same with the executable stripped and its debug file only in the
//!   container's `/usr/lib/debug/.build-id/` (through an absolute link, as
//!   the container resolves it); without that file, the error lists the
//!   places looked at inside and on the host;
//! * nginx (both shapes) in a container: a uprobe script on one worker
//!   (`-x`, host pid) counts exactly the requests the access log shows for
//!   that worker (logged with its pid inside the container), and
//!   `ngx-rps.sxx --master` counts every request logged.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::container::{self, Container, Entry, Root, APP};
use support::container_nginx;
use support::luajit::{self, LuaJit, Variant};
use support::nginx::{self, Shape, Wrk};

/// Sampling time of the LuaJIT runs, in seconds.
const SECS: u32 = 2;

/// 4000 Hz sampling (as `lj_lua_stacks.rs` measures shares).
const PROBE_4KHZ: &str = "probe=perf.sw.cpu_clock.sample(250000)";

/// Where split.lua lives inside.
const SPLIT: &str = "/opt/stapxx-ctr/lua/split.lua";

// --- LuaJIT ------------------------------------------------------------------

/// Which interpreter of a LuaJIT build runs inside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Interp {
    /// `src/luajit`: the VM linked in.
    Static,
    /// `bin/luajit-dyn` on `libluajit-5.1.so.2`.
    Dso,
}

/// Where the interpreter lives inside.
fn interp_path(i: Interp) -> String {
    match i {
        Interp::Static => format!("{APP}/bin/luajit"),
        Interp::Dso => format!("{APP}/bin/luajit-dyn"),
    }
}

/// The debug file's place inside, for a stripped interpreter: the
/// build-id link (absolute, so only a walk inside the root finds it) and
/// the file it names.
fn debug_places(build_id: &str) -> (String, String) {
    (
        format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &build_id[..2],
            &build_id[2..]
        ),
        format!("/usr/lib/debug{APP}/bin/luajit.debug"),
    )
}

/// How the interpreter goes into the container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Debug {
    /// As built, with its DWARF.
    Embedded,
    /// `strip --strip-debug`, the DWARF in a separate file inside.
    Separate,
    /// Stripped, and no debug file anywhere.
    Missing,
}

/// The build-id of an ELF file (`readelf -n`).
fn build_id(path: &Path) -> String {
    let notes = support::must(Command::new("readelf").arg("-n").arg(path));
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build-id in {}", path.display()))
        .to_string()
}

/// Where split.lua comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Copied into the root.
    Copy,
    /// A host directory bind-mounted at its directory inside.
    Volume,
}

/// A container running split.lua (`-joff`) on `lj`'s interpreter `interp`.
fn split_container(
    name: &str,
    lj: &LuaJit,
    interp: Interp,
    entry: Entry,
    debug: Debug,
    source: Source,
) -> (Root, Container) {
    let mut root = Root::new(name);
    let inner = interp_path(interp);
    let host = match interp {
        Interp::Static => lj.luajit.clone(),
        Interp::Dso => lj.luajit_dyn.clone(),
    };
    if debug == Debug::Embedded {
        root.add_program(&host, &inner);
    } else {
        assert!(interp == Interp::Static);
        let dir = root.dir.join("strip");
        std::fs::create_dir_all(&dir).unwrap();
        let stripped = dir.join("luajit");
        let dbg = dir.join("luajit.debug");
        support::must(
            Command::new("objcopy")
                .arg("--only-keep-debug")
                .arg(&host)
                .arg(&dbg),
        );
        support::must(
            Command::new("strip")
                .arg("--strip-debug")
                .arg(&host)
                .arg("-o")
                .arg(&stripped),
        );
        root.add(&stripped, &inner);
        root.add_libraries(&host);
        let (link, file) = debug_places(&build_id(&host));
        assert!(
            !Path::new(&link).exists() && !Path::new(&file).exists(),
            "this host has the debug file: the test needs it only inside"
        );
        if debug == Debug::Separate {
            root.add(&dbg, &file);
            root.link(&file, &link);
        }
    }
    match source {
        Source::Copy => root.add(&luajit::workload("split.lua"), SPLIT),
        Source::Volume => {
            let vol = root.dir.join("volume");
            std::fs::create_dir_all(&vol).unwrap();
            std::fs::copy(luajit::workload("split.lua"), vol.join("split.lua")).unwrap();
            root.bind(&vol, Path::new(SPLIT).parent().unwrap().to_str().unwrap());
        }
    }
    assert!(
        !Path::new(APP).exists(),
        "{APP} exists on this host: the tests need paths only containers have"
    );
    let mut c = root.start(entry, &[&inner, "-joff", SPLIT], &[]);
    c.wait_for_line("ready");
    (root, c)
}

/// `stapxx-rs ARGS` from the workspace root, debuginfod off: (status,
/// stdout, stderr).
fn stapxx(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args(args)
        .env_remove("DEBUGINFOD_URLS")
        .output()
        .expect("run stapxx-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of split.lua carrying `-- @MARKER`.
fn line(marker: &str) -> u32 {
    luajit::marker_line("split.lua", marker)
}

/// lj-lua-stacks on the container's interpreter: the split the tests
/// outside see, with the container's paths, and folded stacks named from
/// the source inside.
fn lua_stacks_in(
    name: &str,
    variant: Variant,
    interp: Interp,
    entry: Entry,
    debug: Debug,
    source: Source,
) {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(()) = container::available() else {
        return;
    };
    let Some(lj) = luajit::get(variant) else {
        return;
    };
    let (_root, c) = split_container(name, lj, interp, entry, debug, source);
    let pid = c.pid();
    assert_eq!(container::inner_pid(pid), 1);
    let folded = support::scratch().join(format!("{name}.folded"));
    let (status, out, err) = stapxx(&[
        "examples/lj-lua-stacks.sxx",
        "-x",
        &pid.to_string(),
        "--arg",
        &format!("time={SECS}"),
        "--arg",
        "min=0",
        "--arg",
        PROBE_4KHZ,
        "--folded",
        folded.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        err,
        format!(
            "WARNING: process {pid} is in another pid namespace, where it is pid 1: \
             -x, --master, pid(), tid(), target() and $^pid_ok use this host's pids\n\
             WARNING: Start tracing {pid} ({})\n\
             WARNING: Please wait for {SECS} seconds...\n\
             WARNING: Time's up. Quitting now...\n\
             WARNING: Found 0 JITted samples.\n",
            interp_path(interp)
        )
    );

    // The frames lj_lua_stacks.rs expects of split.lua, chunk names as the
    // container's interpreter was given them.
    let frames = |f: &str| {
        vec![
            format!("@{SPLIT}:{}", line(&format!("def:{f}"))),
            format!("@{SPLIT}:0"),
            "C:pmain".to_string(),
        ]
    };
    let bts = support::backtraces(&out);
    let total: u64 = bts.iter().map(|b| b.1).sum();
    assert!(total >= 1000, "only {total} samples: {bts:#?}");
    assert_eq!(bts[0].0, frames("heavy"), "dominant backtrace: {bts:#?}");
    let count = |f: &str| -> u64 { bts.iter().filter(|b| b.0 == frames(f)).map(|b| b.1).sum() };
    let (heavy, light) = (count("heavy"), count("light"));
    let pct = |n: u64| n as f64 * 100.0 / total as f64;
    assert!(
        (pct(heavy) - 75.0).abs() <= 5.0 && (pct(light) - 25.0).abs() <= 5.0,
        "heavy {:.1}%, light {:.1}% of {total}: {bts:#?}",
        pct(heavy),
        pct(light)
    );

    // Folded stacks: function names parsed from the file inside (its
    // module, `split`, and the names at the definition lines).
    let folded = std::fs::read_to_string(&folded).unwrap();
    let folded_count = |stack: &str| -> u64 {
        folded
            .lines()
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(s, _)| *s == stack)
            .map(|(_, n)| n.parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        folded_count("C:pmain;split:main;split:heavy"),
        heavy,
        "{folded}"
    );
    assert_eq!(
        folded_count("C:pmain;split:main;split:light"),
        light,
        "{folded}"
    );
    drop(c);
}

#[test]
fn lua_stacks_chroot_gc64() {
    lua_stacks_in(
        "chroot-gc64",
        Variant::Gc64,
        Interp::Static,
        Entry::Chroot,
        Debug::Embedded,
        Source::Copy,
    );
}

/// The interpreter on its libluajit; the workload in a bind-mounted
/// volume.
#[test]
fn lua_stacks_chroot_nogc64_dso_volume() {
    lua_stacks_in(
        "chroot-nogc64-dso",
        Variant::NoGc64,
        Interp::Dso,
        Entry::Chroot,
        Debug::Embedded,
        Source::Volume,
    );
}

#[test]
fn lua_stacks_pivot_root_nogc64() {
    lua_stacks_in(
        "pivot-nogc64",
        Variant::NoGc64,
        Interp::Static,
        Entry::PivotRoot,
        Debug::Embedded,
        Source::Copy,
    );
}

#[test]
fn lua_stacks_pivot_root_gc64_dso_volume() {
    lua_stacks_in(
        "pivot-gc64-dso",
        Variant::Gc64,
        Interp::Dso,
        Entry::PivotRoot,
        Debug::Embedded,
        Source::Volume,
    );
}

/// The interpreter stripped, its DWARF only in the container's
/// `/usr/lib/debug/.build-id/` (an absolute link to the file).
#[test]
fn lua_stacks_stripped_debug_file_inside_chroot() {
    lua_stacks_in(
        "stripped-chroot",
        Variant::Gc64,
        Interp::Static,
        Entry::Chroot,
        Debug::Separate,
        Source::Copy,
    );
}

#[test]
fn lua_stacks_stripped_debug_file_inside_pivot_root() {
    lua_stacks_in(
        "stripped-pivot",
        Variant::NoGc64,
        Interp::Static,
        Entry::PivotRoot,
        Debug::Separate,
        Source::Copy,
    );
}

/// Stripped with no debug file anywhere: lj-lua-stacks reads the VM
/// through the shipped layout its code matches; what only the file's own
/// debug info has (a function's `$parameter`) gets the error naming the
/// places looked at, the container's first.
#[test]
fn stripped_without_debug_file_lists_the_places_inside() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(()) = container::available() else {
        return;
    };
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    let (_root, c) = split_container(
        "stripped-missing",
        lj,
        Interp::Static,
        Entry::PivotRoot,
        Debug::Missing,
        Source::Copy,
    );
    let pid = c.pid();
    let (status, out, err) = stapxx(&[
        "examples/lj-lua-stacks.sxx",
        "-x",
        &pid.to_string(),
        "--arg",
        "time=1",
    ]);
    assert_eq!(status, 0, "{err}");
    let bts = support::backtraces(&out);
    assert_eq!(
        bts[0].0,
        [
            format!("@{SPLIT}:{}", line("def:heavy")),
            format!("@{SPLIT}:0"),
            "C:pmain".to_string()
        ],
        "{out}"
    );
    let (status, out, err) = stapxx(&[
        "-x",
        &pid.to_string(),
        "-p2",
        "-e",
        "probe process.function(\"lua_gettop\") { println($L) }",
    ]);
    assert_eq!((status, out.as_str()), (1, ""), "{err}");
    let id = build_id(&lj.luajit);
    let (link, _) = debug_places(&id);
    // Named as the container knows it.
    assert!(
        err.contains(&format!(
            "no DWARF debuginfo for {} (build-id {id}, no debuglink); looked in:",
            interp_path(Interp::Static)
        )),
        "{err}"
    );
    let inside = format!("\n  /proc/{pid}/root{link} (not found)");
    let host = format!("\n  {link} (not found)");
    let asked = "\n  debuginfod (not asked: DEBUGINFOD_URLS is not set)";
    let at = |s: &str| err.find(s).unwrap_or_else(|| panic!("no {s:?} in {err}"));
    assert!(at(&inside) < at(&host) && at(&host) < at(asked), "{err}");
}

/// Three names of one file of a chrooted target: its path inside, the
/// path this host's `/proc` prints for it (the root in front), and an
/// absolute link inside the container (which this host would resolve
/// against its own root). All three place the uprobe at the same offset
/// of the same file.
#[test]
fn names_of_a_container_file() {
    let Some(()) = container::available() else {
        return;
    };
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    let root = Root::new("names");
    let inner = interp_path(Interp::Static);
    root.add_program(&lj.luajit, &inner);
    let link = "/usr/local/bin/stapxx-ctr-luajit";
    assert!(!Path::new(link).exists());
    root.link(&inner, link);
    root.add(&luajit::workload("split.lua"), SPLIT);
    let mut c = root.start(Entry::Chroot, &[&inner, "-joff", SPLIT], &[]);
    c.wait_for_line("ready");
    let pid = c.pid();
    let printed = root.dir.join("merged").join(inner.trim_start_matches('/'));
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        printed
    );
    assert!(!printed.exists(), "the overlay is visible from here");
    let names = [
        inner.clone(),
        printed.display().to_string(),
        link.to_string(),
    ];
    let script: String = names
        .iter()
        .map(|n| format!("probe process(\"{n}\").function(\"lj_str_new\") {{ }}\n"))
        .collect();
    let (status, out, err) = stapxx(&["-p2", "-x", &pid.to_string(), "-e", &script]);
    assert_eq!(status, 0, "{err}");
    let sites: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("#   uprobe at the entry of lj_str_new in "))
        .filter_map(|l| l.split_once(" (file offset "))
        .filter_map(|(module, rest)| Some((module, rest.split_once(')')?.0)))
        .collect();
    let want: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(sites.iter().map(|s| s.0).collect::<Vec<_>>(), want, "{out}");
    assert!(sites.iter().all(|s| s.1 == sites[0].1), "{out}");
    drop(c);
}

// --- nginx -------------------------------------------------------------------

/// A `stapxx-rs` run in the background, its output in files.
struct Traced {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Traced {
    fn start(name: &str, args: &[&str]) -> Traced {
        let out = support::scratch().join(format!("{name}.out"));
        let err = support::scratch().join(format!("{name}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
            .current_dir(support::workspace_root())
            .args(args)
            .env_remove("DEBUGINFOD_URLS")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("start stapxx-rs");
        Traced { child, out, err }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until stderr holds `what` (the probes are attached).
    fn wait_stderr(&mut self, what: &str) {
        let up = support::wait_until(Duration::from_secs(30), || {
            self.stderr().contains(what) || self.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            up && self.stderr().contains(what),
            "no {what:?}: {}",
            self.stderr()
        );
    }

    /// SIGINT, then the end: it must succeed, print no error and leave
    /// nothing in the kernel. Returns stdout and stderr.
    fn interrupt(mut self) -> (String, String) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let out = std::fs::read_to_string(&self.out).unwrap();
        let err = self.stderr();
        assert!(status.success(), "stapxx-rs: {status}\n{out}\n{err}");
        assert!(!err.contains("error"), "{err}");
        support::assert_no_bpf_leftovers(self.child.id());
        (out, err)
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counting requests on one worker (`-x`, its host pid) and on all of
/// them (`--master`) of nginx in a container.
fn nginx_in(shape: Shape, entry: Entry) {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(()) = container::available() else {
        return;
    };
    if !support::have_tool("wrk") {
        support::missing("wrk (package wrk)");
        return;
    }
    let Some(ng) = nginx::get(shape) else {
        return;
    };
    let name = format!("nginx-{}-{}", shape.name(), entry.name());
    let s = container_nginx::Server::start(&name, ng, entry);
    let workers = s.workers();
    assert_eq!(workers.len(), 2, "{workers:?}");
    let exe = container_nginx::exe();

    // One worker, by its host pid: its requests, by the pid it logs
    // inside the container.
    let worker = workers[0];
    let inside = container::inner_pid(worker);
    assert_ne!(
        inside, worker,
        "the worker should have a pid of its own inside"
    );
    let script = support::scratch().join(format!("{name}.stp"));
    std::fs::write(
        &script,
        "global n\n\
         probe begin { warn(\"attached\\n\") }\n\
         probe process(\"$^exec_path\").function(\"ngx_http_log_request\") {\n\
         \x20   if (pid() == target() && $r == $r->main) n++\n\
         }\n\
         probe end { printf(\"%d %d\\n\", target(), n) }\n",
    )
    .unwrap();
    let before = s.settled_log().len();
    let mut t = Traced::start(
        &format!("{name}-x"),
        &[script.to_str().unwrap(), "-x", &worker.to_string()],
    );
    t.wait_stderr("attached");
    // 32 connections: reuseport puts some on each worker.
    let w = Wrk::start(&s.url("/fast"), 2, 2, 32).wait();
    let log = s.settled_log();
    let (out, err) = t.interrupt();
    assert_eq!(w.errors, 0, "{}", w.output);
    let logged: Vec<_> = log[before..].to_vec();
    let mine = logged.iter().filter(|l| l.0 == inside).count();
    assert!(mine > 0 && mine < logged.len(), "{logged:?}");
    assert_eq!(out, format!("{worker} {mine}\n"), "{err}");
    assert!(
        err.starts_with(&format!(
            "WARNING: process {worker} is in another pid namespace, where it is pid {inside}: "
        )),
        "{err}"
    );

    // Every worker, found from the master's host pid.
    let before = s.settled_log().len();
    let mut t = Traced::start(
        &format!("{name}-master"),
        &["examples/ngx-rps.sxx", "--master", &s.master.to_string()],
    );
    t.wait_stderr("Tracing ");
    let w = Wrk::start(&s.url("/fast"), 3, 2, 16).wait();
    let logged = s.settled_log().len() - before;
    let (out, err) = t.interrupt();
    assert_eq!(w.errors, 0, "{}", w.output);
    assert!(
        err.contains(&format!("Tracing {} {} ({exe})", workers[0], workers[1])),
        "{err}"
    );
    let total: usize = out
        .lines()
        .find_map(|l| l.strip_suffix(" requests in total")?.parse().ok())
        .unwrap_or_else(|| panic!("no total in {out}"));
    assert!(logged > 0);
    assert_eq!(total, logged, "{out}");
    drop(s);
}

#[test]
fn nginx_module_compiled_in_chroot() {
    nginx_in(Shape::Static, Entry::Chroot);
}

#[test]
fn nginx_module_as_so_pivot_root() {
    nginx_in(Shape::Dynamic, Entry::PivotRoot);
}
