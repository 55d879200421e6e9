//! stap's pretty printing (`$var$`, `$var$$`, `$$parms$`, `@cast(...)$`,
//! `$return$`): the formats are stap's own (its `-p2` against ours, on the
//! same fixture), the values what the fixture holds (-O0 and -O2, where
//! the struct passed by value is held in a register), in `.return`
//! probes the values at entry, kernel structures through BTF, a faulting
//! read `ERROR`, and the errors.

mod support;

use std::path::PathBuf;

fn fixture(opt: &str) -> PathBuf {
    support::c_fixture("pretty.c", &format!("pretty{opt}"), &[opt])
}

/// Every pretty-printed kind the fixture has, in one probe per function.
const SCRIPT: &str = r#"
probe process("BIN").function("visit") {
  println($n$)
  println($n$$)
  println($$parms$)
  println($$parms)
  println($why$$)
  println($ip$)
  println($n->next$)
  println($n->fn$)
  println($n->h$)
  println($n->nums$)
  println($n->in$$)
}
probe process("BIN").function("sum") { println($b$) }
"#;

/// The `sprintf` formats of a `-p2` listing (ours or stap's), sorted.
fn formats(listing: &str) -> Vec<String> {
    let mut out: Vec<String> = listing
        .match_indices("sprintf(\"")
        .map(|(at, _)| {
            let rest = &listing[at + 9..];
            rest[..rest.find('"').expect("closing quote")].to_string()
        })
        // stap's own helper functions (user_string_quoted's `0x%x`).
        .filter(|f| f != "0x%x")
        .collect();
    out.sort();
    out
}

#[test]
fn formats_are_stap_s() {
    if !support::have_tool("stap") {
        support::missing("stap (systemtap), the oracle of the formats");
        return;
    }
    let bin = fixture("-O0");
    let script = SCRIPT.replace("BIN", &bin.display().to_string());
    let theirs = support::stap::stap_with(&["-p2", "-v"], &script);
    assert!(
        theirs.status.success(),
        "stap -p2:\n{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let (code, ours, err) = support::stapxx(&["-p2", "-e", &script]);
    assert_eq!((code, err.as_str()), (0, ""), "{ours}");
    let (theirs, ours) = (
        formats(&String::from_utf8_lossy(&theirs.stdout)),
        formats(&ours),
    );
    // The same formats; stap makes one function of `$n$` for both uses
    // in a probe where we make two of the same text, so compare sets.
    let dedup = |mut v: Vec<String>| {
        v.dedup();
        v
    };
    assert_eq!(dedup(ours), dedup(theirs));
}

/// The addresses the fixture prints first: a, b, b.in, twice, &i.
fn addresses(out: &str) -> Vec<u64> {
    let line = out
        .lines()
        .find(|l| l.starts_with("pretty a="))
        .unwrap_or_else(|| panic!("no addresses in {out}"));
    line.split(' ')
        .filter_map(|w| w.split_once("=0x"))
        .map(|(_, h)| u64::from_str_radix(h, 16).expect("hex"))
        .collect()
}

#[test]
fn values_as_the_fixture_holds_them() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    for opt in ["-O0", "-O2"] {
        let bin = fixture(opt);
        let script = SCRIPT.replace("BIN", &bin.display().to_string());
        let (code, out, err) = support::stapxx_c(&bin.display().to_string(), &script);
        assert_eq!((code, err.as_str()), (0, ""), "{opt}: {out}");
        let [a, b, b_in, twice, ip] = addresses(&out)[..] else {
            panic!("{opt}: five addresses in {out}");
        };
        let one = format!(
            "{{.id=1, .flags=5, .sflag=-3, .tag='q', .name=\"first\", .label=[...], .nums=[...], .in={{...}}, .pin={b_in:#x}, .next={b:#x}, .c=5, .s=-1, .ok=1, .d=?, <union>={{...}}, <class>={{...}}, .opaque={a:#x}, .fn={twice:#x}, .h=0x0}}"
        );
        let full = format!(
            "{{.id=1, .flags=5, .sflag=-3, .tag='q', .name=\"first\", .label=\"lbl\", .nums=[7, ...], .in={{.x=-4, .y=65535}}, .pin={b_in:#x}, .next={b:#x}, .c=5, .s=-1, .ok=1, .d=?, <union>={{.l=42, .bytes=\"*\"}}, <class>={{.a=-2, .b=3}}, .opaque={a:#x}, .fn={twice:#x}, .h=0x0}}"
        );
        let big: Vec<String> = (0..32).map(|i| format!(".v{i}={}", i * 10)).collect();
        let traced: Vec<String> = out
            .lines()
            .filter(|l| !l.starts_with("pretty "))
            .map(String::from)
            .collect();
        let why = traced
            .get(3)
            .and_then(|l| l.split(" why=0x").nth(1))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("{opt}: no $$parms line in {out}"))
            .to_string();
        assert_eq!(
            traced,
            [
                one.clone(),
                full,
                // The struct passed by value prints whole at -O2 too, read
                // from the register that holds it.
                format!("n={one} depth=3 why=\"because\" val={{.x=-4, .y=65535}} ip={ip} c=0"),
                format!("n={a:#x} depth=0x3 why=0x{why} val={{...}} ip={ip:#x} c=0x0"),
                "\"because\"".into(),
                // stap's rule: a pointer at the top is followed, so an
                // `int *` prints its own value as the int.
                ip.to_string(),
                "{.id=2, .flags=0, .sflag=0, .tag='\\n', .name=\"second\", .label=[...], .nums=[...], .in={...}, .pin=0x0, .next=0x0, .c=0, .s=0, .ok=0, .d=?, <union>={...}, <class>={...}, .opaque=0x0, .fn=0x0, .h=0x0}".into(),
                format!("<function>:{twice:#x}"),
                "{...}".into(),
                "[7, ...]".into(),
                "{.x=-4, .y=65535}".into(),
                format!("{{{}, ...}}", big.join(", ")),
            ],
            "{opt}: {out}"
        );
    }
}

