//! What `pp()` says in process probes, against SystemTap's own pass 3:
//! stap names the site that matched (the module by its full path, a
//! function as `name@file:line` of its declaration, a statement by its
//! line, a marker or PLT stub by its address, then the point's `.call`,
//! `.exported`, `.inline`, `.return`), and `stap -p3` writes each probe's
//! name into its probe table. Every point kind of `tests/fixtures/pp_names.c`
//! (a function declared in a header, inlined at -O2; an SDT marker; a PLT
//! call; a library function, its library given by soname), built -O0
//! and -O2, must give stap's names, at pass 2 and in a real run; and each name, used as a probe point, must find the same
//! function again (`function("f@file.c:N")`, a function by its
//! declaration line).

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The points compared, `LINE` standing for the line of the fixture's
/// `LINE:scaled` tag.
const POINTS: &[&str] = &[
    r#"function("*")"#,
    r#"function("*").call"#,
    r#"function("*").return"#,
    r#"function("pp_scaled").exported"#,
    r#"function("pp_scaled@pp_names.c")"#,
    r#"mark("hit")"#,
    r#"provider("ppn").mark("hit")"#,
    r#"plt("puts")"#,
    r#"plt("puts").return"#,
    r#"statement("pp_scaled@pp_names.c:LINE")"#,
    // A library by its soname, found among the program's (its DWARF from
    // Debian's libc6-dbg): named by its file and the function's own name.
    r#"library("libc.so.6").function("puts")"#,
    "begin",
    "end",
    "thread.begin",
];

