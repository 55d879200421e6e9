//! Functions SystemTap's tapset tree writes in embedded C (or over
//! tokenize(), which keeps state between calls) that our tapsets serve in
//! the script language: string.stp's strpos(), isdigit() and stringat()
//! (a signed char, as C reads it), the same in a host probe (`begin`) and
//! a kernel one (BPF), as C gives them; stack(), ustack(), callers() and
//! caller_addr() from the backtraces they are read from; ktime_get_ns()
//! and cpu_clock_ns() against this test's own monotonic clock; randint();
//! the load averages against /proc/loadavg.

mod support;

const CALLS: &str = r#"printf("%d %d %d %d %d %d %d %d %d %d %d\n", strpos("hello", "ll"), strpos("hello", "x"), strpos("hello", ""), strpos("", "a"), strpos("abab", "bab"), isdigit("7a"), isdigit("a7"), isdigit(""), stringat("aZ\303", 1), stringat("aZ\303", 2), stringat("\001", 0))"#;
const WANT: &str = "2 -1 0 -1 1 1 0 0 90 -61 1\n";

#[test]
fn host_probe() {
    let (code, out, err) = support::stapxx(&["-e", &format!("probe begin {{ {CALLS}; exit() }}")]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, WANT);
}

#[test]
fn kernel_probe() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = support::stapxx(&[
        "-e",
        &format!("global done probe timer.profile {{ if (!done++) {{ {CALLS}; exit() }} }}"),
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    // Both CPUs may take the first tick before exit() is seen: each line
    // is the whole answer.
    assert!(
        !out.is_empty() && out.lines().all(|l| format!("{l}\n") == WANT),
        "{out}"
    );
}

/// stack(n), callers(n), caller_addr() and ustack(n) (our
/// `tapsets/linux/stack.stp`) against the backtraces they are read from,
/// in one kernel probe run: the n-th address of backtrace(), its first
/// n + 1, stap's unwind error past the end; ustack(0) is where the
/// uprobe fired (uaddr()).
#[test]
fn stack_addresses_in_kernel_probes() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    // One getppid() call of the fixture: one handler run (the shell that
    // `-c` starts in the same process may call getppid() too).
    let getppid = support::c_fixture("getppid.c", "getppid-stack", &["-O2"]);
    let script = r#"probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() == "getppid-stack") {
    b = backtrace()
    printf("%s\n%s\n%s\n%x %x\n", b, callers(-1), callers(1), stack(0), stack(1))
    printf("%d\n", caller_addr() == stack(1))
    try { stack(999) } catch (e) { println(e) }
  }
}"#;
    let (code, out, err) = support::stapxx_c(&format!("{} 1", getppid.display()), script);
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    let b: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(b.len() >= 2, "{out}");
    assert_eq!(lines[1], b.join(" "), "{out}");
    assert_eq!(lines[2], b[..2].join(" "), "{out}");
    assert_eq!(lines[3], format!("{} {}", &b[0][2..], &b[1][2..]), "{out}");
    assert_eq!(lines[4], "1");
    assert_eq!(
        lines[5],
        "reached end of stack before unwinding to level 999"
    );
    assert_eq!(lines.len(), 6, "{out}");

    let bin = support::c_fixture("pp_names.c", "pp_names-stack", &["-O2"]);
    let script = format!(
        "probe process(\"{}\").function(\"pp_scaled\") {{ printf(\"%d\\n\", ustack(0) == uaddr()) }}",
        bin.display()
    );
    let (code, out, err) = support::stapxx_c(&bin.display().to_string(), &script);
    assert_eq!((code, err.as_str()), (0, ""));
    // (The fixture prints pp_scaled(1), 6, on its own stdout: either
    // line may come first.)
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["1", "6"], "{out}");
}

/// Kernel addresses symbolized in a kernel probe (`sprint_backtrace()`,
/// `sprint_stack(bt)`, `symdata(addr)`, as profilers such as pf4.stp key
/// their maps by them) read as the host prints the same addresses: the
/// stack kept in hex and symbolized in the `end` probe.
#[test]
fn kernel_symbols_in_kernel_probes() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let getppid = support::c_fixture("getppid.c", "getppid-stack", &["-O2"]);
    let script = r#"global bt, ks, kb, kd, ka
