//! `$^pid_ok` following processes that come and go (`expand/follow.rs`):
//! what `--master` and `--procs-of` add to a script (`-p1`, `--dump-src`),
//! their errors, and `--procs-of` counting timer samples in exactly the
//! processes of one executable file: two running at start, a fork made
//! while the session runs, one that execs it later (from its exec on), and
//! none of a byte-for-byte copy of it under the same name. (nginx reloads,
//! respawns and binary upgrades under `--master` are in `tests/nginx.rs`.)

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::luajit::{self, Variant};

fn stapxx(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args(args)
        .output()
        .expect("run stapxx-rs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A shell that starts two children (`sleep`s, standing for workers) and
/// waits: a master for `--master`. Killed with its children on drop.
struct Master(Child);

impl Master {
    fn start() -> Master {
        use std::os::unix::process::CommandExt;
        let m = Master(
            Command::new("sh")
                .args(["-c", "sleep 60 & sleep 60 & wait"])
                .process_group(0)
                .spawn()
                .unwrap(),
        );
        let pid = m.0.id();
        assert!(support::wait_until(Duration::from_secs(10), || {
            stapxx::target::children_of(pid).is_ok_and(|c| c.len() == 2)
        }));
        m
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test made.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The master's pid where the generated code names it, as MASTER.
fn redact(out: &str, pid: &str) -> String {
    out.replace(&format!("[{pid}]"), "[MASTER]")
        .replace(&format!("--master {pid}:"), "--master MASTER:")
}

const USES_PID_OK: &str = "probe timer.profile { if ($^pid_ok) n++ }\nglobal n\n";

/// `-p1` under `--master`: the script with `$^pid_ok` a call, then the
/// generated code under its own heading; `--dump-src` the same as text.
#[test]
fn master_listing_and_dump_src_show_the_generated_code() {
    let m = Master::start();
    let pid = m.0.id().to_string();
    let o = stapxx(&["-p1", "--master", &pid, "-e", USES_PID_OK]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("master_p1", redact(&text(&o.stdout), &pid));
    let o = stapxx(&["--dump-src", "--master", &pid, "-e", USES_PID_OK]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    insta::assert_snapshot!("master_dump_src", redact(&text(&o.stdout), &pid));
    // No $^pid_ok, nothing added.
    let o = stapxx(&["-p1", "--master", &pid, "-e", "probe timer.s(1) { exit() }"]);
    assert_eq!(text(&o.stdout), "probe timer.s(1) {\n  exit()\n}\n");
}

/// `--procs-of` names a file, and says so when it cannot be one.
#[test]
fn procs_of_errors_and_what_it_expands_to() {
    let o = stapxx(&["-p1", "--procs-of", "/no/such/luajit", "-e", USES_PID_OK]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "error: --procs-of /no/such/luajit: No such file or directory (os error 2)\n"
    );
    let o = stapxx(&["-p1", "--procs-of", "/", "-e", USES_PID_OK]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "error: --procs-of /: not a regular file\n");
    let o = stapxx(&["-p1", "--procs-of", "/bin/sh", "-x", "1", "-e", USES_PID_OK]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("stapxx-rs: "),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stderr).lines().count(), 1);

    // A file no process runs: $^target is ANY, $^pid_ok the generated test
    // of the file's inode and device.
    let dir = support::scratch().join("procs-of");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("idle");
    std::fs::copy("/bin/true", &exe).unwrap();
    let id = stapxx::target::FileIdentity::of(&exe).unwrap();
    let src = "probe begin { println(\"$^target $^exec_path\") }\n\
               probe timer.profile { if ($^pid_ok) n++ }\nglobal n\n";
    let o = stapxx(&["--dump-src", "--procs-of", exe.to_str().unwrap(), "-e", src]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let (script, generated) = out.split_at(out.find("# Generated").expect(&out));
    assert_eq!(
        script,
        format!(
            "probe begin {{ println(\"ANY {}\") }}\n\
             probe timer.profile {{ if (__stapxx_pid_ok()) n++ }}\nglobal n\n",
            exe.display()
        )
    );
    assert!(
        generated.starts_with(&format!("# Generated for --procs-of {}:", exe.display())),
        "{generated}"
    );
    assert!(
        generated.contains(&format!(
            "->i_ino == {}\n    && @cast(inode, \"inode\", \"kernel\")->i_sb->s_dev == {}\n}}\n",
            id.ino, id.dev
        )),
        "{generated}"
    );
}

/// A process started by the test, killed (with its children) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test made.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// `cmd` in a process group of its own, stdin and stdout piped; waits for
/// its line "ready".
fn start(cmd: &mut Command) -> (Proc, BufReader<std::process::ChildStdout>) {
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0);
    // A file just written (the copy of LuaJIT) is busy while a process
    // that another test thread forks meanwhile still holds the write
    // descriptor, until it execs: try again then.
    let mut tries = 0;
    let mut c = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => break r.unwrap(),
        }
    };
    let out = BufReader::new(c.stdout.take().unwrap());
    (Proc(c), out)
}

/// Reads lines until `want` (within 20 s), panicking with what came.
fn wait_line(
    out: BufReader<std::process::ChildStdout>,
    want: &str,
) -> BufReader<std::process::ChildStdout> {
    let wanted = want.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = out;
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = tx.send(Err(seen));
                return;
            }
            if line.trim_end() == wanted {
                let _ = tx.send(Ok(out));
                return;
            }
            seen.push_str(&line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(out)) => out,
        Ok(Err(seen)) => panic!("ended before {want:?}: {seen}"),
        Err(_) => panic!("no {want:?} within 20 s"),
    }
}

/// `--procs-of LUAJIT` with timer.profile counting samples per (pid,
/// execname) where `$^pid_ok`: exactly the two LuaJITs running at start,
/// the child one of them forks later, and the process that execs LuaJIT
/// later (not while it still ran sh); never the copy of LuaJIT.
#[test]
fn procs_of_follows_every_process_of_the_file() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let Some(lj) = luajit::get(Variant::Gc64) else {
        return;
    };
    let spin = luajit::workload("spin.lua");
    let forks = luajit::workload("forks.lua");
    let lua_path = lj.lua_path();
    let luajit_cmd = |exe: &std::path::Path, script: &std::path::Path| {
        let mut c = Command::new(exe);
        c.arg("-joff").arg(script).env("LUA_PATH", &lua_path);
        c
    };
    let (a, out) = start(&mut luajit_cmd(&lj.luajit, &spin));
    let _a_out = wait_line(out, "ready");
    let (mut b, out) = start(&mut luajit_cmd(&lj.luajit, &forks));
    let _b_out = wait_line(out, "ready");
    // The same bytes, the same name, another file.
    let copy_dir = support::scratch().join("copy");
    std::fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join("luajit");
    std::fs::copy(&lj.luajit, &copy).unwrap();
    let (d, out) = start(&mut luajit_cmd(&copy, &spin));
    let _d_out = wait_line(out, "ready");
    // A shell that, when told, spins a while (its samples must not count:
    // it does not run LuaJIT yet), then runs LuaJIT by exec().
    let (mut c, c_out) = start(
        Command::new("sh")
            .arg("-c")
            .arg(
                "read x; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
                 exec \"$0\" -joff \"$1\"",
            )
            .arg(&lj.luajit)
            .arg(&spin)
            .env("LUA_PATH", &lua_path),
    );

    let script = "global seen\n\
                  probe begin { printf(\"tracing %s\\n\", \"$^target\") }\n\
                  probe timer.profile { if ($^pid_ok) seen[pid(), execname()] <<< 1 }\n\
                  probe end { foreach ([p+, e] in seen) printf(\"%d %s %d\\n\", p, e, @count(seen[p, e])) }\n";
    let mut st = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["--procs-of", lj.luajit.to_str().unwrap(), "-e", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut at_start = [a.0.id(), b.0.id()];
    at_start.sort_unstable();
    let st_out = wait_line(
        BufReader::new(st.stdout.take().unwrap()),
        &format!("tracing {} {}", at_start[0], at_start[1]),
    );
    writeln!(c.0.stdin.as_mut().unwrap()).unwrap();
    writeln!(b.0.stdin.as_mut().unwrap()).unwrap();
    let _c_out = wait_line(c_out, "ready");
    let mut b_child = Vec::new();
    assert!(support::wait_until(Duration::from_secs(10), || {
        b_child = stapxx::target::children_of(b.0.id()).unwrap_or_default();
        b_child.len() == 1
    }));
    // Every spinner takes some of the two CPUs for a second and a half.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(st.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    let mut st_out = st_out;
    st_out.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    st.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = st.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("rror"), "{err}");
    support::assert_no_bpf_leftovers(st.id());

    // A script that places @var addresses at load time is told that they
    // hold for one process (the first found) only.
    let o = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::workspace_root())
        .args(["-p4", "examples/lj-lua-stacks.sxx", "--procs-of"])
        .arg(&lj.luajit)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let first = [a.0.id(), b.0.id(), b_child[0], c.0.id()]
        .into_iter()
        .min()
        .unwrap();
    assert!(
        text(&o.stderr).contains(&format!(
            "WARNING: --procs-of {}: @var addresses and the symbol and unwind tables are placed as in process {first} (the first found);",
            lj.luajit.display()
        )),
        "{}",
        text(&o.stderr)
    );

    // The shell's exec() has a moment, in the kernel, when the process
    // already has LuaJIT's memory (its executable is LuaJIT's file) but
    // still the name "sh": a sample that lands there counts as "C sh". The
    // shell's own loop (tens of samples of the two CPUs) must not.
    let mut seen = BTreeSet::new();
    for line in rest.lines() {
        let (key, n) = line.rsplit_once(' ').expect(line);
        let n: u64 = n.parse().expect(line);
        if key == format!("{} sh", c.0.id()) {
            assert!(n <= 2, "the shell counted before its exec: {rest}");
        } else {
            seen.insert(key.to_string());
        }
    }
    let want: BTreeSet<String> = [a.0.id(), b.0.id(), b_child[0], c.0.id()]
        .iter()
        .map(|p| format!("{p} luajit"))
        .collect();
    assert_eq!(seen, want, "the copy {} must not count: {rest}", d.0.id());
}
