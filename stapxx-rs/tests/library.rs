//! The tapset library: files of the search path pulled in for the
//! functions, globals and probe aliases a script uses, with stap's
//! precedence, and probe aliases expanded (`!`, `?`, suffixes, wildcards,
//! prologues and epilogues). Our own little library is in
//! `tests/scripts/tapsets/{alpha,beta}`; its probes are host probes, so
//! these run without BPF. The last test goes through SystemTap's installed
//! tree (`scheduler.ctxswitch`) on a real kernel.

mod support;

use std::collections::HashMap;

fn lib(dir: &str) -> String {
    support::workspace_root()
        .join("tests/scripts/tapsets")
        .join(dir)
        .display()
        .to_string()
}

/// Run `script` with the alpha then beta library directories.
fn run(script: &str) -> (i32, String, String) {
    let (a, b) = (lib("alpha"), lib("beta"));
    support::stapxx(&["-I", &a, "-I", &b, "-e", script])
}

fn ok(script: &str) -> String {
    let (code, out, err) = run(script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "{script}");
    out
}

#[test]
fn functions_and_globals_come_from_the_first_directory_that_has_them() {
    let script = r#"probe begin { println(greet("x"), " ", which_dir(), " ", arch_of(), " ", greeted); exit() }"#;
    // greet() is in greet.stp, which calls decorate() of decorate.stp and
    // counts in its global; which_dir() is in alpha and beta, alpha is
    // named first; arch_of() in alpha/x86_64 comes before alpha's own.
    assert_eq!(ok(script), "hello <x> alpha x86_64 1\n");
    let (a, b) = (lib("alpha"), lib("beta"));
    let (code, out, err) = support::stapxx(&["-I", &b, "-I", &a, "-e", script]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello <x> beta x86_64 1\n"),
        "{err}"
    );
}

#[test]
fn overloads_by_arity_are_functions_of_their_own() {
    assert_eq!(
        ok(r#"probe begin { println(arity_of(), "|", arity_of(4), "|", arity_of(2, 3)); exit() }"#),
        "none|one 4|two 5\n"
    );
    // A script's own overloads too, and a kernel probe reaches them alike.
    assert_eq!(
        ok(
            r#"function f(a) { return a + 1 } function f(a, b) { return a * b }
probe timer.profile { printf("%d %d\n", f(1), f(2, 3)); exit() }"#
        )
        .lines()
        .next(),
        Some("2 6")
    );
    // An arity nobody defines is an error naming the one there is.
    let (code, _, err) = run("function g(a) { return a } probe begin { println(g(1, 2)) }");
    assert_eq!(code, 1);
    assert!(
        err.contains("function 'g' takes 1 argument, given 2"),
        "{err}"
    );
}

#[test]
fn an_alias_chain_falls_through_to_what_this_kernel_serves() {
    // demo.tick = demo.unserved !, timer.ms(7): demo.unserved is a
    // kernel.function, optional, so the timer serves it.
    assert_eq!(
        ok(r#"probe demo.tick { println(tag, " ", pp()); exit() }"#),
        "tick timer.ms(7)\n"
    );
}

#[test]
fn an_alias_whose_definition_starts_on_the_next_line() {
    assert_eq!(
        ok(r#"probe demo.nextline { println(tag, " ", pp()); exit() }"#),
        "nextline timer.ms(9)\n"
    );
}

#[test]
fn alias_suffixes_wildcards_prologues_and_epilogues() {
    // demo.clock = timer: demo.clock.ms(5) is timer.ms(5).
    assert_eq!(
        ok(r#"probe demo.clock.ms(5) { println(unit, " ", pp()); exit() }"#),
        "clock timer.ms(5)\n"
    );
    // demo.w.* is demo.w.one (begin) and demo.w.two (begin(1)), in order.
    assert_eq!(
        ok(r#"probe demo.w.* { println(w) } probe begin(2) { exit() }"#),
        "one\ntwo\n"
    );
    // The prologue runs first and the epilogue last, in one scope.
    assert_eq!(
        ok(r#"probe demo.wrapped { s = s . "+body"; exit() }"#),
        "pro+body+epi\n"
    );
}

#[test]
fn what_no_alias_can_serve_is_a_clear_error() {
    let (code, out, err) = run("probe demo.nowhere { }");
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "-e:1:7: error: probe point 'demo.nowhere' matched nothing: none of the points its alias expands to can be served on this system\n    \
         probe demo.nowhere { }\n          \
         ^\n"
    );
    // An optional one is nothing, quietly.
    assert_eq!(
        ok("probe demo.nowhere ? { } probe begin { println(1); exit() }"),
        "1\n"
    );
    let (code, _, err) = run("probe demo.nosuch { }");
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "-e:1:7: error: probe point 'demo.nosuch': no probe kind or probe alias of that name (nearest: demo.clock, demo.nowhere, demo.tick, demo.w.one)\n"
        ),
        "{err}"
    );
}

/// `-p2` shows each derived probe: its sites and the body with the
/// alias's prologue.
#[test]
fn listing_of_an_alias_chain() {
    let (a, b) = (lib("alpha"), lib("beta"));
    let (code, out, err) = support::stapxx(&[
        "-p2",
        "-I",
        &a,
        "-I",
        &b,
        "-e",
        r#"probe demo.tick, demo.w.two { println(tag, w) }"#,
    ]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

/// Through SystemTap's installed tree: `scheduler.ctxswitch` of
/// linux/scheduler.stp falls through to `kernel.trace("sched_switch")`,
/// its prologue reads `$prev`/`$next` (typed from the kernel's BTF) and
/// calls the tree's own `task_execname()`.
#[test]
fn scheduler_ctxswitch_from_the_installed_tree() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    if !std::path::Path::new("/usr/share/systemtap/tapset/linux/scheduler.stp").exists() {
        support::missing("SystemTap's tapset tree (systemtap-common)");
        return;
    }
    let bin = support::c_fixture("pingpong.c", "pingpong-O2", &["-O2", "-pthread"]);
    let rounds = 300;
    let script = r#"probe scheduler.ctxswitch {
  if (pid() == target())
    printf("%s %d %s -> %d %s\n", name, prev_tid, prev_task_name, next_tid, next_task_name)
}"#;
    let (code, out, err) = support::stapxx_c(&format!("{} {rounds}", bin.display()), script);
    assert_eq!(code, 0, "{err}");
    let tid_of = |who: &str| support::pingpong_tid(&out, who);
    let (ping, pong) = (tid_of("ping"), tid_of("pong"));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for l in out.lines().filter_map(|l| l.strip_prefix("ctxswitch ")) {
        *counts.entry(l.to_string()).or_default() += 1;
    }
    let get = |k: String| counts.get(&k).copied().unwrap_or(0);
    let there = get(format!("{ping} ping -> {pong} pong"));
    let back = get(format!("{pong} pong -> {ping} ping"));
    let about = |n: usize| support::about_one_per_round(n, rounds);
    assert!(about(there), "{there}: {counts:?}");
    assert!(about(back), "{back}: {counts:?}");
}
