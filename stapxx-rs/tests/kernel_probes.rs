//! Kernel probes for real: scripts compiled to eBPF, attached to perf
//! events and uprobes, their output and globals read back. Each test also
//! checks that nothing of ours stays in the kernel afterwards.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn stapxx() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"));
    c.current_dir(support::workspace_root());
    c
}

fn script(name: &str, text: &str) -> std::path::PathBuf {
    let p = support::scratch().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn timer_profile_counts_ticks_on_every_cpu() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let hz = stapxx::kernel::kernel_hz();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as u64;
    // Keep every CPU busy: an idle CPU takes no ticks (tickless idle).
    let busy = support::busy_cpus(cpus as usize);
    let s = script(
        "profile.stp",
        "global n\nprobe timer.profile { n++ }\nprobe timer.s(2) { printf(\"%d\\n\", n); exit() }\n",
    );
    let out = stapxx().arg(&s).output().unwrap();
    drop(busy);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n: u64 = stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {stdout:?}"));
    let want = 2 * cpus * hz;
    let lo = want * 8 / 10;
    let hi = want * 12 / 10;
    assert!(
        n >= lo && n <= hi,
        "{n} samples, want {want} (2 s x {cpus} CPUs x {hz} Hz) within 20%"
    );
    let left = support::bpf_leftovers();
    assert!(left.is_empty(), "BPF objects left behind: {left:?}");
}

struct Target {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Target {
    fn start(bin: &std::path::Path, n: u32) -> Target {
        let mut child = Command::new(bin)
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        Target { child, out }
    }

