//! Target variables of function probes (`$param`, `$$parms`, `$return`)
//! against `tests/fixtures/params.c` built with `cc -g -O0` and `-O2`:
//! the DWARF locations at the probe address, and the `-p2` rewrite.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use stapxx::debuginfo::params::{FunctionInfo, ParamLocation};
use stapxx::debuginfo::Module;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("stapxx-params-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn build(name: &str, flags: &[&str]) -> PathBuf {
    let out = dir().join(name);
    let st = Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(root().join("tests/fixtures/params.c"))
        .status()
        .expect("cc must be installed");
    assert!(st.success(), "cc {flags:?} failed");
    out
}

fn o0() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("params-O0", &["-g", "-O0"]))
}

fn o2() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("params-O2", &["-g", "-O2"]))
}

fn o2_dwarf4() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build("params-O2-dwarf4", &["-gdwarf-4", "-O2"]))
}

fn function(exe: &Path, name: &str) -> (Module, FunctionInfo) {
    let m = Module::open(exe).unwrap();
    let mut v = m.function_params(name).unwrap();
    assert_eq!(v.len(), 1, "{name}: {v:?}");
    let f = v.remove(0);
    (m, f)
}

/// (name, C type, location) of each parameter.
fn params(m: &Module, f: &FunctionInfo) -> Vec<(String, String, ParamLocation)> {
    let r = m.resolver().unwrap();
    f.params
        .iter()
        .map(|p| (p.name.clone(), r.type_name(&p.ty), p.location.clone()))
        .collect()
}

fn p(name: &str, ty: &str, loc: ParamLocation) -> (String, String, ParamLocation) {
    (name.to_string(), ty.to_string(), loc)
}

fn mem(base_reg: u16, offset: i64) -> ParamLocation {
    ParamLocation::Memory { base_reg, offset }
}

use ParamLocation::Register as Reg;

#[test]
fn optimized_parameters_are_in_abi_registers_at_entry() {
    let exe = o2();
    let (m, f) = function(exe, "add_ints");
    let sym = m.symbols().unwrap().function("add_ints").unwrap().address;
    assert_eq!(f.entry_address, sym);
    assert_eq!(
        f.probe_address, f.entry_address,
        "optimized code: probe at entry"
    );
    assert!(!f.prologue_skipped());
    assert_eq!(
        params(&m, &f),
        [p("a", "int", Reg(5)), p("b", "int", Reg(4))]
    );
    let r = m.resolver().unwrap();
    assert_eq!(r.type_name(f.return_type.as_ref().unwrap()), "int");

    let (m, f) = function(exe, "take_node");
    assert_eq!(params(&m, &f), [p("n", "struct node *", Reg(5))]);

    let (m, f) = function(exe, "take_request");
    assert_eq!(
        params(&m, &f),
        [
            p("r", "struct request *", Reg(5)),
            p("flags", "int", Reg(4))
        ]
    );
    let r = m.resolver().unwrap();
    assert_eq!(r.type_name(f.return_type.as_ref().unwrap()), "long int");

    // rdi, rsi, rdx, rcx, r8, r9, then the stack: the 7th argument is just
    // above the return address, at CFA + 0 = rsp + 8 at the entry.
    let (m, f) = function(exe, "many");
    assert_eq!(
        params(&m, &f),
        [
            p("a1", "long int", Reg(5)),
            p("a2", "long int", Reg(4)),
            p("a3", "long int", Reg(1)),
            p("a4", "long int", Reg(2)),
            p("a5", "long int", Reg(8)),
            p("a6", "long int", Reg(9)),
            p("a7", "long int", mem(7, 8)),
        ]
    );
}

