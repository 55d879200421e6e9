//! `-p3` listings (the typed IR, then the BPF of every kernel probe with
//! the script line each instruction came from) as insta snapshots: a
//! change in lowering or instruction selection shows up in review as a
//! diff of these files.

use std::process::Command;

/// `stapxx-rs -p3` of `script` (needs no target and no privileges).
fn listing(name: &str, script: &str) -> String {
    listing_with(name, script, &[])
}

/// As [`listing`], with more command-line options.
fn listing_with(name: &str, script: &str, extra: &[&str]) -> String {
    let dir = std::env::temp_dir().join(format!("stx_listing_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.stp"));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(&dir)
        .args(["-p3", &format!("{name}.stp")])
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn arithmetic_and_globals() {
    insta::assert_snapshot!(listing(
        "arith",
        "global n, t\nprobe timer.profile { n++; t += cpu() * 2 / (n % 7 + 1) }\n"
    ));
}

#[test]
fn strings_and_formats() {
    insta::assert_snapshot!(listing(
        "strings",
        "global s\nprobe timer.profile { x = sprintf(\"%d:%s\", cpu(), execname()); if (x == s) s .= \"!\" else s = x }\n"
    ));
}

#[test]
fn arrays_foreach_and_stats() {
    insta::assert_snapshot!(listing(
        "foreach",
        "global a, st\nprobe timer.profile { a[cpu()]++; foreach (k in a- limit 2) st <<< a[k] }\nprobe end { print(@hist_log(st)) }\n"
    ));
}

/// `--interval`: each statistic has two maps, chosen by the generation
/// word of the globals map at every access.
#[test]
fn statistics_by_interval_generation() {
    insta::assert_snapshot!(listing_with(
        "interval",
        "global st, n\nprobe timer.profile { st[cpu()] <<< 1; n++ }\nprobe end { foreach (k in st) print(@count(st[k])) }\n",
        &["--interval", "10"]
    ));
}

#[test]
fn loops_functions_and_try() {
    insta::assert_snapshot!(listing(
        "control",
        "global r\nfunction f(x) { for (i = 0; i < x; i++) { if (i == 3) return i } return -1 }\n\
         probe timer.profile { try { r = f(cpu() + 5) } catch (m) { r = 0 } }\n"
    ));
}

#[test]
fn regex_match() {
    insta::assert_snapshot!(listing(
        "regex",
        "global r\nprobe timer.profile { r = execname() =~ \"^(sh|bash)$\" }\n"
    ));
}
