//! The uprobe family run for real against `tests/fixtures/uprobes.c`
//! built with `cc -g -O0` and `-O2`: where function probes go (after the
//! prologue at -O0: `$n` read from the stack slot the prologue fills), what
//! `$vars`, `$return` and `@entry` read, `.return`, wildcards, handlers on
//! points of several kinds, and the errors of pass 2.

mod support;

use std::path::PathBuf;
use std::process::Command;

fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("uprobes.c", &format!("uprobes{opt}"), &[opt])
}

/// `stapxx-rs -c "BIN N" -e SCRIPT` with `BIN` in the script replaced by
/// the fixture's path: (status, stdout, stderr).
fn run(opt: &str, n: u32, script: &str) -> (i32, String, String) {
    let bin = fixture(opt);
    let script = script.replace("BIN", &bin.display().to_string());
    support::stapxx_c(&format!("{} {n}", bin.display()), &script)
}

/// The fixture's own output line.
fn done(n: i64) -> String {
    // sum of work(i) = 2i and twice(i) = 2i, plus work_more(100) = 201.
    format!("done {}", (1..=n).map(|i| 4 * i).sum::<i64>() + 201)
}

#[test]
fn parameters_are_read_where_stap_puts_the_probe() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let (code, out, err) = run(
            opt,
            4,
            r#"probe process("BIN").function("work") { printf("work %d\n", $n) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        let want = format!("work 1\nwork 2\nwork 3\nwork 4\nwork 100\n{}\n", done(4));
        // The fixture's line may come before or after the last probe line
        // flushes; compare as sets of lines in order of each source.
        let probe_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("work")).collect();
        assert_eq!(
            probe_lines,
            want.lines()
                .filter(|l| l.starts_with("work"))
                .collect::<Vec<_>>(),
            "{opt}: {out}"
        );
        assert!(out.contains(&done(4)), "{opt}: {out}");
    }
}

#[test]
fn return_probes_read_return_values_and_entry_values() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let (code, out, err) = run(
            opt,
            3,
            r#"probe process("BIN").function("twice").return { printf("twice(%d) = %d\n", @entry($n), $return) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("twice")).collect();
        assert_eq!(
            lines,
            ["twice(1) = 2", "twice(2) = 4", "twice(3) = 6"],
            "{opt}: {out}"
        );
    }
}

/// An `@entry` value lives from one entry to its return, as a kretprobe's
/// instance data: four processes in turn, each a thread of its own, with
/// room for two entries in every array (the values are kept per thread).
#[test]
fn entry_values_are_taken_at_their_return() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = fixture("-O2").display().to_string();
    let (code, out, err) = support::stapxx(&[
        "-D",
        "MAXMAPENTRIES=2",
        "-c",
        &format!("sh -c '{bin} 1; {bin} 1; {bin} 1; {bin} 2'"),
        "-e",
        &format!(
            r#"probe process("{bin}").function("twice").return {{ printf("twice(%d) = %d\n", @entry($n), $return) }}"#
        ),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("twice")).collect();
    assert_eq!(
        lines,
        [
            "twice(1) = 2",
            "twice(1) = 2",
            "twice(1) = 2",
            "twice(1) = 2",
            "twice(2) = 4"
        ],
        "{out}{err}"
    );
    assert!(!err.contains("overflow"), "{err}");
}

#[test]
fn wildcards_match_every_function_once() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let (code, out, err) = run(
            opt,
            5,
            r#"global c; probe process("BIN").function("work*") { c[probefunc()]++ } probe end { foreach (f+ in c) printf("%s %d\n", f, c[f]) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("work")).collect();
        assert_eq!(lines, ["work 6", "work_more 1"], "{opt}: {out}");
    }
}

#[test]
fn one_handler_on_points_of_different_kinds() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = run(
        "-O2",
        3,
        r#"global calls, begins
probe begin, process("BIN").function("work") { if (pp() == "begin") begins++; else calls++ }
probe end { printf("begins=%d calls=%d\n", begins, calls) }"#,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("begins=1 calls=4\n"), "{out}");
}

