//! `process("P").syscall` and `.syscall.return` in real runs: `$syscall`,
//! `$arg1`..`$arg6` and `$return` of every call P's tasks make, and only
//! theirs (a copy of P running beside it, the same bytes in another file,
//! is not P). Fixtures: `writes.c` (write(2)s of known counts on fd 9,
//! /dev/null) and `getppid.c` (N calls of getppid).

mod support;

use std::process::Command;

/// Each write(2) of writes.c, entered and returned, in order.
#[test]
fn arguments_and_results_of_each_call() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("writes.c", &format!("writes{opt}"), &[opt]);
        let script = format!(
            "probe process(\"{b}\").syscall {{ if ($syscall == 1) printf(\"write(%d, %d)\\n\", $arg1, $arg3) }}\n\
             probe process(\"{b}\").syscall.return {{ if ($syscall == 1) printf(\"= %d\\n\", $return) }}\n",
            b = bin.display()
        );
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), &script);
        assert_eq!(code, 0, "{err}");
        // (/dev/null takes even the unreadable buffer: it reads none.)
        let want: String = [(8, 8), (5, 5), (60, 60), (52, 52), (0, 0), (5, 5)]
            .iter()
            .map(|(n, r)| format!("write(9, {n})\n= {r}\n"))
            .collect();
        assert_eq!(out, want, "{opt}");
    }
}

/// 5000 getppid calls of P, each returning P's parent (stapxx-rs, which
/// started it), while a copy of P makes many more: only P's count.
#[test]
fn only_the_named_executable_counts() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("getppid.c", "getppid-syscall", &["-O2"]);
    let copy = support::scratch().join("getppid-syscall-copy");
    std::fs::copy(&bin, &copy).unwrap();
    let mut other = support::Proc::spawn(Command::new(&copy).arg("100000000"));
    let script = format!(
        "global calls, returns, wrong\n\
         probe process(\"{b}\").syscall {{ if ($syscall == 110) calls++ }}\n\
         probe process(\"{b}\").syscall.return {{ if ($syscall == 110) {{ returns++; if ($return != ppid()) wrong++ }} }}\n\
         probe end {{ printf(\"%d %d %d\\n\", calls, returns, wrong) }}\n",
        b = bin.display()
    );
    let (code, out, err) = support::stapxx_c(&format!("{} 5000", bin.display()), &script);
    // The copy was running all along (it makes 10^8 calls).
    assert!(other.child.try_wait().unwrap().is_none());
    let _ = other.child.kill();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "5000 5000 0\n");
}

/// `.syscall` names no argument; `process(PID).syscall` says what to do.
#[test]
fn malformed_points_are_explained() {
    let (code, _, err) = support::stapxx(&["-p2", "-e", "probe process(1).syscall { }"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("process(PID).syscall is not supported: name the executable"),
        "{err}"
    );
    let (code, _, err) = support::stapxx(&["-p2", "-e", "probe process.syscall.entry { }"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expected process(...).syscall or .syscall.return"),
        "{err}"
    );
}