    fn poke(&mut self) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        line
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the script and wait until its begin probe printed `attached`.
fn start_attached(args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = stapxx()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line != "attached\n" {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
        panic!("expected 'attached', got {line:?}; stderr: {err}");
    }
    (child, out)
}

fn interrupt_and_collect(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (String, String, Option<i32>) {
    let pid = child.id();
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc_kill(pid as i32, 2) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
    let status = child.wait().unwrap();
    support::assert_no_bpf_leftovers(pid);
    (rest, err, status.code())
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn uprobes_and_uretprobes_count_exactly() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_count", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 1234);
    let bin_s = bin.display().to_string();
    let s = script(
        "uprobe.stp",
        &format!(
            "global calls, rets, sum\n\
             probe begin {{ printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"work\") {{ calls++; sum += u_register(\"rdi\") }}\n\
             probe process(\"{bin_s}\").function(\"work\").return {{ rets++ }}\n\
             probe end {{ printf(\"%d %d %d\\n\", calls, rets, sum) }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 1234\n");
    let (rest, err, code) = interrupt_and_collect(child, out);
    assert_eq!(code, Some(0), "{err}");
    // sum of 0..1234
    assert_eq!(rest, format!("1234 1234 {}\n", 1233 * 1234 / 2));
    let left = support::bpf_leftovers();
    assert!(left.is_empty(), "BPF objects left behind: {left:?}");
}

#[test]
fn strings_loops_and_arrays_in_a_uprobe() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_strings", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 10);
    let bin_s = bin.display().to_string();
    let s = script(
        "uprobe_strings.stp",
        &format!(
            "global seen, by_parity, total\n\
             function label:string (x) {{ return x % 2 ? \"odd\" : \"even\" }}\n\
             probe begin {{ printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"work\") {{\n\
               x = u_register(\"rdi\")\n\
               s = \"\"\n\
               for (i = 0; i < 3; i++) s .= sprintf(\"%d,\", x + i)\n\
               seen[x] = s\n\
               by_parity[label(x)] <<< x\n\
               total += x\n\
             }}\n\
             probe end {{\n\
               printf(\"%s|%s|%d\\n\", seen[0], seen[9], total)\n\
               printf(\"odd %d %d %d %d\\n\", @count(by_parity[\"odd\"]), @sum(by_parity[\"odd\"]), @min(by_parity[\"odd\"]), @max(by_parity[\"odd\"]))\n\
               printf(\"even %d %d\\n\", @count(by_parity[\"even\"]), @sum(by_parity[\"even\"]))\n\
             }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 10\n");
    let (rest, err, code) = interrupt_and_collect(child, out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rest, "0,1,2,|9,10,11,|45\nodd 5 25 1 9\neven 5 20\n");
}

#[test]
fn kernel_printf_reaches_stdout_in_order() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_printf", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 5);
    let bin_s = bin.display().to_string();
    let s = script(
        "uprobe_printf.stp",
        &format!(
            "probe begin {{ printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"work\") {{ printf(\"work(%d) pid ok %d\\n\", u_register(\"rdi\"), pid() == target()) }}\n\
             probe end {{ println(\"end\") }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 5\n");
    std::thread::sleep(Duration::from_millis(300));
    let (rest, err, code) = interrupt_and_collect(child, out);
    assert_eq!(code, Some(0), "{err}");
    let want: String = (0..5)
        .map(|i| format!("work({i}) pid ok 1\n"))
        .collect::<String>()
        + "end\n";
    assert_eq!(rest, want);
}

#[test]
fn entry_values_and_parameters_in_return_probes() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_entry", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 4);
    let bin_s = bin.display().to_string();
    let s = script(
        "entry.stp",
        &format!(
            "global t\n\
             probe begin {{ printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"work\").return {{ t[$x] = @entry($x * 10) + $return }}\n\
             probe end {{ foreach (k+ in t) printf(\"%d %d\\n\", k, t[k]) }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 4\n");
    let (rest, err, code) = interrupt_and_collect(child, out);
    assert_eq!(code, Some(0), "{err}");
    // work(x) returns 2x + 1: 10x + 2x + 1.
    assert_eq!(rest, "0 1\n1 13\n2 25\n3 37\n");
}

#[test]
fn the_traced_process_exiting_ends_the_session() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_exit", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 3);
    let bin_s = bin.display().to_string();
    let s = script(
        "exit_target.stp",
        &format!(
            "global n\n\
             probe begin {{ printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"work\") {{ n++ }}\n\
             probe end {{ printf(\"calls %d\\n\", n) }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (mut child, mut out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 3\n");
    // Closing its stdin makes the target exit; the session must follow.
    drop(t.child.stdin.take());
    let _ = t.child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "stapxx-rs did not end after the target exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(rest, "calls 3\n");
    support::assert_no_bpf_leftovers(child.id());
}

#[test]
fn tracepoint_counts_a_process_syscalls() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import os,sys\nprint('ready', flush=True)\nsys.stdin.readline()\n[os.getppid() for _ in range(100)]\nprint('done', flush=True)\nsys.stdin.readline()\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut py_out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    py_out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let s = script(
        "tracepoint.stp",
        "global n\n\
         probe begin { printf(\"attached\\n\") }\n\
         probe kernel.trace(\"syscalls:sys_enter_getppid\") { if (pid() == target()) n++ }\n\
         probe end { printf(\"%d\\n\", n) }\n",
    );
    let pid = py.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    py.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    py.stdin.as_mut().unwrap().flush().unwrap();
    line.clear();
    py_out.read_line(&mut line).unwrap();
    assert_eq!(line, "done\n");
    let (rest, err, code) = interrupt_and_collect(child, out);
    let _ = py.kill();
    let _ = py.wait();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rest, "100\n");
}

#[test]
fn dash_c_command_is_the_target_and_ends_the_session() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("getppid.c", "getppid", &["-g", "-O2"]);
    // Counted by a uprobe on the program's own function: the shell that
    // starts the command cannot add to it.
    let s = script(
        "dash_c.stp",
        &format!(
            "global n\n\
             probe process(\"{}\").function(\"tick\") {{ if (pid() == target()) n++ }}\n\
             probe end {{ printf(\"%d\\n\", n) }}\n",
            bin.display()
        ),
    );
    // Quoting in the command: still exec'd, so target() is the program.
    let cmd = format!("'{}' 123", bin.display());
    let out = stapxx().arg(&s).args(["-c", &cmd]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "123\n");
}

#[test]
fn optional_and_sufficient_probe_points() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_optional", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 2);
    let bin_s = bin.display().to_string();
    // `?`: a function that does not exist is skipped. `!`: once `work` is
    // placed, `main` (which would also fire... never, it already ran) is
    // not even tried: a missing function after it is no error.
    let s = script(
        "optional.stp",
        &format!(
            "global n\n\
             probe begin {{ printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"no_such_function\") ?,\n\
                   process(\"{bin_s}\").function(\"work\") !,\n\
                   process(\"{bin_s}\").function(\"also_missing\") {{ n++ }}\n\
             probe end {{ printf(\"%d\\n\", n) }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 2\n");
    let (rest, err, code) = interrupt_and_collect(child, out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rest, "2\n");
    // Without `?` the missing function is an error naming the point.
    let s = script(
        "not_optional.stp",
        &format!("probe process(\"{bin_s}\").function(\"no_such_function\") {{ }}\n"),
    );
    let out = stapxx().arg(&s).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_function"), "{err}");
}

#[test]
fn globals_set_by_host_probes_reach_the_kernel() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("calls.c", "calls_hostset", &["-g", "-O2"]);
    let mut t = Target::start(&bin, 3);
    let bin_s = bin.display().to_string();
    // The begin probe sets a flag, a scale, a label and a table entry that
    // the kernel probe reads.
    let s = script(
        "hostset.stp",
        &format!(
            "global enabled, scale, label, table, seen\n\
             probe begin {{ enabled = 1; scale = 7; label = \"x\"; table[2] = 100; printf(\"attached\\n\") }}\n\
             probe process(\"{bin_s}\").function(\"work\") {{\n\
               if (enabled) seen[u_register(\"rdi\")] = sprintf(\"%s%d\", label, u_register(\"rdi\") * scale + table[u_register(\"rdi\")])\n\
             }}\n\
             probe end {{ foreach (k+ in seen) printf(\"%d %s\\n\", k, seen[k]) }}\n"
        ),
    );
    let pid = t.child.id().to_string();
    let (child, out) = start_attached(&["-x", &pid, s.to_str().unwrap()]);
    assert_eq!(t.poke(), "done 3\n");
    let (rest, err, code) = interrupt_and_collect(child, out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(rest, "0 x0\n1 x7\n2 x114\n");
}

#[test]
fn global_counters_lose_no_updates_across_cpus() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let busy = support::busy_cpus(cpus);
    // 10 kHz on every CPU: `a++` and `arr[1] += 2` are atomic adds.
    let s = script(
        "atomic.stp",
        "global a, arr\n\
         probe perf.sw.cpu_clock.sample(100000) { a++; arr[1] += 2 }\n\
         probe timer.s(1) { exit() }\n\
         probe end { printf(\"%d %d\\n\", a, arr[1]) }\n",
    );
    let out = stapxx().arg(&s).output().unwrap();
    drop(busy);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<i64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(v[0] > 1000, "{text}");
    assert_eq!(v[1], 2 * v[0], "{text}");
}

