//! Shared helpers of the integration tests (and of the benches, which
//! include this file with `#[path]`): real test targets and the oracles
//! that check them.
//!
//! * [`luajit`]: LuaJIT (OpenResty's fork, Debian's `luajit2` source
//!   package) built with debug info, GC64 and 32-bit-GCRef, cached under
//!   `target/fixtures/`;
//! * [`neovim`]: Debian's neovim, a stripped LuaJIT embedder, running a
//!   Lua workload of `tests/lua/`;
//! * [`nginx`]: nginx with lua-nginx-module built with debug info, and
//!   [`debian_nginx`]: Debian's own stripped packages of it, both run by
//!   [`nginx::Server`];
//! * [`lj_stacks`]: runs of `examples/lj-lua-stacks.sxx` on a live
//!   process, and what they printed;
//! * [`pahole`]: struct layouts as `pahole` (package `dwarves`) prints them;
//! * [`pyroscope`]: a loopback HTTP receiver standing in for a Pyroscope
//!   server, and `go tool pprof` to read what it received;
//! * [`container`]: overlayfs roots entered by `chroot` or `pivot_root` in
//!   new mount and pid namespaces, holding copies of the other fixtures
//!   ([`container_nginx`]: the nginx fixtures served from one);
//! * [`stap`]: SystemTap's own passes 2 and 3 as an oracle for user-space
//!   probes;
//! * C fixtures compiled from `tests/fixtures/*.c`, running processes that
//!   are killed when the test ends, and reading a live process's memory.
//!
//! Something a test needs and cannot have (a tool, the network, root) is a
//! failure when `CI=true`; elsewhere the test says why and passes without
//! checking anything ([`missing`]).

#![allow(dead_code)]

pub mod apt;
pub mod container;
pub mod container_nginx;
pub mod debian;
pub mod debian_nginx;
pub mod lj_stacks;
pub mod luajit;
pub mod neovim;
pub mod nginx;
pub mod nginx_checks;
pub mod pahole;
pub mod pprof;
pub mod pyroscope;
pub mod session;
pub mod stap;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use stapxx::debuginfo::{Access, Fetch, MapEntry, Resolved};

/// Whether this run is CI's (`CI=true`), where nothing may be skipped.
pub fn ci() -> bool {
    matches!(
        std::env::var("CI").as_deref(),
        Ok("true") | Ok("1") | Ok("yes")
    )
}

/// Reports that `what` is missing: panics under CI, else prints a note (the
/// caller then returns without checking anything).
pub fn missing(what: &str) {
    if ci() {
        panic!("required for this test and missing (CI=true): {what}");
    }
    eprintln!("SKIPPED (not CI): {what}");
}

/// Whether this process runs as root (mounts, chroot, other processes' memory).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Tests of one test binary that use BPF run one at a time: uprobes fire
/// for every process of a binary, and leftover checks must see only their
/// own test's objects.
static BPF_SERIAL: Mutex<()> = Mutex::new(());

/// Skip (or fail under CI) when BPF cannot be used here; otherwise hold
/// the serialising lock for the test's duration.
pub fn need_bpf() -> Option<std::sync::MutexGuard<'static, ()>> {
    if is_root() {
        return Some(BPF_SERIAL.lock().unwrap_or_else(|p| p.into_inner()));
    }
    missing("root (BPF, perf events, uprobes and tracepoints)");
    None
}

/// `stapxx-rs -c CMD -e SCRIPT` to its end: (status, stdout, stderr).
pub fn stapxx_c(cmd: &str, script: &str) -> (i32, String, String) {
    stapxx(&["-c", cmd, "-e", script])
}

/// `stapxx-rs ARGS...` to its end: (status, stdout, stderr).
pub fn stapxx(args: &[&str]) -> (i32, String, String) {
    stapxx_in(Path::new("."), args)
}

