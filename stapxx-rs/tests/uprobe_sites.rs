//! Inlined copies, statements and PLT stubs probed for real, against
//! `tests/fixtures/sites.c` built with `cc -g -O0` and `-O2`: at -O2
//! `scale` has three inlined copies (one in `main`, two in the inlined
//! `twice`) and one out-of-line copy; at -O0 only the out-of-line one.

mod support;

use std::path::PathBuf;

fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("sites.c", &format!("sites{opt}"), &[opt])
}

/// `stapxx-rs -c "BIN ARGS" -e SCRIPT`, `BIN` and `LINE:name` markers
/// replaced; (status, probe output without the fixture's own lines, stderr).
fn run(opt: &str, args: &str, script: &str) -> (i32, Vec<String>, String) {
    let bin = fixture(opt);
    let mut script = script.replace("BIN", &bin.display().to_string());
    let line = support::c_line_of("sites.c", "loop_body");
    script = script.replace("LINE:loop_body", &line.to_string());
    let (code, stdout, err) = support::stapxx_c(&format!("{} {args}", bin.display()), &script);
    let bin_s = bin.display().to_string();
    let lines = stdout
        .lines()
        // The fixture prints its own path and a line of four numbers.
        .filter(|l| *l != bin_s && l.split(' ').count() != 4)
        .map(String::from)
        .collect();
    (code, lines, err)
}

#[test]
fn every_instance_of_a_function_reads_its_own_parameters() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // argc = 3: scale(3, 'm'), twice(5) -> scale(5, 't'), scale(6, 'a'),
    // then scale_ptr(3, 'p') (the out-of-line copy), in that order.
    for opt in ["-O0", "-O2"] {
        let (code, lines, err) = run(
            opt,
            "a b",
            r#"probe process("BIN").function("scale") { printf("%d %c\n", $factor, $mark) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(lines, ["3 m", "5 t", "6 a", "3 p"], "{opt}");
    }
}

#[test]
fn call_and_inline_split_the_instances() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let script = r#"probe process("BIN").function("scale").inline { printf("inline %d %c\n", $factor, $mark) }
probe process("BIN").function("scale").call { printf("call %d %c\n", $factor, $mark) }"#;
    let (code, lines, err) = run("-O2", "a b", script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        lines,
        ["inline 3 m", "inline 5 t", "inline 6 a", "call 3 p"]
    );
    // -O0 inlines nothing: `.inline` matches nothing, an error at pass 2.
    let (code, _, err) = run("-O0", "a b", script);
    assert_eq!(code, 1);
    assert!(err.contains("has no inlined copies"), "{err}");
}

#[test]
fn statement_probes_read_the_locals_in_scope() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    // argc = 2: walk(6) runs its loop body for i = 0..5.
    let (code, lines, err) = run(
        "-O0",
        "a",
        r#"probe process("BIN").statement("walk@sites.c:LINE:loop_body") { printf("%d %d %d\n", $i, $sq, $total) }"#,
    );
    assert_eq!(code, 0, "{err}");
    // The probe sits on the line's first instruction: the line has not run
    // yet, so `sq` still holds the last iteration's square (and on the
    // first, whatever the stack slot held: not compared), `total` the sum
    // of the odd squares plus totals so far (1 after i = 1, 11 after i = 3).
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(
        lines[0].starts_with("0 ") && lines[0].ends_with(" 0"),
        "{lines:?}"
    );
    assert_eq!(lines[1..], ["1 0 0", "2 1 1", "3 4 1", "4 9 11", "5 16 11"]);
    // At -O2 the loop counter is still there; the square is optimized out
    // at the line's first address (a DWARF fact, as stap reports it).
    let (code, lines, err) = run(
        "-O2",
        "a",
        r#"probe process("BIN").statement("walk@sites.c:LINE:loop_body") { printf("%d\n", $i) }"#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines, ["0", "1", "2", "3", "4", "5"]);
}

#[test]
fn plt_stubs_fire_once_per_call() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let (code, lines, err) = run(
            opt,
            "a",
            r#"global c; probe process("BIN").plt { c[$$name, ppfunc()]++ } probe end { foreach ([f+, p] in c) printf("%s [%s] %d\n", f, p, c[f, p]) }"#,
        );
        assert_eq!(code, 0, "{opt}: {err}");
        // strlen is called through a pointer: no stub. __cxa_finalize's
        // stub (.plt.got) runs at exit.
        assert_eq!(
            lines,
            // `$$name` names the stub's function; `ppfunc()` is "" (the
            // point names the stub's address), as in stap.
            [
                "__cxa_finalize [] 1",
                "getpid [] 1",
                "printf [] 1",
                "puts [] 1"
            ],
            "{opt}"
        );
    }
}

/// `tests/fixtures/callees.c`: `caller` calls `use_pool(a, 5)`,
/// `twice(5)` (inlined at -O2), `use_pool(b, 6)` and `getpid()`; `other`
/// calls `use_pool(p, 7)` directly and `use_pool(p, 1)` through a pointer.
#[test]
fn callee_probes_fire_only_for_the_callers_calls() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = support::c_fixture("callees.c", &format!("callees{opt}"), &[opt]);
        let script = r#"probe process("BIN").function("caller").callee("use_pool") { printf("callee %s %d %d\n", ppfunc(), $n, $pool->size) }
probe process("BIN").function("use_pool") { printf("any %d %d\n", $n, $pool->size) }
probe process("BIN").function("caller").callee("getpid") { println("getpid from caller") }
probe process("BIN").function("caller").callee("twice") { printf("twice %d\n", $v) }
probe process("BIN").function("caller").callees { printf("callees %s\n", ppfunc()) }"#
            .replace("BIN", &bin.display().to_string());
        let (code, stdout, err) = support::stapxx_c(&bin.display().to_string(), &script);
        assert_eq!(code, 0, "{opt}: {err}");
        let with = |p: &str| -> Vec<&str> { stdout.lines().filter(|l| l.starts_with(p)).collect() };
        // Every call of use_pool, through the pointer too.
        assert_eq!(
            with("any "),
            ["any 5 2", "any 6 3", "any 7 2", "any 1 2"],
            "{opt}"
        );
        // Only caller's two calls.
        assert_eq!(
            with("callee "),
            ["callee use_pool 5 2", "callee use_pool 6 3"],
            "{opt}"
        );
        assert_eq!(with("getpid "), ["getpid from caller"], "{opt}");
        // Out of line at -O0, an inlined copy at -O2: the same value.
        assert_eq!(with("twice "), ["twice 5"], "{opt}");
        let mut callees = with("callees ");
        callees.sort();
        assert_eq!(
            callees,
            [
                "callees getpid",
                "callees twice",
                "callees use_pool",
                "callees use_pool"
            ],
            "{opt}"
        );
    }
}