/// The fixture at -O0 and -O2, each with the points it has: the
/// header's function is inlined at -O2 only.
fn builds() -> Vec<(PathBuf, Vec<&'static str>)> {
    ["-O0", "-O2"]
        .iter()
        .map(|o| {
            let exe = support::c_fixture("pp_names.c", &format!("pp_names{o}"), &[o]);
            let mut points = POINTS.to_vec();
            if *o == "-O2" {
                points.push(r#"function("pp_twice").inline"#);
            }
            (exe, points)
        })
        .collect()
}

fn point(exe: &Path, p: &str) -> String {
    let line = support::c_line_of("pp_names.c", "scaled").to_string();
    format!(
        "process(\"{}\").{}",
        exe.display(),
        p.replace("LINE", &line)
    )
}

/// What `stapxx-rs -p2` says of `p` on `exe`, which it must refuse.
fn refused(exe: &Path, p: &str) -> String {
    let (code, out, err) =
        support::stapxx(&["-p2", "-e", &format!("probe {} {{ }}", point(exe, p))]);
    assert_eq!(code, 1, "{p}: {out}{err}");
    err
}

/// A string literal of C or stap (from its opening quote): its text.
fn literal(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"').expect("a literal").chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// The names `stap -p3` gives the probes of `point`.
fn stap_names(point: &str) -> BTreeSet<String> {
    let out = support::stap::stap(3, &format!("probe {point} {{ println(pp()) }}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stap -p3 failed on {point}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("  STAP_PROBE_INIT("))
        .map(|l| {
            literal(
                l.split_once(", &probe_")
                    .expect("probe table row")
                    .1
                    .split_once(", ")
                    .unwrap()
                    .1,
            )
        })
        .collect();
    assert!(!names.is_empty(), "no probe of {point} in:\n{text}");
    names
}

/// The names `stapxx-rs -p2` gives the handlers of `points` (pp() is
/// folded into each handler as text).
fn our_names(points: &[String]) -> BTreeSet<String> {
    let script = format!("probe {} {{ println(pp()) }}", points.join(",\n  "));
    let (code, out, err) = support::stapxx(&["-p2", "-e", &script]);
    assert_eq!(code, 0, "{script}\n{err}");
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("println(").map(literal))
        .collect()
}

#[test]
fn pass_2_names_every_site_as_stap_does() {
    if !support::have_tool("stap") {
        return support::missing("stap (SystemTap), the oracle");
    }
    for (exe, points) in builds() {
        for p in points {
            let point = point(&exe, p);
            assert_eq!(
                our_names(std::slice::from_ref(&point)),
                stap_names(&point),
                "{point}"
            );
        }
    }
}

#[test]
fn a_name_used_as_a_point_finds_its_function_again() {
    for (exe, points) in builds() {
        for p in points
            .iter()
            .filter(|p| p.starts_with("function(\"*\")") || p.ends_with(".inline"))
        {
            // The functions DWARF describes: named by their declarations.
            let names: Vec<String> = our_names(&[point(&exe, p)])
                .into_iter()
                .filter(|n| n.contains('@'))
                .collect();
            assert!(!names.is_empty(), "{p}");
            assert_eq!(
                our_names(&names),
                names.iter().cloned().collect(),
                "{}",
                exe.display()
            );
        }
    }
    // A declaration line no function has: the ones there are, named.
    let exe = &builds()[0].0;
    let err = refused(exe, r#"function("pp_scaled@pp_names.c:1")"#);
    let decl = support::c_line_of("pp_names.c", "scaled") - 3;
    assert!(
        err.contains(&format!(
            "no function 'pp_scaled@pp_names.c' is declared at line 1 in {} (declared: pp_scaled@{}:{decl})",
            exe.display(),
            support::workspace_root().join("tests/fixtures/pp_names.c").display()
        )),
        "{err}"
    );
}

#[test]
fn a_run_prints_the_names_stap_gives() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    if !support::have_tool("stap") {
        return support::missing("stap (SystemTap), the oracle");
    }
    for (exe, _) in builds() {
        let points: Vec<String> = [
            r#"function("pp_scaled").return"#,
            r#"mark("hit")"#,
            r#"plt("puts")"#,
            r#"statement("pp_scaled@pp_names.c:LINE")"#,
            r#"library("libc.so.6").function("puts")"#,
        ]
        .iter()
        .map(|p| point(&exe, p))
        .collect();
        let script = format!("probe {} {{ println(pp()) }}", points.join(", "));
        let (code, out, err) = support::stapxx_c(&format!("{} 7", exe.display()), &script);
        assert_eq!(code, 0, "{err}");
        let want: BTreeSet<String> = points.iter().flat_map(|p| stap_names(p)).collect();
        let got: BTreeSet<String> = out
            .lines()
            .filter(|l| l.starts_with("process("))
            .map(str::to_string)
            .collect();
        assert_eq!(got, want, "{out}");
        assert!(out.contains("42\n"), "{out}");
    }
}

/// A function entered by a jump, not a call, has no return address on
/// its stack top: a `.return` probe there would overwrite what is there
/// (argc, at `_start`). Refused by name; left out of wildcards (as
/// `pass_2_names_every_site_as_stap_does` checks against stap's set).
#[test]
fn no_return_probe_where_no_call_enters() {
    let exe = &builds()[0].0;
    let err = refused(exe, r#"function("_start").return"#);
    assert!(
        err.contains("_start cannot take a .return probe: not entered by a call"),
        "{err}"
    );
    refused(exe, r#"function("_st*").return"#);
}

/// A tracepoint is named by its system and name, whatever pattern matched
/// it (stap's tracepoint probes do so since its version 2.6).
#[test]
fn tracepoints_are_named_by_system_and_name() {
    let names = our_names(&[
        r#"kernel.trace("sched:sched_process_e*")"#.to_string(),
        r#"kernel.trace("sched_switch")"#.to_string(),
    ]);
    let want: BTreeSet<String> = ["sched_process_exec", "sched_process_exit", "sched_switch"]
        .iter()
        .map(|n| format!("kernel.trace(\"sched:{n}\")"))
        .collect();
    assert_eq!(names, want);
}

/// A library the program does not link against: the error lists those it
/// does.
#[test]
fn a_library_not_linked_is_named_with_those_that_are() {
    let exe = &builds()[0].0;
    let err = refused(exe, r#"library("libm.so.6").function("sin")"#);
    assert!(
        err.contains(&format!(
            "library \"libm.so.6\" is none of the shared objects {} links against (ldd): libc.so.6, ld-linux-x86-64.so.2",
            exe.display()
        )),
        "{err}"
    );
}

/// `is_return()` and `registers_valid()` (stap's are embedded C) are facts
/// of the site, like `pp()`: 1 at a return, 0 at an entry and in host
/// probes; registers in uprobes, none in host probes.
#[test]
fn is_return_is_a_fact_of_the_site() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let exe = &builds()[0].0;
    let script = format!(
        "probe begin {{ printf(\"begin %d %d\\n\", is_return(), registers_valid()) }}\n\
         probe {} {{ printf(\"entry %d %d\\n\", is_return(), registers_valid()) }}\n\
         probe {} {{ printf(\"return %d %d\\n\", is_return(), registers_valid()) }}\n",
        point(exe, r#"function("pp_scaled")"#),
        point(exe, r#"function("pp_scaled").return"#)
    );
    let (code, out, err) = support::stapxx_c(&exe.display().to_string(), &script);
    assert_eq!(code, 0, "{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    // (6: the fixture's own output.)
    assert_eq!(
        lines,
        ["6", "begin 0 0", "entry 0 1", "return 1 1"],
        "{out}"
    );
}

/// Every quoted literal of a `STAP_PROBE_INIT(...)` row, in order: the
/// point (`pp()`), the script-level name (`pn()`), the script location, the
/// derivation.
fn row_literals(row: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = row.split_once(", &probe_").expect("probe table row").1;
    while let Some(i) = rest.find('"') {
        let lit = literal(&rest[i..]);
        // Skip past the literal as written (escapes included).
        let mut end = i + 1;
        let b = rest.as_bytes();
        while end < b.len() && b[end] != b'"' {
            end += if b[end] == b'\\' { 2 } else { 1 };
        }
        out.push(lit);
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out
}

/// `pn()`: the script-level point after wildcard expansion, as stap's
/// `script_location()` gives it (the second name of each row of `stap
/// -p3`'s probe table): an alias's name for the points it expands to, the
/// site's own name (`pp()`) for a wildcard or plain point, `timer.s(1)`,
/// `begin`.
#[test]
fn pn_names_the_script_level_point_as_stap_does() {
    if !support::have_tool("stap") {
        return support::missing("stap (SystemTap), the oracle");
    }
    for (exe, _) in builds() {
        let script = format!(
            "probe myp = {} {{ }}\nprobe myp, {}, timer.s(1), begin {{ println(pn()) }}",
            point(&exe, r#"function("pp_scaled")"#),
            point(&exe, r#"function("m*")"#),
        );
        let out = support::stap::stap(3, &script);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: BTreeSet<String> = text
            .lines()
            .filter(|l| l.starts_with("  STAP_PROBE_INIT("))
            .map(|l| row_literals(l)[1].clone())
            .collect();
        assert!(want.contains("myp") && want.contains("begin"), "{want:?}");
        let (code, ours, err) = support::stapxx(&["-p2", "-e", &script]);
        assert_eq!(code, 0, "{err}");
        let got: BTreeSet<String> = ours
            .lines()
            .filter_map(|l| l.trim().strip_prefix("println(").map(literal))
            .collect();
        assert_eq!(got, want, "{ours}");
    }
}

/// `pn()` in a kernel handler reached through a tapset alias wildcard, and
/// in script functions (the kernel's and the host's).
#[test]
fn pn_in_kernel_and_host_handlers_and_their_functions() {
    let Some(_bpf) = support::need_bpf() else {
        return;
    };
    let exe = support::c_fixture("sites.c", "sites-O0", &["-O0"]);
    // The fixture's own calls only (not the command's before its exec).
    let comm: String = exe
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    let script = format!(
        r#"function who() {{ return pn() }}
probe syscall.getp* {{ if (pid() == target() && execname() == "{comm}") printf("%s %s\n", pn(), who()) }}
probe begin {{ printf("%s %s\n", pn(), who()) }}"#
    );
    let (code, out, err) = support::stapxx_c(&format!("{} 7", exe.display()), &script);
    assert_eq!(code, 0, "{err}");
    let mine: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("syscall.") || l.starts_with("begin"))
        .collect();
    // sites.c calls getpid() once, getppid() never.
    assert_eq!(
        mine,
        ["begin begin", "syscall.getpid syscall.getpid"],
        "{out}"
    );
}