/// [`stapxx`] with `dir` as its working directory.
pub fn stapxx_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run stapxx-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The file offsets of the uprobe sites `stapxx-rs -p2` lists for
/// `probe process("EXE").POINT { }`, in its order (it must resolve).
pub fn p2_site_offsets(exe: &Path, point: &str) -> Vec<u64> {
    let script = format!("probe process(\"{}\").{point} {{ }}", exe.display());
    let (code, out, err) = stapxx(&["-p2", "-e", &script]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .filter_map(|l| {
            let at = l.split("(file offset 0x").nth(1)?;
            u64::from_str_radix(at.split(')').next()?, 16).ok()
        })
        .collect()
}

/// Whether `tool` can be run (`tool --version` starts).
pub fn have_tool(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The workspace root (the directory of the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else the directory that
/// holds this test executable's `<profile>/deps`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        return if d.is_absolute() {
            d
        } else {
            workspace_root().join(d)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(deps) = exe.ancestors().find(|a| a.ends_with("deps")) {
            if let Some(t) = deps.parent().and_then(Path::parent) {
                return t.to_path_buf();
            }
        }
    }
    workspace_root().join("target")
}

/// `<target>/fixtures`: built test targets, kept between runs.
pub fn fixtures_dir() -> PathBuf {
    let d = target_dir().join("fixtures");
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// A scratch directory for this process, under the system's temporary
/// directory; those of processes that are gone are removed.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = std::env::temp_dir().join("stapxx-it");
        if let Ok(rd) = std::fs::read_dir(&parent) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Ok(pid) = name.parse::<u32>() {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

/// Runs a command to completion; its output on failure.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// An exclusive lock on `target/fixtures/NAME`, held while the value
/// lives: one test process at a time builds or fetches a fixture.
pub struct FixtureLock(#[allow(dead_code)] std::fs::File);

pub fn fixture_lock(name: &str) -> Result<FixtureLock, String> {
    let path = fixtures_dir().join(name);
    let f = std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    f.lock()
        .map_err(|e| format!("lock {}: {e}", path.display()))?;
    Ok(FixtureLock(f))
}

/// A `strip --strip-all` copy of `file` (`.dynsym` stays, as in a
/// distribution package): `target/fixtures/NAME`, made anew each call
/// (written aside, then renamed into place).
pub fn stripped_copy(file: &Path, name: &str) -> PathBuf {
    let out = fixtures_dir().join(name);
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    must(
        Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(&tmp)
            .arg(file),
    );
    std::fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename to {}: {e}", out.display()));
    out
}

/// Runs a command that must succeed.
pub fn must(cmd: &mut Command) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

/// `tests/fixtures/NAME.c` compiled with `cc -g -O0 FLAGS` into the scratch
/// directory, once per `tag` and process.
pub fn c_fixture(source: &str, tag: &str, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get(tag) {
        return p.clone();
    }
    let out = scratch().join(tag);
    must(
        Command::new("cc")
            .args(["-g", "-O0"])
            .args(flags)
            .arg(workspace_root().join("tests/fixtures").join(source))
            .arg("-o")
            .arg(&out),
    );
    built.insert(tag.to_string(), out.clone());
    out
}

/// The line (1-based) of the file `path` that carries the comment marker
/// `-- @MARKER` (e.g. `hot:spin`, `def:spin`), for tests that assert
/// frames of Lua workloads; exactly one line must carry it.
pub fn marker_line_of(path: &Path, marker: &str) -> u32 {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let tag = format!("-- @{marker}");
    let hits: Vec<u32> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split("-- @")
                .skip(1)
                .any(|m| format!("-- @{}", m.split_whitespace().next().unwrap_or("")) == tag)
        })
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "marker {tag} in {}: lines {hits:?}",
        path.display()
    );
    hits[0]
}

/// The line (1-based) of the C fixture `tests/fixtures/FILE` that carries
/// the comment marker `LINE:name`; exactly one line must carry it.
pub fn c_line_of(file: &str, name: &str) -> usize {
    let src = workspace_root().join("tests/fixtures").join(file);
    let text =
        std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let tag = format!("LINE:{name} ");
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(&tag))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(hits.len(), 1, "{file} {name}: {hits:?}");
    hits[0]
}

/// Clock `clock` (`libc::CLOCK_MONOTONIC`, `CLOCK_BOOTTIME`, ...) now, in
/// nanoseconds: the oracle for what a script's clock functions print.
pub fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// A process started by a test, killed (and reaped) when dropped.
pub struct Proc {
    pub child: Child,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Proc {
    /// Starts `cmd` with its stdout piped.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdout = child.stdout.take().map(BufReader::new);
        Proc { child, stdout }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process prints from here to the end of its stdout.
    pub fn rest(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut r) = self.stdout.take() {
            r.read_to_string(&mut out).expect("read stdout");
        }
        out
    }

