//! SystemTap's own syscall tapsets (the installed tree), run as written on
//! a kernel without kprobes: `syscall.NAME` falls through `dw_syscall`
//! (kernel.function) and `nd1/nd2_syscall` (kprobe) to `tp_syscall.NAME`
//! on the `sys_enter`/`sys_exit` tracepoints, whose prologues read the
//! arguments from the saved registers and format `argstr`/`retstr` with
//! the tree's own formatters. The C fixture (`tests/fixtures/syscalls.c`)
//! makes a known sequence of calls; what an strace-like script prints for
//! them must be what stap prints.

mod support;

use std::collections::HashMap;

fn have_tree() -> bool {
    let ok = std::path::Path::new("/usr/share/systemtap/tapset/linux/sysc_openat.stp").exists();
    if !ok {
        support::missing("SystemTap's tapset tree (systemtap-common)");
    }
    ok
}

/// The fixture's report line: (fd, buffer address, bytes read).
fn report(out: &str) -> (i64, String, i64) {
    let l = out
        .lines()
        .find_map(|l| l.strip_prefix("fd "))
        .unwrap_or_else(|| panic!("no report line in:\n{out}"));
    let f: Vec<&str> = l.split(' ').collect();
    (
        f[0].parse().unwrap(),
        f[2].to_string(),
        f[4].parse().unwrap(),
    )
}

const STRACE: &str = r#"
probe syscall.openat, syscall.read, syscall.close {
  if (pid() == target()) printf("%s(%s)\n", name, argstr)
}
probe syscall.openat.return, syscall.read.return, syscall.close.return {
  if (pid() == target()) printf("%s = %s\n", name, retstr)
}
"#;

#[test]
fn an_strace_like_script_prints_what_stap_prints() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_tree() {
        return;
    }
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("syscalls.c", &format!("syscalls{opt}"), &[opt]);
        let (code, out, err) = support::stapxx_c(&format!("{} 3", bin.display()), STRACE);
        assert_eq!(code, 0, "{err}");
        let (fd, buf, got) = report(&out);
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("openat") || l.starts_with("read") || l.starts_with("close"))
            .collect();
        assert!(lines.len() >= 10, "{out}");
        // The dynamic loader's own calls come first; ours are the last ten.
        assert_eq!(
            lines[lines.len() - 10..],
            [
                "openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY|O_CLOEXEC)".to_string(),
                format!("openat = {fd}"),
                format!("read({fd}, {buf}, 256)"),
                format!("read = {got}"),
                format!("close({fd})"),
                "close = 0".to_string(),
                "openat(AT_FDCWD, \"/nonexistent/stapxx-rs\", O_WRONLY|O_CREAT|O_TRUNC, 0640)"
                    .to_string(),
                "openat = -2 (ENOENT)".to_string(),
                "close(-1)".to_string(),
                "close = -9 (EBADF)".to_string(),
            ],
            "{opt}: {out}"
        );
    }
}

#[test]
fn every_syscall_of_a_process_is_counted_exactly() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !have_tree() {
        return;
    }
    let bin = support::c_fixture("syscalls.c", "syscalls-O2", &["-O2"]);
    // The fixture's own calls: the shell that -c starts also calls
    // getppid() before it execs the fixture (same pid, other name).
    let script = r#"global calls
probe syscall.* { if (pid() == target() && execname() == "syscalls-O2") calls[name]++ }
probe end { foreach (n in calls-) printf("%s %d\n", n, calls[n]) }"#;
    let (code, out, err) = support::stapxx_c(&format!("{} 1234", bin.display()), script);
    assert_eq!(code, 0, "{err}");
    let counts: HashMap<&str, i64> = out
        .lines()
        .filter_map(|l| {
            let (n, c) = l.split_once(' ')?;
            Some((n, c.parse().ok()?))
        })
        .collect();
    assert_eq!(counts.get("getppid"), Some(&1234), "{out}");
    // Once each, by the fixture itself (the loader does not make these).
    for once in ["exit_group", "set_tid_address", "set_robust_list"] {
        assert_eq!(counts.get(once), Some(&1), "{once}: {out}");
    }
    // The fixture's two opens, read, close and close(-1), and the loader's
    // opens and closes of the C library (which the loader makes as many
    // of as it maps libraries: one here, the C library).
    assert!(counts.get("openat").copied().unwrap_or(0) >= 2, "{out}");
    assert!(counts.get("close").copied().unwrap_or(0) >= 2, "{out}");
}

