//! `process("P").syscall` and `.syscall.return` in real runs: `$syscall`,
//! `$arg1`..`$arg6` and `$return` of every call P's tasks make, and only
//! theirs (a copy of P running beside it, the same bytes in another file,
//! is not P). Fixtures: `writes.c` (write(2)s of known counts on fd 9,
//! /dev/null) and `getppid.c` (N calls of getppid).

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// `process(PID).syscall` follows one process through its exec: a shell
/// that, once the probes are in, execs the fixture for 3000 getppid calls;
/// `process(PID).end` ends the session. A copy of the fixture running
/// beside it (another process) does not count.
#[test]
fn one_process_by_its_id() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("getppid.c", "getppid-syscall", &["-O2"]);
    let copy = support::scratch().join("getppid-syscall-copy2");
    std::fs::copy(&bin, &copy).unwrap();
    let mut other = support::Proc::spawn(Command::new(&copy).arg("100000000"));
    let mut sh = Command::new("sh")
        .args(["-c", "read x; exec \"$0\" 3000"])
        .arg(&bin)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = sh.id();
    let script = format!(
        "global calls, returns\n\
         probe begin {{ printf(\"attached\\n\") }}\n\
         probe process({pid}).syscall {{ if ($syscall == 110) calls++ }}\n\
         probe process({pid}).syscall.return {{ if ($syscall == 110) returns++ }}\n\
         probe process({pid}).end {{ exit() }}\n\
         probe end {{ printf(\"%d %d\\n\", calls, returns) }}\n"
    );
    let mut st =
        support::Proc::spawn(Command::new(env!("CARGO_BIN_EXE_stapxx-rs")).args(["-e", &script]));
    st.wait_for_line("attached", Duration::from_secs(20));
    writeln!(sh.stdin.as_mut().unwrap()).unwrap();
    assert!(sh.wait().unwrap().success());
    let out = st.rest();
    assert!(st.child.wait().unwrap().success());
    assert!(other.child.try_wait().unwrap().is_none());
    let _ = other.child.kill();
    assert_eq!(out, "3000 3000\n");
}

/// `.syscall` names no argument.
#[test]
fn malformed_points_are_explained() {
    let (code, _, err) = support::stapxx(&["-p2", "-e", "probe process.syscall.entry { }"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expected process(...).syscall or .syscall.return"),
        "{err}"
    );
    let (code, _, err) = support::stapxx(&["-p2", "-e", "probe process(1).begin { }"]);
    assert_eq!(code, 1);
    assert!(err.contains("process(PID).begin is not supported"), "{err}");
}