    /// Waits (at most `timeout`) for the line `want` on the process's
    /// stdout; panics with what came instead.
    pub fn wait_for_line(&mut self, want: &str, timeout: Duration) {
        let mut reader = self.stdout.take().expect("stdout piped");
        let want_owned = want.to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Err(seen));
                        return;
                    }
                    Ok(_) => {
                        if line.trim_end() == want_owned {
                            let _ = tx.send(Ok(reader));
                            return;
                        }
                        seen.push_str(&line);
                    }
                }
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(Ok(reader)) => self.stdout = Some(reader),
            Ok(Err(seen)) => {
                let status = self.child.try_wait().ok().flatten();
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("process ended (status {status:?}) before printing {want:?}; stdout: {seen:?} stderr: {err:?}")
            }
            Err(_) => panic!("no {want:?} line within {timeout:?}"),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's memory, read through `/proc/PID/mem`.
pub struct Mem(std::fs::File);

impl Mem {
    pub fn open(pid: u32) -> Mem {
        let path = format!("/proc/{pid}/mem");
        Mem(std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}")))
    }

    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        self.0
            .read_exact_at(&mut buf, addr)
            .unwrap_or_else(|e| panic!("read {len} bytes at {addr:#x}: {e}"));
        buf
    }

    /// An unsigned little-endian integer of `size` (1..=8) bytes.
    pub fn uint(&self, addr: u64, size: usize) -> u64 {
        let b = self.read(addr, size);
        let mut v = [0u8; 8];
        v[..size].copy_from_slice(&b);
        u64::from_le_bytes(v)
    }

    /// Evaluates a resolved chain from `base` the way the generated code
    /// will: the accesses in order, then the fetch. `indices` are the
    /// values of the chain's computed indices.
    pub fn eval(&self, base: u64, r: &Resolved, indices: &[i64]) -> i64 {
        let mut a = base;
        for acc in &r.accesses {
            match *acc {
                Access::Add(n) => a = a.wrapping_add(n as u64),
                Access::AddScaled { slot, elem_size } => {
                    a = a.wrapping_add((indices[slot] as u64).wrapping_mul(elem_size))
                }
                Access::Deref { size } => a = self.uint(a, usize::from(size)),
            }
        }
        match r.fetch {
            Fetch::Address => a as i64,
            Fetch::Load {
                size,
                signed,
                bitfield,
            } => {
                let raw = self.uint(a, usize::from(size));
                let (shift, width) = match bitfield {
                    Some(bf) => (u32::from(bf.shift), u32::from(bf.width)),
                    None => (0, u32::from(size) * 8),
                };
                let up = raw << (64 - shift - width);
                if signed {
                    (up as i64) >> (64 - width)
                } else {
                    (up >> (64 - width)) as i64
                }
            }
        }
    }
}

/// The mappings of `file` in a process's maps, in the form the debuginfo
/// module takes.
pub fn map_entries(info: &stapxx::target::TargetInfo, file: &Path) -> Vec<MapEntry> {
    info.mappings_of(file)
        .map(|m| MapEntry {
            start: m.start,
            end: m.end,
            offset: m.offset,
        })
        .collect()
}

/// Polls `cond` every 20 ms for at most `timeout`.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ids of the BPF programs and maps some live process holds an fd of.
pub fn held_bpf_ids() -> std::collections::HashSet<String> {
    let mut held = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return held;
    };
    for p in procs.flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(text) = std::fs::read_to_string(fd.path()) else {
                continue;
            };
            for line in text.lines() {
                for key in ["prog_id:", "map_id:"] {
                    if let Some(v) = line.strip_prefix(key) {
                        held.insert(format!("{}{}", &key[..1], v.trim()));
                    }
                }
            }
        }
    }
    held
}