#[test]
fn return_probes_print_values_at_entry() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = fixture("-O2");
    let script = r#"
probe process.function("visit").return {
  println($$return$)
  println($return$)
  println($n->pin$)
  println($why$)
  println($$parms$)
}
"#;
    let (code, out, err) = support::stapxx_c(&bin.display().to_string(), script);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("pretty ")).collect();
    // 1 + 3 + 'b' + -4 + 65535 + 77 + 0.
    assert_eq!(
        &traced[..4],
        ["return=65710", "65710", "{.x=0, .y=0}", "\"because\""]
    );
    assert!(
        traced[4].starts_with("n={.id=1, .flags=5, ") && traced[4].ends_with(" c=0"),
        "{out}"
    );
    assert_eq!(traced.len(), 5, "{out}");
}

#[test]
fn kernel_structures_and_a_faulting_read() {
    let Some(_s) = support::need_bpf() else {
        return;
    };
    let bin = fixture("-O0");
    let path = bin.display().to_string();
    let script = r#"
probe kernel.trace("sched:sched_process_exec") {
  if (pid() != target()) next
  println($bprm->filename$)
  println($p->comm$)
  println(task_current()->tgid$)
  println(@cast(task_current(), "task_struct", "kernel")->pid$)
  println(@cast(8, "task_struct", "kernel")$)
  println($bprm$)
}
"#;
    let (code, out, err) = support::stapxx(&["-c", &format!("{path} one two"), "-e", script]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let traced: Vec<&str> = out.lines().filter(|l| !l.starts_with("pretty ")).collect();
    assert_eq!(traced.len(), 6, "{out}");
    let comm: String = bin
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    assert_eq!(traced[0], format!("\"{path}\""));
    assert_eq!(traced[1], format!("\"{comm}\""));
    assert_eq!(traced[2], traced[3], "{out}");
    assert!(traced[2].parse::<u32>().is_ok_and(|p| p > 1), "{out}");
    assert_eq!(traced[4], "ERROR");
    assert!(traced[5].starts_with("{.vma=0x"), "{out}");
    assert!(
        traced[5].contains(".argc=3, .envc=")
            && traced[5].contains(&format!(".filename=\"{path}\"")),
        "{out}"
    );
}

#[test]
fn errors() {
    let bin = fixture("-O0");
    let path = bin.display().to_string();
    for (body, want) in [
        ("println(&$n$)", "cannot take the address of a pretty-printed value"),
        (
            "println($nope$)",
            "target variable '$nope' not found in function 'visit'; it has: n, depth, why, val, ip, c",
        ),
        ("println($n->nme$)", "struct node has no member 'nme'; nearest: name, nums"),
        ("println($$foo$)", "unknown context variable '$$foo'"),
    ] {
        let script = format!("probe process(\"{path}\").function(\"visit\") {{ {body} }}");
        let (code, out, err) = support::stapxx(&["-p2", "-e", &script]);
        assert_ne!(code, 0, "{body}: {out}");
        assert!(err.contains(want), "{body}: {err}");
        assert!(err.contains("-e:1:"), "{body}: {err}");
    }
}

/// `stapxx-rs -pN -e SCRIPT` (which must succeed), `BIN` standing for the
/// -O0 fixture in the script and in the output.
fn listing(pass: &str, script: &str) -> String {
    let bin = fixture("-O0").display().to_string();
    let (code, out, err) = support::stapxx(&[pass, "-e", &script.replace("BIN", &bin)]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    out.replace(&bin, "BIN")
}

/// The function made for each pretty value, and the context string.
#[test]
fn p2_listing() {
    insta::assert_snapshot!(listing(
        "-p2",
        r#"probe process("BIN").function("visit") { println($n$); println($$parms$); println(@cast($n, "struct node")->in$$) }"#
    ));
}

/// A kernel value through BTF: the string read in the kernel, the made
/// function's `try` around it.
#[test]
fn p3_listing_of_a_kernel_value() {
    insta::assert_snapshot!(listing(
        "-p3",
        r#"probe kernel.trace("sched:sched_process_exec") { println($p->comm$) }"#
    ));
}

/// With no module named and no `-x`/`-c`, `@var` and `@cast` in a probe
/// on one program mean that program's (as stap takes the probe's module).
#[test]
fn module_less_var_and_cast_name_the_probed_module() {
    let out = listing(
        "-p2",
        r#"probe process("BIN").function("visit") { println(@var("visits"), @cast($n, "struct node")->id) }"#,
    );
    // (No process yet: the module's place is the probe's own rip less
    // its link-time address.)
    assert!(
        out.contains("println(user_int64_error(((u_register(\"rip\") - "),
        "{out}"
    );
    assert!(out.contains("user_int32_error(user_uint64_error("), "{out}");
}