probe kernel.trace("syscalls:sys_enter_getppid") {
  if (pid() == target() && execname() == "getppid-stack" && bt == "") {
    bt = backtrace()
    ks = sprint_stack(bt)
    kb = sprint_backtrace()
    ka = stack(0)
    kd = symdata(ka)
  }
}
probe end {
  printf("%s====\n%s====\n%s====\n%s\n%s\n", ks, sprint_stack(bt), kb, kd, symdata(ka))
}"#;
    let (code, out, err) = support::stapxx_c(&format!("{} 1", getppid.display()), script);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let parts: Vec<&str> = out.split("====\n").collect();
    assert_eq!(parts.len(), 4, "{out}");
    let (kernel, host, simple) = (parts[0], parts[1], parts[2]);
    assert!(kernel.lines().count() >= 2, "{out}");
    assert_eq!(kernel, host, "sprint_stack in the kernel and on the host");
    // ` 0xADDR : name+0xoff/0xsize [kernel]` and `name+0xoff [kernel]`:
    // the same frames.
    let short: Vec<String> = host
        .lines()
        .map(|l| {
            let data = l.split(" : ").nth(1).unwrap_or("");
            let (name_off, rest) = data.split_once('/').unwrap_or((data, ""));
            let module = rest.split_once(' ').map_or("", |(_, m)| m);
            format!("{name_off} {module}")
        })
        .collect();
    assert_eq!(simple.lines().collect::<Vec<_>>(), short, "{out}");
    assert!(
        simple
            .lines()
            .all(|l| l.ends_with(" [kernel]") && l.contains("+0x")),
        "{out}"
    );
    let data: Vec<&str> = parts[3].lines().collect();
    assert_eq!(data.len(), 2, "{out}");
    assert_eq!(data[0], data[1], "symdata in the kernel and on the host");
    assert!(
        data[0].contains('/') && data[0].ends_with(" [kernel]"),
        "{out}"
    );
}

/// ktime_get_ns() and cpu_clock_ns(cpu) (our `tapsets/linux/timestamp.stp`)
/// read the monotonic clock: what they print in a host and in a kernel
/// probe lies between this test's CLOCK_MONOTONIC before and after the run.
#[test]
fn clocks_are_the_monotonic_clock() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let now = || support::clock_ns(libc::CLOCK_MONOTONIC);
    let before = now();
    let (code, out, err) = support::stapxx(&[
        "-e",
        "global d\n\
         probe begin { printf(\"%d %d\\n\", ktime_get_ns(), cpu_clock_ns(0)) }\n\
         probe timer.profile { if (!d++) { printf(\"%d %d\\n\", ktime_get_ns(), cpu_clock_ns(1)); exit() } }",
    ]);
    let after = now();
    assert_eq!((code, err.as_str()), (0, ""));
    let values: Vec<i64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert!(values.len() >= 4, "{out}");
    for v in values {
        assert!(before <= v && v <= after, "{before} <= {v} <= {after}");
    }
}