#[test]
fn unoptimized_parameters_are_read_after_the_prologue() {
    // gcc -O0 keeps each parameter in a stack slot (DW_OP_fbreg, frame base
    // DW_OP_call_frame_cfa) that the prologue fills: the probe goes after
    // it, where the CFA is rbp + 16.
    let exe = o0();
    let (m, f) = function(exe, "take_node");
    assert!(f.prologue_skipped());
    assert!(
        f.probe_address > f.entry_address && f.probe_address < f.entry_address + 32,
        "{f:?}"
    );
    // fbreg -24 = rbp + 16 - 24: `mov %rdi,-0x8(%rbp)`.
    assert_eq!(params(&m, &f), [p("n", "struct node *", mem(6, -8))]);

    let (m, f) = function(exe, "add_ints");
    assert_eq!(
        params(&m, &f),
        [p("a", "int", mem(6, -4)), p("b", "int", mem(6, -8))]
    );

    let (m, f) = function(exe, "many");
    let got = params(&m, &f);
    let want: Vec<_> = (1..=6)
        .map(|i| p(&format!("a{i}"), "long int", mem(6, -8 * i)))
        .chain([p("a7", "long int", mem(6, 16))])
        .collect();
    assert_eq!(got, want);

    // Locals are located too.
    let (m, f) = function(exe, "main");
    let r = m.resolver().unwrap();
    let locals: Vec<_> = f
        .locals
        .iter()
        .map(|v| (v.name.as_str(), r.type_name(&v.ty)))
        .collect();
    assert_eq!(
        locals,
        [
            ("req", "struct request".to_string()),
            ("total", "long int".to_string())
        ]
    );
    assert!(f
        .locals
        .iter()
        .all(|v| matches!(v.location, ParamLocation::Memory { base_reg: 6, .. })));
}

/// `x` lives in rdi, then in a callee-saved register across the call to
/// printf, then only as DW_OP_entry_value: a location list.
fn location_list(exe: &Path) {
    let (m, f) = function(exe, "moving");
    assert_eq!(
        params(&m, &f),
        [p("x", "long int", Reg(5)), p("y", "long int", Reg(4))]
    );
    let sym = m.symbols().unwrap().function("moving").unwrap();
    let mut seen = Vec::new();
    for pc in sym.address..sym.address + sym.size {
        let v = m.function_params_at("moving", pc).unwrap();
        let loc = v[0].params[0].location.clone();
        if seen.last() != Some(&loc) {
            seen.push(loc);
        }
    }
    assert_eq!(seen.first(), Some(&Reg(5)), "{seen:?}");
    let callee_saved = [3u16, 6, 12, 13, 14, 15];
    assert!(
        seen.iter()
            .any(|l| matches!(l, Reg(r) if callee_saved.contains(r))),
        "x never moves to a callee-saved register: {seen:?}"
    );
    // DW_OP_entry_value away from the entry cannot be read.
    assert!(
        seen.iter()
            .any(|l| matches!(l, ParamLocation::Unsupported(w) if w.contains("entry_value"))),
        "{seen:?}"
    );
    assert!(m
        .function_params_at("moving", sym.address + sym.size + 64)
        .is_err());
}

#[test]
fn location_lists_dwarf5() {
    location_list(o2());
}

#[test]
fn location_lists_dwarf4() {
    location_list(o2_dwarf4());
}

#[test]
fn clones_are_found_by_their_dwarf_name() {
    // gcc -O2 emits `clone_me.constprop.0` (k == 3 always): the concrete
    // DIE names itself through DW_AT_abstract_origin and keeps k as a
    // constant; parameters come in declaration order.
    let exe = o2();
    let m = Module::open(exe).unwrap();
    assert!(m.symbols().unwrap().function("clone_me").is_none());
    let (m, f) = function(exe, "clone_me");
    assert_eq!(f.name, "clone_me");
    assert_eq!(
        params(&m, &f),
        [
            p("k", "int", ParamLocation::Constant(3)),
            p("n", "struct node *", Reg(5)),
        ]
    );
    assert_eq!(f.probe_address, f.entry_address);
}

#[test]
fn unknown_functions_are_unresolved_names() {
    let m = Module::open(o2()).unwrap();
    let e = m.function_params("no_such_function").unwrap_err();
    assert!(e.is_unresolved_name(), "{e}");
    assert!(e.to_string().contains("'no_such_function'"), "{e}");
    // Patterns and @file.
    let v = m.function_params("take_*@params.c").unwrap();
    let names: Vec<_> = v.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["take_node", "take_request"]);
    assert!(m.function_params("take_node@other.c").is_err());
}

fn p2(script: &str, exe: &Path) -> (i32, String, String) {
    let path = dir().join(format!(
        "s-{}-{}.stp",
        exe.file_name().unwrap().to_string_lossy(),
        script.len()
    ));
    let exe_s = exe.display().to_string();
    std::fs::write(&path, script.replace("BIN", &exe_s)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_stapxx-rs"))
        .arg("-p2")
        .arg(&path)
        .current_dir(root())
        .output()
        .unwrap();
    let path_s = path.display().to_string();
    let clean = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(&path_s, "SCRIPT")
            .replace(&exe_s, "BIN")
    };
    (
        o.status.code().unwrap_or(-1),
        clean(&o.stdout),
        clean(&o.stderr),
    )
}