/// A `tp_syscall` handler tests the call's number before anything else
/// (codegen/gatecheck.rs): `id` on sys_enter, `regs->orig_ax` on sys_exit.
/// getppid is 110 on x86-64.
#[test]
fn each_alias_handler_leaves_first_thing_on_other_calls() {
    if !have_tree() {
        return;
    }
    let listing = |script: &str| {
        let (code, out, err) = support::stapxx(&["-p3", "-e", script]);
        assert_eq!(code, 0, "{err}");
        let at = out.find("stx_p0:\n").expect("a program");
        out[at..]
            .lines()
            .skip(2)
            .take(7)
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listing("probe syscall.getppid { }"),
        [
            "0: r9 = r1",
            "1: r1 = *(u64 *)(r9 +8)",
            "2: r1 <<= 32",
            "3: r1 s>>= 32",
            "4: r2 = 110",
            "5: if r1 == r2 goto +2",
            "6: r0 = 0",
        ]
    );
    let exit = listing("probe syscall.getppid.return { }");
    assert_eq!(exit[1], "1: r3 = *(u64 *)(r9 +0)", "{exit:?}");
    assert_eq!(exit[6], "6: call bpf_probe_read_kernel#113", "{exit:?}");
}

/// Four or more handlers on `sys_enter`, each for one call, are reached
/// through one dispatcher (codegen/dispatch.rs) that tail-calls the
/// handler of the call's number; the handlers are not attached themselves.
/// The counting test above runs `syscall.*` through it.
#[test]
fn handlers_for_one_call_each_are_dispatched_by_number() {
    if !have_tree() {
        return;
    }
    let (code, out, err) = support::stapxx(&[
        "-p3",
        "-e",
        "probe syscall.getppid, syscall.getpid, syscall.gettid, syscall.getuid { }",
    ]);
    assert_eq!(code, 0, "{err}");
    let at = out
        .find("# program stx_d0 (RawTracepoint { name: \"sys_enter\" }), 9 instructions\n")
        .unwrap_or_else(|| panic!("no dispatcher in:\n{out}"));
    let code: Vec<&str> = out[at..].lines().skip(2).map(str::trim).collect();
    assert_eq!(
        code,
        [
            "0: r6 = r1",
            "1: r3 = *(u64 *)(r6 +8)",
            "2: if r3 >= 0x400 goto +4",
            "3: r1 = r6",
            "4: r2 = map[stx_disp0] ll",
            "6: call bpf_tail_call#12",
            "7: r0 = 0",
            "8: exit",
        ]
    );
    // Fewer handlers stay attached as they are.
    let (_, out, _) = support::stapxx(&["-p3", "-e", "probe syscall.getppid, syscall.getpid { }"]);
    assert!(!out.contains("stx_d0"), "{out}");
}

/// The aliases of system calls x86-64 does not have gate on stap's
/// impossible number (`ir::gate::NO_SUCH_CALL`): with a dispatcher they
/// are attached nowhere, so a system call does not run their number tests
/// (51 programs on every call for `syscall.*` before). What stays attached
/// is what the dispatcher cannot take: two handlers for one number, or a
/// handler whose start names no one number.
#[test]
fn handlers_for_no_call_are_not_attached() {
    if !have_tree() {
        return;
    }
    let opts = stapxx::cli::parse_args(["stapxx-rs", "-p3", "-e", ""]);
    let mut session = stapxx::driver::Session::new(&opts);
    let expand = session.expand_options().expect("expansion options");
    let t = session
        .translate_source(
            "all.stp",
            "global calls probe syscall.* { calls[name]++ }",
            &expand,
        )
        .unwrap_or_else(|d| panic!("{}", d.message));
    let c = t.compiled.expect("kernel probes");
    let gates: Vec<Option<stapxx::ir::gate::Gate>> = c
        .probes
        .iter()
        .filter(|p| !p.dispatched)
        .map(|p| stapxx::ir::gate::syscall_gate(&t.program.probes[p.probe].body))
        .collect();
    assert!(
        !gates.is_empty() && gates.len() < 20,
        "{} attached: {gates:?}",
        gates.len()
    );
    let mut seen = HashMap::new();
    for g in &gates {
        match g {
            Some(stapxx::ir::gate::Gate::Only(k)) => *seen.entry(*k).or_insert(0) += 1,
            Some(stapxx::ir::gate::Gate::Never) => panic!("a handler for no call is attached"),
            // Handlers whose start names no one number (several calls).
            None => {}
        }
    }
    assert!(seen.values().all(|&n| n >= 2), "{seen:?}");
}