#[test]
fn a_point_that_matches_nothing_is_a_pass_2_error() {
    let bin = fixture("-O2");
    for (script, want) in [
        (
            r#"probe process("BIN").function("wrok") { }"#,
            "function 'wrok' (nearest: work",
        ),
        (
            r#"probe kernel.function("vfs_read") { }"#,
            "this kernel has no kprobes",
        ),
        (
            r#"probe procfs("x").read { }"#,
            "procfs probes are files under /proc/systemtap that stap's kernel module makes",
        ),
        (
            r#"probe netfilter.ipv4.pre_routing { }"#,
            "netfilter hooks are registered by stap's kernel module",
        ),
        (r#"probe timer.sex(1) { }"#, "unknown timer unit 'sex'"),
        (r#"probe perf.sw.cpu_clok { }"#, "nearest: cpu_clock"),
        (
            r#"probe procss("BIN").function("work") { }"#,
            "nearest: process",
        ),
    ] {
        let script = script.replace("BIN", &bin.display().to_string());
        for pass in ["-p2", "-p4"] {
            let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
                .args([pass, "-e", &script])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{script}: {err}");
            assert!(err.contains(want), "{script}: {err}");
            // file:line:col and a caret under the point.
            assert!(err.starts_with("-e:1:7: error: probe point"), "{err}");
            assert!(err.lines().any(|l| l.trim() == "^"), "{err}");
        }
    }
    // `?` makes a point that matches nothing optional.
    let script = format!(
        r#"probe process("{}").function("wrok")?, begin {{ println("ok"); exit() }}"#,
        bin.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-e", &script])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

#[test]
fn process_without_a_path_means_the_command_executable() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let (code, out, err) = run(
        "-O0",
        2,
        r#"probe process.function("work") { printf("work %d\n", $n) }"#,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("work")).collect();
    assert_eq!(lines, ["work 1", "work 2", "work 100"], "{out}");
}

/// `tests/fixtures/lifecycle.c`: the command itself (exec), two threads,
/// three forked children. Each begin and end runs in that task's own
/// context: the pids seen at begin are those seen at end.
#[test]
fn process_and_thread_begin_and_end() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture(
            "lifecycle.c",
            &format!("lifecycle{opt}"),
            &[opt, "-pthread"],
        );
        let script = r#"probe process("BIN").begin { printf("begin %d %d\n", pid(), pid() == target()) }
probe process("BIN").end { printf("end %d\n", pid()) }
probe process("BIN").thread.begin { printf("tbegin %d %d\n", tid(), pid() == target() && tid() != pid()) }
probe process("BIN").thread.end { printf("tend %d\n", tid()) }
probe process("/bin/true").begin { println("not this one") }"#
            .replace("BIN", &bin.display().to_string());
        let (code, stdout, err) = support::stapxx_c(&bin.display().to_string(), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        let field = |prefix: &str, i: usize| -> Vec<String> {
            let mut v: Vec<String> = stdout
                .lines()
                .filter(|l| l.starts_with(prefix))
                .map(|l| l.split(' ').nth(i).unwrap_or("").to_string())
                .collect();
            v.sort();
            v
        };
        // The command (pid == target()) and its three children.
        let begins = field("begin ", 1);
        assert_eq!(begins.len(), 4, "{opt}: {stdout}");
        assert_eq!(field("begin ", 2), ["0", "0", "0", "1"], "{opt}: {stdout}");
        assert_eq!(field("end ", 1), begins, "{opt}: {stdout}");
        // Two threads of the command, not its leader.
        let threads = field("tbegin ", 1);
        assert_eq!(threads.len(), 2, "{opt}: {stdout}");
        assert_eq!(field("tbegin ", 2), ["1", "1"], "{opt}: {stdout}");
        assert_eq!(field("tend ", 1), threads, "{opt}: {stdout}");
        assert!(!stdout.contains("not this one"), "{stdout}");
        assert!(stdout.contains("done\n"), "{stdout}");
    }
}

/// `tests/fixtures/split_part.c` at -O2: GCC splits `finalize` and inlines
/// its tail back into `finalize` itself, so the DWARF has an inlined copy
/// of `finalize` nested in `finalize` (called from its declaration line).
/// That copy is not a call: one site, one hit per call. (lua-nginx-module's
/// `ngx_http_lua_socket_tcp_finalize` is built this way; the corpus sample
/// ngx-lua-useless-cosockets counted every cosocket twice.)
fn split_part() -> PathBuf {
    support::c_fixture("split_part.c", "split_part-O2", &["-O2"])
}

#[test]
fn a_split_part_inlined_back_is_one_site() {
    let bin = split_part();
    let script = format!(
        r#"probe process("{}").function("finalize") {{ }}"#,
        bin.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .args(["-p2", "-e", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace(&bin.display().to_string(), "BIN");
    let sites: Vec<_> = text.lines().filter(|l| l.contains("uprobe at")).collect();
    assert_eq!(
        sites,
        ["#   uprobe at the entry of finalize in BIN (file offset 0x1260) <- process(\"BIN\").function(\"finalize\")"],
        "{text}"
    );
}

#[test]
fn a_split_part_inlined_back_is_not_a_second_entry() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = split_part();
    let script = format!(
        r#"global n probe process("{}").function("finalize") {{ n++ }} probe end {{ printf("hits %d\n", n) }}"#,
        bin.display()
    );
    let (code, out, err) = support::stapxx_c(&format!("{} 5", bin.display()), &script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "finalized 5\nhits 5\n", "{err}");
}

/// stap writes target variables in guru mode; stapxx-rs never writes to
/// the target: a write is refused at pass 2, at the assignment, and so
/// are the installed tree's guru functions that signal a task or write
/// kernel memory.
#[test]
fn writing_to_the_target_is_refused() {
    let bin = fixture("-O2");
    let write = format!(
        r#"probe process("{}").function("work") {{ $n = 0 }}"#,
        bin.display()
    );
    for (script, why) in [
        (
            write.as_str(),
            "error: cannot write the target variable '$n': stapxx-rs only reads the traced program",
        ),
        (
            "probe begin { raise(9) }",
            "it sends a signal to a task, which changes the traced program",
        ),
        (
            "probe begin { set_kernel_long(0, 1) }",
            "it writes kernel memory",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
            .args(["-g", "-p2", "-e", script])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert!(err.contains(why), "{script}: {err}");
    }
}