const SCRIPT: &str = r#"probe process("BIN").function("take_node") {
  printf("%d %d\n", $n->id, $n->next->id)
}
probe process("BIN").function("take_request") {
  printf("%d %d %d\n", $r->start_sec, $r->method, $flags)
}
probe process("BIN").function("many") {
  printf("%d %d %s\n", $a1, $a7, $$parms)
}
probe process("BIN").function("add_ints") {
  printf("%d %d\n", $a, @defined($nope) ? 1 : 2)
}
probe process("BIN").function("take_request").return {
  printf("%d %s\n", $return, $$return)
}
"#;

#[test]
fn p2_optimized() {
    let (code, out, err) = p2(SCRIPT, o2());
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn p2_unoptimized() {
    let (code, out, err) = p2(SCRIPT, o0());
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn p2_errors() {
    let cases = [
        (
            "probe begin { println($x) }\n",
            "SCRIPT:1:23: error: target variable '$x' used outside a function probe (probe begin)",
        ),
        (
            "probe process(\"BIN\").function(\"take_node\") { println($nn) }\n",
            "error: target variable '$nn' not found in function 'take_node'; it has: n",
        ),
        (
            "probe process(\"BIN\").function(\"take_node\") { println($return) }\n",
            "error: '$return' is only available in .return probes",
        ),
        (
            "probe process(\"BIN\").function(\"take_node\") { println(@entry(1)) }\n",
            "error: @entry(...) is only meaningful in a .return probe (process(...).function(...).return, syscall.NAME.return)",
        ),
        (
            "probe process(\"BIN\").function(\"take_node\") { println(&$n) }\n",
            "error: cannot take the address of '$n': it is not in memory here",
        ),
        (
            "probe process(\"BIN\").function(\"take_node\") { println($n->idd) }\n",
            "error: struct node has no member 'idd'; nearest: id",
        ),
        (
            "function f() { return $n }\nprobe process(\"BIN\").function(\"take_node\") { println(f()) }\n",
            "SCRIPT:1:23: error: target variable '$n' used outside a function probe (in a script function)",
        ),
        (
            "probe process(\"BIN\").function(\"no_such\") { println($n) }\n",
            "probe point 'process(\"BIN\").function(\"no_such\")': function 'no_such'",
        ),
    ];
    for (script, want) in cases {
        let (code, _, err) = p2(script, o2());
        assert_eq!(code, 1, "{script}");
        assert!(err.contains(want), "{script}\nwant: {want}\ngot: {err}");
    }
}

/// One probe on two functions, only one of which has `$flags`: as in stap,
/// `@defined($flags)` is decided per function (the handler is resolved
/// once per site), so each runs its own branch.
const DEFINED_PER_SITE: &str = r#"probe process("BIN").function("take_node"), process("BIN").function("take_request") {
  if (@defined($flags)) printf("%s flags=%d\n", ppfunc(), $flags) else printf("%s no flags\n", ppfunc())
}
"#;

fn defined_per_site(exe: &Path) {
    // The same on the functions' returns, where `$flags` is its value at
    // entry (`@entry`), and the entry sites decide.
    let returns = DEFINED_PER_SITE
        .replace("(\"take_node\")", "(\"take_node\").return")
        .replace("(\"take_request\")", "(\"take_request\").return");
    for script in [DEFINED_PER_SITE, returns.as_str()] {
        let (code, out, err) = p2(script, exe);
        assert_eq!(code, 0, "{err}");
        // take_node's handler without a read of $flags, take_request's
        // with it.
        assert!(out.matches("probe process").count() >= 2, "{out}");
        let Some(_bpf) = support::need_bpf() else {
            return;
        };
        let script = script.replace("BIN", &exe.display().to_string());
        // argc is 1: take_request(&req, argc).
        let (status, out, err) =
            support::stapxx(&["-c", &exe.display().to_string(), "-e", &script]);
        assert_eq!(status, 0, "{err}");
        // (The fixture prints lines of its own.)
        let ours: Vec<&str> = out.lines().filter(|l| l.starts_with("take_")).collect();
        assert_eq!(
            ours,
            ["take_node no flags", "take_request flags=1"],
            "{out}{err}"
        );
    }
}

#[test]
fn defined_per_site_optimized() {
    defined_per_site(o2());
}

#[test]
fn defined_per_site_unoptimized() {
    defined_per_site(o0());
}