/// randint(n) (our `tapsets/random.stp`): 2000 draws of randint(4) in a
/// host probe and in kernel probes, each in [0, 4), every value seen (a
/// value missing has odds of 0.75^2000); n above 2^20 is stap's error.
#[test]
fn randint_draws_within_its_range() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = support::stapxx(&[
        "-e",
        "global h, k, d\n\
         probe begin { for (i = 0; i < 2000; i++) h[randint(4)]++ }\n\
         probe timer.profile { if (d++ < 2000) k[randint(4)]++; else exit() }\n\
         probe end { foreach (v+ in h) printf(\"h%d \", v); foreach (v+ in k) printf(\"k%d \", v); println(\"\") }",
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "h0 h1 h2 h3 k0 k1 k2 k3 \n");
    let (code, _, err) =
        support::stapxx(&["-e", "probe begin { println(randint(2000000)); exit() }"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("ERROR: range too wide"), "{err}");
}

/// C's precision of an integer conversion (`%.3d`: at least 3 digits),
/// which the tree's msecs_to_string() uses, in sprintf and printf, in a
/// host and a kernel probe alike.
#[test]
fn integer_precision_host_and_kernel() {
    let calls = r#"s = sprintf("[%.3d][%.3d][%+.3d][%.2x][%.5u][%.3d][% .2d]", 5, -5, 5, 10, 42, 12345, 7); printf("%s %.4d\n", s, -12)"#;
    let want = "[005][-005][+005][0a][00042][12345][ 07] -0012\n";
    support::same_on_host_and_kernel(calls, want);
}

/// dev.stp's device-number macros (embedded C, as kdev_t.h defines them)
/// and modname() (every kernel address is the kernel's: this kernel has
/// no modules; a user address is stap's error), host and kernel alike.
#[test]
fn device_numbers_and_modname_host_and_kernel() {
    let calls = r#"try { m = modname(4096) } catch (e) { m = e } printf("%d %d %d %d %s %s\n", MKDEV(8, 1), MAJOR(MKDEV(259, 3)), MINOR(MKDEV(259, 3)), usrdev2kerndev(0x10302), modname(-4096), m)"#;
    let want = "8388609 259 3 271581186 kernel Cannot determine kernel module name\n";
    support::same_on_host_and_kernel(calls, want);
}

/// The `#` flag writes its prefix for 0 too, as stap's runtime does
/// (unlike C's printf): the same in a host probe and a kernel one.
#[test]
fn alternate_forms_of_zero_host_and_kernel() {
    let calls = r#"printf("[%#x][%#X][%#o][%p][%#x][%#o]\n", 0, 0, 0, 0, 255, 8)"#;
    let want = "[0x0][0X0][00][0x0][0xff][010]\n";
    support::same_on_host_and_kernel(calls, want);
}

/// The installed tree's `kprocess.create` (on `sched_process_fork`)
/// tests the child with `_IS_ERR`, an embedded-C function served as the
/// kernel's `IS_ERR`: the fixture's two threads (its own pid, new tids)
/// and three forked children (their own pids).
#[test]
fn kprocess_create_with_is_err() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("lifecycle.c", "lifecycle-O2", &["-O2", "-pthread"]);
    let script = r#"probe kprocess.create { if (pid() == target()) printf("create %d %d\n", new_pid == target(), new_pid == new_tid) }"#;
    let (code, out, err) = support::stapxx_c(&bin.display().to_string(), script);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let mut created: Vec<&str> = out.lines().filter(|l| l.starts_with("create ")).collect();
    created.sort();
    assert_eq!(
        created,
        [
            "create 0 1",
            "create 0 1",
            "create 0 1",
            "create 1 0",
            "create 1 0"
        ],
        "{out}"
    );
}

/// `sprint_loadavg()` and `get_loadavg_index(i)` in a host probe: what
/// `/proc/loadavg` says (read before and after: it changes every 5 s),
/// stap's "Invalid loadavg index" error outside 0..2; refused in a
/// kernel probe, where the kernel's `avenrun` cannot be read.
#[test]
fn load_averages_as_proc_shows_them() {
    let proc_now = || {
        let text = std::fs::read_to_string("/proc/loadavg").unwrap();
        let f: Vec<String> = text
            .split_whitespace()
            .take(3)
            .map(str::to_string)
            .collect();
        let ints: Vec<&str> = f.iter().map(|x| x.split('.').next().unwrap()).collect();
        format!(
            "{} {} {}\n|{} {} {}\n",
            f[0], f[1], f[2], ints[0], ints[1], ints[2]
        )
    };
    let before = proc_now();
    let (code, out, err) = support::stapxx(&[
        "-e",
        "probe begin { printf(\"%s|%d %d %d\\n\", sprint_loadavg(), get_loadavg_index(0), \
         get_loadavg_index(1), get_loadavg_index(2)); exit() }",
    ]);
    let after = proc_now();
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out == before || out == after,
        "{out:?}, /proc: {before:?} / {after:?}"
    );
    let (code, _, err) =
        support::stapxx(&["-e", "probe begin { print(get_loadavg_index(3)); exit() }"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("ERROR: Invalid loadavg index 3 specified."),
        "{err}"
    );
    let (code, _, err) = support::stapxx(&[
        "-p3",
        "-e",
        "probe kernel.trace(\"sched:sched_switch\") { print(sprint_loadavg()) }",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error: the load averages are the kernel's avenrun, which kernel probes cannot read here"),
        "{err}"
    );
}
