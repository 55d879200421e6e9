//! What keeps a run bounded and its output honest: MAXACTION is one budget
//! per handler run (all loops and calls together, the same count in the
//! kernel and on the host), and output records that a full buffer refused
//! are counted and reported, never dropped silently.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::stapxx;

/// Two nested loops of a million iterations; `probe error` shows how far
/// the runs got. With MAXACTION=1000 a run is charged 3 for the outer
/// `for` (block, init, loop), 1 for `exit()` when present, 4 for the outer
/// iteration (1, and the inner `for`'s 3), then 2 per inner iteration (1,
/// and `n++`): 496 increments fit, with `exit()` or without (the host,
/// counting one statement at a time, stops at the same one).
const NESTED: &str = "for (i = 0; i < 1000; i++)\n    for (j = 0; j < 1000; j++)\n      n++";

fn errors_of(err: &str) -> u64 {
    err.lines()
        .find_map(|l| l.strip_prefix("WARNING: Number of errors: "))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no error count in: {err}"))
}

fn n_of(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("n="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no n= line in: {out}"))
}

#[test]
fn maxaction_bounds_a_timer_profile_run_across_nested_loops() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let script = format!(
        "global n\nprobe timer.profile {{\n  {NESTED}\n  exit()\n}}\nprobe error {{ printf(\"n=%d\\n\", n) }}\n"
    );
    let (code, out, err) = stapxx(&["-D", "MAXACTION=1000", "-e", &script]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("ERROR: MAXACTION exceeded near identifier 'n' at <input>:5:7\n"),
        "{err}"
    );
    let runs = errors_of(&err);
    assert!(
        err.contains(&format!(
            "WARNING: {runs} probe error(s): MAXACTION exceeded\n"
        )),
        "{err}"
    );
    // Every run that started ended at the same statement.
    assert_eq!(n_of(&out), 496 * runs, "{out}{err}");
}

#[test]
fn maxaction_is_the_total_of_three_nested_loops_not_each_loop_s() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // 90 x 90 x 90 iterations; each loop alone is under MAXACTION=100.
    let script = "global n\nprobe timer.profile {\n  for (a = 0; a < 90; a++)\n    for (b = 0; b < 90; b++)\n      for (c = 0; c < 90; c++)\n        n++\n}\nprobe timer.ms(300) { exit() }\nprobe error { printf(\"n=%d\\n\", n) }\n";
    let (code, out, err) = stapxx(&["-D", "MAXACTION=100", "-e", script]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("ERROR: MAXACTION exceeded near identifier 'n' at <input>:6:9\n"),
        "{err}"
    );
    // 3 + (1+3) + (1+3) before the innermost loop, then 2 per increment:
    // (100 - 11) / 2 = 44 increments per run.
    assert_eq!(n_of(&out), 44 * errors_of(&err), "{out}{err}");
}

#[test]
fn maxaction_bounds_a_uprobe_run_and_counts_the_same_on_the_host() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = support::c_fixture("uprobes.c", "uprobes-O2", &["-O2"]);
    let script = format!(
        "global n\nprobe process(\"{}\").function(\"work\") {{\n  {NESTED}\n}}\nprobe error {{ printf(\"n=%d\\n\", n) }}\n",
        bin.display()
    );
    let (code, out, err) = stapxx(&[
        "-D",
        "MAXACTION=1000",
        "-c",
        &format!("{} 1", bin.display()),
        "-e",
        &script,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("ERROR: MAXACTION exceeded near identifier 'n' at <input>:5:7\n"),
        "{err}"
    );
    // No exit() in this handler: 7 before the inner loop, still 496.
    assert_eq!(n_of(&out), 496 * errors_of(&err), "{out}{err}");

    // The host interpreter (a begin probe) stops at the same increment.
    let script = format!(
        "global n\nprobe begin {{\n  {NESTED}\n}}\nprobe error {{ printf(\"n=%d\\n\", n) }}\n"
    );
    let (code, out, err) = stapxx(&["-D", "MAXACTION=1000", "-e", &script]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(n_of(&out), 496, "{out}{err}");
}

#[test]
fn a_run_within_maxaction_is_not_cut() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // 3 + 1 + 300 x 2 = 604 <= 1000.
    let script = "global n\nprobe timer.profile {\n  for (i = 0; i < 300; i++)\n    n++\n  exit()\n}\nprobe end { printf(\"n=%d\\n\", n % 300) }\n";
    let (code, out, err) = stapxx(&["-D", "MAXACTION=1000", "-e", script]);
    assert_eq!((code, out.as_str()), (0, "n=0\n"), "{err}");
    assert_eq!(err, "");
}

#[test]
fn output_records_a_full_buffer_refused_are_counted_and_reported() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // A 1 MB buffer, a reader that does not read for three seconds, and a
    // probe printing ~200-byte lines as fast as the timer ticks.
    let script = r#"global attempted
probe timer.profile {
  for (i = 0; i < 50; i++) {
    printf("%d %d %s\n", cpu(), i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    attempted++
  }
  if (attempted > 150000) exit()
}
probe end { printf("attempted %d\n", attempted) }
"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-s", "1", "-e", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stapxx-rs");
    std::thread::sleep(Duration::from_secs(3));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let attempted: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("attempted "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {err}"));
    let printed = out.lines().filter(|l| l.ends_with("xxxx")).count() as u64;
    let lost: u64 = err
        .strip_prefix("WARNING: ")
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no loss reported: {err}"));
    assert!(lost > 0 && printed > 0, "{lost} {printed}");
    // Every record is either printed or counted as lost.
    assert_eq!(printed + lost, attempted, "{err}");
    assert_eq!(
        err,
        format!(
            "WARNING: {lost} output records lost: the output fell behind the probes \
             (a slow or stopped reader); `-s MB` sets the buffer, now 1 MB\n"
        )
    );
}
