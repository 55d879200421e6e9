//! `system(cmd)`: the host runs the command through `/bin/sh` after what
//! the probe printed before it, without waiting for it; from a host probe
//! and from a kernel (uprobe) handler, whose record carries the command.
//! The command's output shares our stdout and stderr (the test reads both
//! pipes to their end, so a command still running when the session ends
//! is waited for).

mod support;

#[test]
fn a_host_probe_runs_a_command_after_its_earlier_output() {
    let (code, out, err) = support::stapxx(&[
        "-e",
        r#"probe begin { print("first\n"); system("echo second; echo on-stderr >&2") }
           probe timer.ms(300) { print("third\n"); exit() }"#,
    ]);
    assert_eq!(code, 0, "{err}");
    // `third` may come before or after `second` (the command runs on its
    // own); `first` was out before it started.
    let lines: Vec<&str> = out.lines().collect();
    let pos = |l: &str| lines.iter().position(|x| *x == l);
    assert!(
        pos("first") < pos("second") && pos("second").is_some(),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    assert!(err.contains("on-stderr"), "{err}");
}

#[test]
fn a_kernel_handler_sends_its_command_to_the_host() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("sites.c", &format!("sites{opt}"), &[opt]);
        let script = format!(
            r#"probe process("{}").function("walk") {{ system(sprintf("echo walk %d from %d", $count, pid())); printf("pid %d\n", pid()) }}"#,
            bin.display()
        );
        // argc = 2: walk(6), once.
        let (code, out, err) = support::stapxx_c(&format!("{} a", bin.display()), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        let pid = out
            .lines()
            .find_map(|l| l.strip_prefix("pid "))
            .unwrap_or_else(|| panic!("{opt}: no pid line: {out}"));
        let ran: Vec<&str> = out.lines().filter(|l| l.starts_with("walk ")).collect();
        assert_eq!(ran, [format!("walk 6 from {pid}")], "{opt}: {out}");
    }
}

#[test]
fn a_failing_command_does_not_end_the_session() {
    // `system()` with a shell that exists always starts; what fails is the
    // command, whose own shell says so on stderr, and the session goes on.
    let (code, out, err) = support::stapxx(&[
        "-e",
        r#"probe begin { system("exec /nonexistent-stapxx-command"); println("still here") }
           probe timer.ms(300) { exit() }"#,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "still here\n");
    assert!(err.contains("/nonexistent-stapxx-command"), "{err}");
}
