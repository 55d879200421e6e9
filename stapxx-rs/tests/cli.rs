//! The `stapxx-rs` binary's front end, driven as a user drives it:
//! golden `--args` / `--dump-src` output on our examples, and exact errors
//! (`file:line:col`, the line, a caret, exit 1) for bad input.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run stapxx-rs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/golden").join(name)).expect("golden file")
}

/// Write `text` to a temp script and return its path.
fn script(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stapxx-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `-p1` on `text` and returns stderr, asserting exit code 1.
fn parse_error(name: &str, text: &str) -> String {
    let p = script(name, text);
    let o = run(&["-p1", p.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn args_of_lj_lua_stacks() {
    let o = run(&["--args", "examples/lj-lua-stacks.sxx"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), golden("lj-lua-stacks.args"));
}

#[test]
fn args_of_lj_vm_states() {
    let o = run(&["--args", "examples/lj-vm-states.sxx"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), golden("lj-vm-states.args"));
}

#[test]
fn args_refuses_arg() {
    let o = run(&["--args", "examples/lj-lua-stacks.sxx", "--arg", "time=1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no --arg is allowed when --args is specified"));
}

#[test]
fn dump_src_of_lj_lua_stacks() {
    let o = run(&[
        "--dump-src",
        "examples/lj-lua-stacks.sxx",
        "--exec",
        "/bin/sh",
        "--arg",
        "time=5",
        "--arg",
        "depth=40",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), golden("lj-lua-stacks.dump-src"));
    // Line-preserving: the expansion has the file's line count.
    let src = std::fs::read_to_string(root().join("examples/lj-lua-stacks.sxx")).unwrap();
    assert_eq!(stdout(&o).lines().count(), src.lines().count());
}

#[test]
fn dump_src_with_use_and_bindings() {
    let o = run(&[
        "--dump-src",
        "-I",
        "tests/scripts",
        "tests/scripts/uses.sxx",
        "--exec",
        "/bin/sh",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "\n\n\n\nprobe begin\n{\n    p = 0\n    printf(\"%d %d\\n\", twice(21), @cast(p, \"struct point\", \"/bin/sh\")->x)\n}\n"
    );
}

#[test]
fn p1_prints_the_listing_of_script_and_modules() {
    let o = run(&[
        "-p1",
        "-I",
        "tests/scripts",
        "tests/scripts/uses.sxx",
        "--exec",
        "/bin/sh",
        "--arg",
        "x=4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "probe begin {\n  p = 0\n  printf(\"%d %d\\n\", twice(4), @cast(p, \"struct point\", \"/bin/sh\")->x)\n}\n\
         # @use tests/scripts/lib/util.sxx\nfunction twice (x) {\n  return (2 * x)\n}\n"
    );
}

#[test]
fn args_fill_strings_and_defaults() {
    let o = run(&["-p1", "tests/scripts/hello.stp", "--arg", "who=you"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "probe begin {\n  printf(\"hello %s, %d\\n\", \"you\", 3)\n  exit()\n}\n"
    );
}

#[test]
fn unused_arg_warns_like_stapxx() {
    let o = run(&["-p1", "tests/scripts/hello.stp", "--arg", "bogus=1"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("$^arg_bogus is defined by \"--arg bogus=1\", but never used."),
        "{}",
        stderr(&o)
    );
}

#[test]
fn all_our_examples_and_tapsets_parse() {
    for ex in ["examples/lj-lua-stacks.sxx", "examples/lj-vm-states.sxx"] {
        let o = run(&["-p1", ex, "--exec", "/bin/sh"]);
        assert_eq!(o.status.code(), Some(0), "{ex}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("# @use "),
            "{ex} should list its modules"
        );
    }
}

#[test]
fn p4_on_a_host_only_script_loads_nothing() {
    let o = run(&["-p4", "tests/scripts/hello.stp"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn bad_flags_are_one_line_exit_1() {
    for args in [
        &["--bogus", "x.stp"][..],
        &["-x", "1", "--master", "2", "x.stp"],
        &["-p", "9", "x.stp"],
        &["--arg", "novalue", "x.stp"],
        &[],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("stapxx-rs: "), "{err}");
    }
}

#[test]
fn missing_process_says_what_was_looked_for() {
    let o = run(&["-p1", "-x", "999999999", "tests/scripts/hello.stp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/proc/999999999"), "{}", stderr(&o));
}

#[test]
fn unreadable_file() {
    let o = run(&["-p1", "no/such/script.stp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read script no/such/script.stp"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unterminated_string() {
    let err = parse_error("s.stp", "probe begin {\n  x = \"abc\n}\n");
    assert!(err.contains("s.stp:2:7: error:"), "{err}");
    assert!(err.contains("unterminated string"), "{err}");
    assert!(err.contains("      x = \"abc\n          ^"), "{err}");
}

#[test]
fn unterminated_comment() {
    let err = parse_error("c.stp", "probe begin {\n  /* open\n}\n");
    assert!(err.contains("c.stp:2:3: error:"), "{err}");
    assert!(err.contains("comment"), "{err}");
}

#[test]
fn unterminated_conditional() {
    let err = parse_error(
        "p.stp",
        "probe begin {\n%( arch == \"x86_64\" %? x = 1\n}\n",
    );
    assert!(err.contains("p.stp:2:1: error:"), "{err}");
}

#[test]
fn stray_closing_brace() {
    let err = parse_error("b.stp", "probe begin { }\n}\n");
    assert!(err.contains("b.stp:2:1: error:"), "{err}");
    assert!(err.contains("'}'"), "{err}");
}

#[test]
fn bad_probe_point() {
    let err = parse_error("pp.stp", "probe process(\"x\")..function(\"f\") { }\n");
    assert!(
        err.contains("pp.stp:1:20: error: parse error: expected a probe point"),
        "{err}"
    );
}

#[test]
fn unknown_builtin_variable() {
    let err = parse_error("u.sxx", "probe begin {\n  println(\"$^nosuch\")\n}\n");
    assert!(err.contains("u.sxx:2:12: error:"), "{err}");
    assert!(err.contains("$^nosuch"), "{err}");
}

#[test]
fn arg_without_value_names_the_flag() {
    let err = parse_error("a.sxx", "\n\nprobe timer.s($^arg_time) { exit() }\n");
    assert!(err.contains("a.sxx:3:15: error:"), "{err}");
    assert!(err.contains("--arg time=VAL"), "{err}");
}

#[test]
fn missing_use_module() {
    let err = parse_error("m.sxx", "# x\n@use no.such.module\n");
    assert!(err.contains("m.sxx:2:"), "{err}");
    assert!(err.contains("no/such/module.sxx"), "{err}");
}

#[test]
fn error_in_a_module_points_into_the_module() {
    let dir = std::env::temp_dir().join(format!("stapxx-cli-mod-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("broken.sxx"), "function f() {\n  return 1 +\n}\n").unwrap();
    let main = dir.join("main.sxx");
    std::fs::write(&main, "@use broken\nprobe begin { f() }\n").unwrap();
    let o = run(&["-p1", "-I", dir.to_str().unwrap(), main.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("broken.sxx:3:1: error:"),
        "{}",
        stderr(&o)
    );
}

/// A reader that goes away (`stapxx-rs -p2 ... | head`) ends the run
/// quietly, as command-line tools do; a full disk behind stdout or stderr
/// is an error status, never a panic.
#[test]
fn closed_or_full_output_never_panics() {
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_stapxx-rs");
    for pass in ["-p1", "-p2", "-p3"] {
        // A pipe whose read end is closed before the child starts, so the
        // listing can only meet a closed pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(bin)
            .args([pass, "-e", "global n probe timer.profile { n++ }"])
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{pass}: {err}");
        assert!(err.is_empty(), "{pass}: {err}");
    }
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(bin)
        .args(["-p2", "-e", "probe begin { }"])
        .stdout(full.try_clone().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write to standard output"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin)
        .args(["-p2", "-e", "probe nosuch.point { }"])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// `break`/`continue` outside a loop is refused at translation, in host
/// probes as in kernel ones and in functions (a `break` in a `begin` probe
/// used to skip the rest of it, `exit()` included, and run forever).
#[test]
fn break_and_continue_need_a_loop() {
    let bin = env!("CARGO_BIN_EXE_stapxx-rs");
    for (script, want) in [
        (
            "probe begin { break; exit() }",
            "-e:1:15: error: 'break' outside a loop\n    probe begin { break; exit() }\n                  ^\n",
        ),
        (
            "function f() { continue } probe begin { f(); exit() }",
            "-e:1:16: error: 'continue' outside a loop\n    function f() { continue } probe begin { f(); exit() }\n                   ^\n",
        ),
    ] {
        let out = std::process::Command::new(bin)
            .args(["-e", script])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{script}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want);
    }
    let out = std::process::Command::new(bin)
        .args([
            "-e",
            "global a probe begin { a[1] = 1; a[2] = 2; for (i = 0; i < 3; i++) { if (i == 1) continue; foreach (k in a) break; while (1) break; printf(\"%d\\n\", i) } exit() }",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n2\n");
    assert_eq!(out.status.code(), Some(0));
}

/// A `-c` command whose program cannot be run is an error before anything
/// runs (it used to print the begin probe's output and exit 0).
#[test]
fn a_command_that_cannot_run_is_an_error() {
    let bin = env!("CARGO_BIN_EXE_stapxx-rs");
    for (cmd, want) in [
        (
            "/nonexistent/prog arg",
            "error: cannot run the -c command: /nonexistent/prog: No such file or directory (os error 2)\n",
        ),
        (
            "/etc/passwd",
            "error: cannot run the -c command: /etc/passwd is not an executable file\n",
        ),
        // The program as the shell reads it: quotes removed.
        (
            "'/nonexistent/q prog' 1",
            "error: cannot run the -c command: /nonexistent/q prog: No such file or directory (os error 2)\n",
        ),
    ] {
        let out = std::process::Command::new(bin)
            .args(["-c", cmd, "-e", "probe begin { println(\"hi\") }"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(out.stdout.is_empty(), "{cmd}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want);
    }
}

/// Statements nested without brackets get the same clean depth error as
/// nested brackets (100,000 nested `if`s used to overflow the stack and
/// abort); a hundred are fine.
#[test]
fn deep_statement_nesting_is_an_error_not_an_abort() {
    let bin = env!("CARGO_BIN_EXE_stapxx-rs");
    let deep = script(
        "deep.stp",
        &format!("probe begin {{ {}exit() }}", "if (1) ".repeat(100_000)),
    );
    let out = std::process::Command::new(bin)
        .arg("-p1")
        .arg(&deep)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The 101st `if`: after "probe begin { " and a hundred "if (1) ".
    let want = format!(
        "{}:1:715: error: statements nested more than 100 deep",
        deep.display()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(&want),
        "{}",
        String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(300)
            .collect::<String>()
    );
    let fine = format!("probe begin {{ {}exit() }}", "if (1) ".repeat(100));
    let out = std::process::Command::new(bin)
        .args(["-e", &fine])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pass 5: a reader that goes away ends the run quietly with status 141
/// (the `end` probes run, as after a signal); a full disk behind stdout
/// is one error and status 1. Host probes here; kernel probes in
/// `kernel_output_to_a_closed_pipe_ends_quietly`.
#[test]
fn run_output_to_a_closed_pipe_or_a_full_disk() {
    use std::process::Command;
    let bin = env!("CARGO_BIN_EXE_stapxx-rs");
    closed_after_first_line(
        r#"probe timer.ms(1) { println("tick") } probe end { println("end") }"#,
        "tick\n",
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(bin)
        .args(["-e", r#"probe begin { println("hello") exit() }"#])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "ERROR: cannot write to standard output: No space left on device (os error 28)\n"
    );
    // Warnings into a full disk are dropped; the run goes on.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(bin)
        .args([
            "-e",
            r#"probe begin { warn("w"); println("hello") exit() }"#,
        ])
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "hello\n"));
}

#[test]
fn kernel_output_to_a_closed_pipe_ends_quietly() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    closed_after_first_line(
        r#"probe timer.profile { printf("sample\n") } probe end { println("end") }"#,
        "sample\n",
    );
}

/// Run `script`, read its first line (`first`), close the pipe: the run
/// must end quietly with status 141.
fn closed_after_first_line(script: &str, first: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-e", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, first);
    drop(out);
    let done = wait_with_limit(child);
    assert_eq!(done.status.code(), Some(141), "{}", stderr(&done));
    assert_eq!(stderr(&done), "");
}

/// `--help` into a full disk: an error, not a panic.
#[test]
fn help_to_a_full_disk_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg("--help")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "stapxx-rs: cannot write to standard output: No space left on device (os error 28)\n"
    );
}

/// Wait for a run that should end by itself; one that does not within a
/// minute is killed (the test then fails on its status, not by hanging).
fn wait_with_limit(mut child: std::process::Child) -> Output {
    let start = std::time::Instant::now();
    while child.try_wait().ok().flatten().is_none()
        && start.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// stap's `-T`, `-o`, `-w`, `-G`, and the options accepted for
/// compatibility (`--ldd`, `--all-modules`), on host probes (no BPF).
#[test]
fn stap_s_run_options() {
    // -T ends the run as exit() would: the end probe reports.
    let o = run(&[
        "-T",
        "1",
        "-e",
        "global n probe timer.ms(200) { n++ } probe end { printf(\"ticks %d\\n\", n >= 3 && n <= 5) }",
    ]);
    assert_eq!(
        (o.status.code(), stdout(&o), stderr(&o)),
        (Some(0), "ticks 1\n".into(), String::new())
    );
    // -o: the script's output in the file, nothing on stdout.
    let file = std::env::temp_dir().join(format!("stx_cli_o_{}", std::process::id()));
    let o = run(&[
        "-o",
        &file.display().to_string(),
        "-e",
        "probe begin { println(\"to the file\"); exit() }",
    ]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), String::new()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "to the file\n");
    let _ = std::fs::remove_file(&file);
    // -G sets scalar globals (numbers as C writes them, else strings).
    let o = run(&[
        "-G",
        "x=0x10",
        "-G",
        "s=hello",
        "--ldd",
        "--all-modules",
        "-e",
        "global x = 1, s = \"a\" probe begin { printf(\"%d %s\\n\", x, s); exit() }",
    ]);
    assert_eq!(
        (o.status.code(), stdout(&o), stderr(&o)),
        (Some(0), "16 hello\n".into(), String::new())
    );
    let o = run(&["-G", "nope=1", "-e", "global x probe begin { exit() }"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: -G nope=1: the script has no scalar global 'nope'\n"
    );
    // -w: a pass-2 warning (an -D name stap would hand to its compiler)
    // is not printed.
    let script = "probe begin { exit() }";
    let warned = run(&["-D", "FOO=1", "-e", script]);
    assert!(stderr(&warned).contains("FOO"), "{}", stderr(&warned));
    let quiet = run(&["-w", "-D", "FOO=1", "-e", script]);
    assert_eq!(stderr(&quiet), "", "-w");
}

/// A tapset function that prints through the runtime's STAP_PRINTF
/// (`logging.stp`'s `log`) prints as printf does.
#[test]
fn log_prints_a_line() {
    let o = run(&[
        "-e",
        "probe begin { log(\"one\"); log(sprintf(\"%d\", 2)); exit() }",
    ]);
    assert_eq!(
        (o.status.code(), stdout(&o), stderr(&o)),
        (Some(0), "one\n2\n".into(), String::new())
    );
}

/// `@const` of a constant the script's own embedded C defines (as the
/// tapset tree's `aux_syscalls.stp` defines `SA_PRETTY` in an enum).
#[test]
fn at_const_of_embedded_c() {
    let script = "%{\n#define MY_LIMIT 0x20\nenum { MY_A = 3, MY_B };\n%}\nprobe begin { printf(\"%d %d %d\\n\", @const(\"MY_LIMIT\"), @const(\"MY_B\"), @const(\"O_CREAT\")); exit() }";
    let o = run(&["-g", "-e", script]);
    assert_eq!(
        (o.status.code(), stdout(&o), stderr(&o)),
        (Some(0), "32 4 64\n".into(), String::new())
    );
}
