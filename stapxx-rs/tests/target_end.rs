//! How a session ends when its target does: the `-x` process exiting
//! (even left a zombie by its parent) or replacing its program by exec()
//! ends the session cleanly: one `WARNING:` line says why, the `end`
//! probes run and print what was collected, the status is 0. Faults of
//! probes caught on the vanished program (an exec used to end the run with
//! "user memory read fault" and no `end` output) are not the script's
//! errors. The `-c` command's exit, the usual end of such a run, is said
//! only with `-v`.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn stapxx(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stapxx-rs")
}

/// Reads `child`'s stdout up to the line `want` (which must come first,
/// within a minute).
fn wait_for(child: &mut Child, want: &str) -> BufReader<std::process::ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let _ = tx.send(line);
        out
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            "(nothing within a minute)".to_string()
        });
    if line.trim_end() != want {
        let _ = child.kill();
        let mut err = String::new();
        let _ = child.stderr.as_mut().unwrap().read_to_string(&mut err);
        panic!("expected {want:?}, got {line:?}; stderr: {err}");
    }
    reader.join().unwrap()
}

/// The rest of stdout, stderr and the status, once `child` ends by itself
/// (killed after a minute: a session that never ends fails the test).
fn finish(
    mut child: Child,
    mut out: BufReader<std::process::ChildStdout>,
) -> (String, String, Option<i32>) {
    let pid = child.id();
    let mut err_pipe = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = err_pipe.read_to_string(&mut err);
        err
    });
    let ok = support::wait_until(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ok {
        let _ = child.kill();
    }
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let status = child.wait().unwrap();
    let err = errs.join().unwrap();
    assert!(ok, "the session did not end with its target; stderr: {err}");
    support::assert_no_bpf_leftovers(pid);
    (rest, err, status.code())
}

/// exec() in the traced process: the run ends at once, cleanly, with
/// what it sampled before.
#[test]
fn an_exec_of_the_target_ends_the_session_cleanly() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("execs.c", "execs", &[]);
    let mut target = support::Proc::spawn(&mut Command::new(&bin));
    target.wait_for_line("ready", Duration::from_secs(20));
    let pid = target.pid();
    // The host timer says when samples came in (its output is flushed at
    // once, the kernel probes' is not).
    let script = format!(
        "global n, last, said\n\
         probe timer.profile {{ if (pid() == target()) {{ n++; last = @var(\"ticks\", \"{}\") }} }}\n\
         probe timer.ms(50) {{ if (n > 0 && !said) {{ said = 1; printf(\"sampling\\n\") }} }}\n\
         probe end {{ printf(\"%d %d\\n\", n > 0, last > 0) }}\n",
        bin.display()
    );
    let mut run = stapxx(&["-x", &pid.to_string(), "-e", &script]);
    let out = wait_for(&mut run, "sampling");
    support::must(Command::new("kill").args(["-USR1", &pid.to_string()]));
    let (rest, err, code) = finish(run, out);
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(
        err,
        format!(
            "WARNING: target process {pid} (execs) ran exec() and now runs {}: what was \
             resolved against its old program no longer holds, ending the session\n",
            sh.display()
        )
    );
    assert_eq!(rest, "1 1\n");
    assert_eq!(code, Some(0));
}

/// The target's exit ends the session, kernel probes or not, with a line
/// that says so; a target its parent has not reaped (a zombie) has exited
/// too.
#[test]
fn the_target_exit_ends_the_session_and_says_so() {
    for (script, needs_bpf) in [
        (
            "probe begin { printf(\"started\\n\") } probe timer.s(1000) { exit() } probe end { printf(\"end\\n\") }",
            false,
        ),
        (
            "global n probe begin { printf(\"started\\n\") } probe timer.profile { n++ } probe end { printf(\"end %d\\n\", n >= 0) }",
            true,
        ),
    ] {
        let _serial = if needs_bpf {
            match support::need_bpf() {
                Some(s) => Some(s),
                None => return,
            }
        } else {
            None
        };
        let mut sleeper = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = sleeper.id();
        let mut run = stapxx(&["-x", &pid.to_string(), "-e", script]);
        let out = wait_for(&mut run, "started");
        // Killed and not reaped: a zombie until the end of this test.
        sleeper.kill().unwrap();
        let (rest, err, code) = finish(run, out);
        assert_eq!(
            err,
            format!("WARNING: target process {pid} (sleep) exited: ending the session\n"),
            "{script}"
        );
        assert_eq!(rest, if needs_bpf { "end 1\n" } else { "end\n" });
        assert_eq!(code, Some(0));
        sleeper.wait().unwrap();
    }
}

/// `-c`: the command's end is the run's usual end; `-v` says how it ended.
#[test]
fn the_command_exit_is_said_with_v() {
    let script = "probe end { printf(\"end\\n\") }";
    for verbose in [false, true] {
        let mut args = vec!["-c", "sh -c 'exit 3'", "-e", script];
        if verbose {
            args.insert(0, "-v");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "end\n", "{err}");
        assert_eq!(out.status.code(), Some(0), "{err}");
        let said: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("WARNING: the -c command"))
            .collect();
        if verbose {
            assert_eq!(said.len(), 1, "{err}");
            assert!(
                said[0].starts_with("WARNING: the -c command (pid ")
                    && said[0].ends_with(") exited with status 3: ending the session"),
                "{err}"
            );
        } else {
            assert!(err.is_empty(), "{err}");
        }
    }
}