/// MAXSTRINGLEN is one fact for host and kernel probes: a string is cut at
/// MAXSTRINGLEN - 1 bytes in both (the kernel's slots are a power of two
/// larger), whether built by `.=`, `sprintf` or padding.
#[test]
fn maxstringlen_cuts_strings_alike_in_host_and_kernel_probes() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let busy = support::busy_cpus(1);
    let s = script(
        "maxstr.stp",
        r#"global s, k
probe timer.profile {
  if (k == 0) {
    k = 1; x = ""
    for (i = 0; i < 30; i++) x .= "abcdefg"
    s = x
    printf("kernel %d %d %d\n", strlen(x), strlen(sprintf("%s%s", x, x)), strlen(sprintf("%-150s", "q")))
  }
}
probe timer.ms(300) {
  x = ""
  for (i = 0; i < 30; i++) x .= "abcdefg"
  printf("host %d %d %d stored %d\n", strlen(x), strlen(sprintf("%s%s", x, x)), strlen(sprintf("%-150s", "q")), strlen(s))
  exit()
}
"#,
    );
    let out = stapxx()
        .args(["-D", "MAXSTRINGLEN=100"])
        .arg(&s)
        .output()
        .unwrap();
    drop(busy);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kernel 99 99 99\nhost 99 99 99 stored 99\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
