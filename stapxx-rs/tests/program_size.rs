//! A kernel probe whose program the kernel refuses for its size or its
//! complexity: the error names that probe (file:line:col and a caret),
//! says what was too much and what to do, at `-p4` and when running (it
//! used to be "the kernel's BPF verifier rejected the code for this line: "
//! with no line and no reason).

mod support;

use std::process::Command;

/// A script: a small kernel probe, then one whose handler has `n` copies
/// of `stmt` (`{i}` replaced by the copy's number), one per line.
fn script(name: &str, stmt: &str, n: usize) -> std::path::PathBuf {
    let mut text =
        String::from("global n, s\nprobe timer.profile { n++ }\nprobe timer.profile {\n");
    for i in 0..n {
        text.push_str(&format!("  {}\n", stmt.replace("{i}", &i.to_string())));
    }
    text.push_str("}\nprobe timer.s(1) { exit() }\n");
    let p = support::scratch().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ADVICE: &str = "note: make this probe's handler smaller: every script function it calls \
                      is inlined at each call, so split the work over several probes, or move \
                      what need not run in the kernel into `end` or `timer.*` probes (they run \
                      on the host, without this limit)\n";

#[test]
fn a_program_too_long_names_its_probe() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let s = script("too-long.stp", "n = n * 3 + {i}", 100_000);
    let head = format!(
        "{}:3:1: error: the kernel refused the program of this probe as too long: ",
        s.display()
    );
    for pass in [Some("-p4"), None] {
        let mut args = vec![s.as_os_str()];
        if let Some(p) = pass {
            args.insert(0, std::ffi::OsStr::new(p));
        }
        let (code, err) = run(&args);
        assert_eq!(code, Some(1), "{err}");
        let rest = err
            .strip_prefix(&head)
            .unwrap_or_else(|| panic!("{pass:?}: {err}"));
        let (count, rest) = rest.split_once(" BPF instructions").unwrap();
        let count: usize = count.replace(',', "").parse().unwrap();
        assert!(count > 1_000_000, "{err}");
        // No log (the kernel refused it before verifying), so no -v hint.
        assert_eq!(
            rest,
            format!(
                ", more than the 1,000,000 it loads\n    probe timer.profile {{\n    ^\n{ADVICE}"
            ),
            "{pass:?}"
        );
    }
    let left = support::bpf_leftovers();
    assert!(left.is_empty(), "BPF objects left behind: {left:?}");
}

#[test]
fn a_program_too_complex_names_its_probe_and_where_it_stopped() {
    let Some(_serial) = support::need_bpf() else {
        return;
    };
    let s = script("too-complex.stp", "s = s . sprintf(\"%d,\", n + {i})", 3000);
    let (code, err) = run(&[std::ffi::OsStr::new("-p4"), s.as_os_str()]);
    assert_eq!(code, Some(1), "{err}");
    let mut lines = err.lines();
    let first = lines.next().unwrap();
    let head = format!(
        "{}:3:1: error: the kernel's BPF verifier gave up on the program of this probe: ",
        s.display()
    );
    assert!(first.starts_with(&head), "{err}");
    assert_eq!(lines.next(), Some("    probe timer.profile {"), "{err}");
    assert_eq!(lines.next(), Some("    ^"), "{err}");
    // The line the verifier was at: one of the handler's statements.
    let at = lines.next().unwrap();
    let place = at
        .strip_prefix(&format!("note: the verifier stopped at {}:", s.display()))
        .unwrap_or_else(|| panic!("{err}"));
    let line: usize = place.split(':').next().unwrap().parse().unwrap();
    assert!((4..4 + 3000).contains(&line), "{err}");
    assert_eq!(lines.next(), Some(ADVICE.trim_end()), "{err}");
    assert_eq!(
        lines.next(),
        Some("note: run with -p4 -v for the verifier log")
    );
    assert_eq!(lines.next(), None, "{err}");
}
