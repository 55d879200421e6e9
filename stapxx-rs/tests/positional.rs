//! Script arguments (`stapxx-rs FILE ARGS...`, `-e SRC ARGS...`) as stap
//! substitutes them: `$N` unquoted, `@N` as a string, `$#`/`@#` their
//! count, in expressions, probe points and `%( %)` conditions; and brace
//! expansion in probe points. `-p1`/`-p2` and the `begin` run are
//! host-only and need no root.

mod support;

use std::process::Command;

/// Runs stapxx-rs in the scratch directory (so script names in messages
/// are short and fixed): exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .current_dir(support::scratch())
        .args(args)
        .output()
        .expect("run stapxx-rs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `name` in the scratch directory.
fn script(name: &str, text: &str) -> String {
    std::fs::write(support::scratch().join(name), text).unwrap();
    name.to_string()
}

/// A run that must succeed with nothing on stderr; its stdout.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!((code, err.as_str()), (0, ""), "stdout: {out}");
    out
}

/// A run that must fail with status 1 and nothing on stdout; its stderr.
fn fails(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!((code, out.as_str()), (1, ""), "stderr: {err}");
    err
}

#[test]
fn arguments_in_expressions() {
    let f = script(
        "expr.stp",
        "probe begin {\n  println($1 + $2, @1 . \"x\", $#, @#)\n}\n",
    );
    assert_eq!(
        ok(&["-p1", &f, "3", "0x10"]),
        "probe begin {\n  println((3 + 16), (\"3\" . \"x\"), 2, \"2\")\n}\n"
    );
    // Unquoted: an argument may be any tokens, a negative number too.
    assert_eq!(
        ok(&["-p1", &f, "-4", "2*5"]),
        "probe begin {\n  println((-(4) + (2 * 5)), (\"-4\" . \"x\"), 2, \"2\")\n}\n"
    );
}

#[test]
fn arguments_in_probe_points() {
    let f = script(
        "points.stp",
        "probe timer.ms($1), process(@2).function(@3) { }\n",
    );
    assert_eq!(
        ok(&["-p1", &f, "250", "/bin/true", "main"]),
        "probe timer.ms(250), process(\"/bin/true\").function(\"main\") {\n}\n"
    );
    let f = script("timer.stp", "probe timer.ms($1) { }\n");
    assert_eq!(
        ok(&["-p2", &f, "250"]),
        "# sites:\n#   host timer every 250000000 ns <- timer.ms(250)\nprobe timer.ms(250) {\n}\n"
    );
}

#[test]
fn arguments_in_conditions() {
    let f = script(
        "cond.stp",
        "probe begin {\n  print(%( $# > 1 %? \"many\" %: \"few\" %))\n}\n",
    );
    assert_eq!(
        ok(&["-p1", &f, "a", "b"]),
        "probe begin {\n  print(\"many\")\n}\n"
    );
    assert_eq!(
        ok(&["-p1", &f, "a"]),
        "probe begin {\n  print(\"few\")\n}\n"
    );
    assert_eq!(ok(&["-p1", &f]), "probe begin {\n  print(\"few\")\n}\n");
}

#[test]
fn index_out_of_range() {
    let f = script("range.stp", "probe begin {\n  x = $1 + $3\n}\n");
    assert_eq!(
        fails(&["-p1", &f, "1", "2"]),
        "range.stp:2:12: error: command line argument index 3 out of range [1-2]\n\
         \x20     x = $1 + $3\n\
         \x20              ^\n"
    );
    assert_eq!(
        fails(&["-p1", &f]),
        "range.stp:2:7: error: command line argument index 1 out of range [1-0]\n\
         \x20     x = $1 + $3\n\
         \x20         ^\n"
    );
}

/// stap inserts `$1` unquoted, so a word where a number must stand is a
/// parse error at the `$1`, with a note saying what `$1` was.
#[test]
fn not_a_number() {
    let f = script("nan.stp", "probe timer.ms($1) { }\n");
    assert_eq!(
        fails(&["-p1", &f, "abc"]),
        "nan.stp:1:16: error: parse error: expected a literal, found 'abc'\n\
         \x20   probe timer.ms($1) { }\n\
         \x20                  ^\n\
         note: $1 is command-line argument 1, \"abc\"\n"
    );
}

#[test]
fn inline_script_with_arguments() {
    assert_eq!(
        ok(&["-p1", "-e", "probe begin { print(@1, $2) }", "hi", "7"]),
        "probe begin {\n  print(\"hi\", 7)\n}\n"
    );
    // Every word is an argument once -e gives the script, and `--` lets an
    // argument start with `-`.
    assert_eq!(
        ok(&[
            "-p1",
            "first",
            "-e",
            "probe begin { print(@1, @2) }",
            "--",
            "-x"
        ]),
        "probe begin {\n  print(\"first\", \"-x\")\n}\n"
    );
}

#[test]
fn brace_expansion() {
    assert_eq!(
        ok(&["-p2", "-e", "probe timer.{s(1),ms(1)} { }"]),
        "# sites:\n\
         #   host timer every 1000000000 ns <- timer.s(1)\n\
         #   host timer every 1000000 ns <- timer.ms(1)\n\
         probe timer.s(1), timer.ms(1) {\n}\n"
    );
    assert_eq!(
        ok(&["-p2", "-e", "probe {begin,end} { }"]),
        "# sites:\n#   begin(0) <- begin\n#   end(0) <- end\nprobe begin, end {\n}\n"
    );
    // As in stap, a group is whole components: `{s,ms}(1)` is refused.
    let err = fails(&["-p1", "-e", "probe timer.{s,ms}(1) { }"]);
    assert!(err.starts_with("-e:1:19: error: parse error"), "{err}");
}

/// A real run: the host runs `begin` probes, no root or BPF needed.
#[test]
fn run_with_arguments() {
    assert_eq!(
        ok(&[
            "-e",
            "probe begin { printf(\"%d %s %d\\n\", $1 * 2, @2, $#); exit() }",
            "21",
            "two words",
        ]),
        "42 two words 2\n"
    );
}