/// Programs and maps named `stx_*` still in the kernel that no live process
/// holds: leaked. (Objects of other running stapxx-rs processes on the
/// machine are held by them and not counted.)
pub fn bpf_leftovers() -> Vec<String> {
    // The kernel frees maps after their programs, asynchronously, and other
    // processes may be loading and releasing objects meanwhile: list first,
    // then see who holds what, and call leaked only what stays unheld for
    // five seconds (another session's objects of the moment are gone by
    // then; a leak is not).
    let mut left: Option<Vec<(String, String)>> = None;
    for _ in 0..50 {
        let mut listed = Vec::new();
        for (what, tag) in [("prog", "p"), ("map", "m")] {
            let Ok(o) = Command::new("bpftool").args([what, "list"]).output() else {
                continue;
            };
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                if line.contains(" name stx_") {
                    let id = line.split(':').next().unwrap_or("").trim().to_string();
                    listed.push((format!("{tag}{id}"), line.trim().to_string()));
                }
            }
        }
        let held = held_bpf_ids();
        let unheld: Vec<(String, String)> = listed
            .into_iter()
            .filter(|(id, _)| !held.contains(id))
            .collect();
        let still: Vec<(String, String)> = match left {
            None => unheld,
            Some(prev) => prev
                .into_iter()
                .filter(|(id, _)| unheld.iter().any(|(u, _)| u == id))
                .collect(),
        };
        let done = still.is_empty();
        left = Some(still);
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    left.unwrap_or_default()
        .into_iter()
        .map(|(_, line)| line)
        .collect()
}

/// Checks that nothing of ours stays in the kernel after the stapxx-rs
/// process `child_pid` (no uprobe event, no unheld `stx_*` program or
/// map). Its programs are released when it exits; a concurrent test may
/// still hold its own, so wait for ours by process.
pub fn assert_no_bpf_leftovers(child_pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{child_pid}")).exists() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let uprobes = std::fs::read_to_string("/sys/kernel/tracing/uprobe_events").unwrap_or_default();
    assert!(!uprobes.contains("stx"), "uprobe events left: {uprobes}");
    let left = bpf_leftovers();
    assert!(left.is_empty(), "BPF objects left behind: {left:?}");
}

/// lj-lua-stacks output as (frames, count) per backtrace, in output order;
/// checks that every backtrace has its count line and that the counts
/// descend.
pub fn backtraces(out: &str) -> Vec<(Vec<String>, u64)> {
    let mut res = Vec::new();
    let mut frames = Vec::new();
    for line in out.lines() {
        if let Some(n) = line.strip_prefix('\t') {
            res.push((
                std::mem::take(&mut frames),
                n.trim().parse().expect("count"),
            ));
        } else if !line.is_empty() {
            frames.push(line.to_string());
        }
    }
    assert!(frames.is_empty(), "frames without a count: {frames:?}");
    assert!(res.windows(2).all(|w| w[0].1 >= w[1].1), "{res:?}");
    res
}

/// Shell loops spinning on `n` CPUs until dropped: an idle CPU takes no
/// ticks (tickless idle), and busy CPUs make races between probes likely.
pub struct BusyCpus(Vec<Child>);

pub fn busy_cpus(n: usize) -> BusyCpus {
    BusyCpus(
        (0..n)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .expect("sh")
            })
            .collect(),
    )
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The ping-pong fixture (`tests/fixtures/pingpong.c`): the thread id its
/// output gives for `who` ("ping" or "pong").
pub fn pingpong_tid(out: &str, who: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{who} ")))
        .unwrap_or_else(|| panic!("no {who} line: {out}"))
        .to_string()
}

/// Whether `n` switches one way is about one per round of the ping-pong
/// fixture: both threads on CPU 0, other tasks of that CPU (stapxx-rs
/// reading the output, for one) may come in between, and a woken thread
/// may be switched in and out once more (with the other tests of the
/// binary running on the same CPU, up to a sixth more than the rounds
/// were seen).
pub fn about_one_per_round(n: usize, rounds: usize) -> bool {
    n * 2 >= rounds && n * 2 <= rounds * 3
}

/// `calls` print `want` in a host probe (`begin`) and in a kernel one
/// (`timer.profile`, once), alike.
pub fn same_on_host_and_kernel(calls: &str, want: &str) {
    same_on_host_and_kernel_after("", calls, want)
}

/// [`same_on_host_and_kernel`] with `prelude` (functions, globals) first.
pub fn same_on_host_and_kernel_after(prelude: &str, calls: &str, want: &str) {
    let (code, out, err) = stapxx(&["-e", &format!("{prelude}probe begin {{ {calls}; exit() }}")]);
    assert_eq!((code, err.as_str(), out.as_str()), (0, "", want));
    let Some(_bpf) = need_bpf() else {
        return;
    };
    let (code, out, err) = stapxx(&[
        "-e",
        &format!("{prelude}global d probe timer.profile {{ if (!d++) {{ {calls}; exit() }} }}"),
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        !out.is_empty() && out.lines().all(|l| format!("{l}\n") == want),
        "{out}"
    );
}
