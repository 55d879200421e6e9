//! Probe sites from DWARF and the PLT against `tests/fixtures/sites.c`
//! built with `cc -g -O0` and `-g -O2`, checked against what binutils'
//! `objdump` prints about the same files: inlined copies of a function
//! (`function_instances`), statement sites (`statement_sites`) and PLT
//! stubs (`plt_entries`).

mod support;

#[path = "dwarf_sites/oracle.rs"]
mod oracle;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use stapxx::debuginfo::params::{FunctionInfo, ParamLocation};
use stapxx::debuginfo::Module;

fn source() -> PathBuf {
    support::workspace_root().join("tests/fixtures/sites.c")
}

/// The fixture built with `flags`, cached under the target directory and
/// keyed by the source text, so an edited fixture is rebuilt.
fn build(flags: &[&str]) -> PathBuf {
    let text = std::fs::read(source()).expect("read the fixture");
    let mut h = DefaultHasher::new();
    (text, flags).hash(&mut h);
    let out = support::fixtures_dir().join(format!("sites-{}-{:016x}", flags.join(""), h.finish()));
    if !out.exists() {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        support::must(
            Command::new("cc")
                .args(flags)
                .arg(source())
                .arg("-o")
                .arg(&tmp),
        );
        std::fs::rename(&tmp, &out).expect("move the build into place");
    }
    out
}

fn o0() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build(&["-g", "-O0"]))
}

fn o2() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build(&["-g", "-O2"]))
}

/// What objdump's text for a location expression means as a
/// [`ParamLocation`]; `None` for expressions the translator is expected
/// to refuse (implicit pointers, entry values away from the entry, ...).
fn expected_location(expr: &str) -> Option<ParamLocation> {
    use stapxx::debuginfo::locexpr::{LocExpr as E, LocOp as O};
    let ops: Vec<&str> = expr.split("; ").map(str::trim).collect();
    let reg = |op: &str, prefix: &str| -> Option<u16> {
        op.strip_prefix(prefix)?
            .split([' ', ':'])
            .next()?
            .parse()
            .ok()
    };
    let num = |op: &str| -> Option<i64> { op.rsplit_once(": ")?.1.trim().parse().ok() };
    if let [op] = ops.as_slice() {
        if let Some(r) = reg(op, "DW_OP_reg") {
            return Some(ParamLocation::Register(r));
        }
    }
    // objdump's text run on a stack of symbolic values: what the
    // location is, written the way DWARF says it (offsets added to a
    // register or an address stay offsets; nothing else is folded).
    let mut st: Vec<E> = Vec::new();
    let mut value = false;
    for op in &ops {
        let name = op.split([' ', ':']).next()?;
        let binop = match name {
            "DW_OP_mul" => Some(O::Mul),
            "DW_OP_div" => Some(O::Div),
            "DW_OP_mod" => Some(O::Mod),
            "DW_OP_and" => Some(O::And),
            "DW_OP_or" => Some(O::Or),
            "DW_OP_xor" => Some(O::Xor),
            "DW_OP_shl" => Some(O::Shl),
            "DW_OP_shr" => Some(O::Shr),
            "DW_OP_shra" => Some(O::Shra),
            "DW_OP_plus" => Some(O::Add),
            "DW_OP_minus" => Some(O::Sub),
            _ => None,
        };
        if let Some(o) = binop {
            let (b, a) = (st.pop()?, st.pop()?);
            st.push(match (o, a, b) {
                (O::Add, E::Reg(r, x), E::Const(n)) => E::Reg(r, x + n),
                (O::Sub, E::Reg(r, x), E::Const(n)) => E::Reg(r, x - n),
                (O::Add, E::Const(m), E::Const(n)) => E::Const(m + n),
                (O::Sub, E::Const(m), E::Const(n)) => E::Const(m - n),
                (o, a, b) => E::Bin(o, Box::new(a), Box::new(b)),
            });
            continue;
        }
        match name {
            _ if name.starts_with("DW_OP_breg") => {
                st.push(E::Reg(reg(op, "DW_OP_breg")?, num(op)?))
            }
            _ if name.starts_with("DW_OP_lit") => st.push(E::Const(name[9..].parse().ok()?)),
            _ if name.starts_with("DW_OP_const") => st.push(E::Const(num(op)?)),
            "DW_OP_addr" => st.push(E::Addr(
                u64::from_str_radix(op.rsplit_once(": ")?.1.trim(), 16).ok()?,
            )),
            "DW_OP_plus_uconst" => {
                let n = num(op)?;
                let top = st.pop()?;
                st.push(match top {
                    E::Reg(r, x) => E::Reg(r, x + n),
                    E::Addr(a) => E::Addr(a + n as u64),
                    E::Const(m) => E::Const(m + n),
                    e => E::Bin(O::Add, Box::new(e), Box::new(E::Const(n))),
                });
            }
            "DW_OP_dup" => {
                let top = st.last()?.clone();
                st.push(top);
            }
            "DW_OP_drop" => {
                st.pop()?;
            }
            "DW_OP_neg" => {
                let e = st.pop()?;
                st.push(E::Neg(Box::new(e)));
            }
            "DW_OP_not" => {
                let e = st.pop()?;
                st.push(E::Not(Box::new(e)));
            }
            "DW_OP_deref" => {
                let e = st.pop()?;
                st.push(E::Deref(8, Box::new(e)));
            }
            "DW_OP_deref_size" => {
                let e = st.pop()?;
                st.push(E::Deref(num(op)? as u8, Box::new(e)));
            }
            "DW_OP_stack_value" => value = true,
            // Entry values, pieces, implicit pointers...: not read.
            _ => return None,
        }
    }
    let top = st.pop()?;
    Some(match (value, top) {
        (true, E::Reg(r, 0)) => ParamLocation::Register(r),
        (true, E::Reg(r, offset)) => ParamLocation::Computed {
            base_reg: r,
            offset,
        },
        (true, E::Const(c)) => ParamLocation::Constant(c),
        (true, e) => ParamLocation::ValueOf(e),
        (false, E::Reg(r, offset)) => ParamLocation::Memory {
            base_reg: r,
            offset,
        },
        (false, E::Addr(a)) => ParamLocation::Address(a),
        (false, e) => ParamLocation::MemoryAt(e),
    })
}

/// The location objdump gives for the variable DIE `var` at `pc`.
fn oracle_location(
    var: Option<&oracle::Die>,
    lists: &std::collections::BTreeMap<u64, Vec<oracle::LocEntry>>,
    pc: u64,
) -> Option<ParamLocation> {
    let Some(var) = var else {
        return Some(ParamLocation::OptimizedOut);
    };
    if let Some(c) = var.attr("DW_AT_const_value") {
        return c.parse().ok().map(ParamLocation::Constant);
    }
    let Some(loc) = var.attr("DW_AT_location") else {
        return Some(ParamLocation::OptimizedOut);
    };
    if loc.ends_with("(location list)") {
        let off = var.number("DW_AT_location").unwrap();
        let list = lists
            .get(&off)
            .unwrap_or_else(|| panic!("no list at {off:#x}"));
        return match list.iter().find(|e| e.begin <= pc && pc < e.end) {
            Some(e) => expected_location(&e.expr),
            None => Some(ParamLocation::OptimizedOut),
        };
    }
    // `1 byte block: 55 	(DW_OP_reg5 (rdi))`
    let expr = loc.split_once('(').map(|(_, e)| e).unwrap_or(loc);
    expected_location(expr.strip_suffix(')').unwrap_or(expr))
}

/// (entry pc, DIE offset) of each inlined copy of `name` per objdump.
fn oracle_inlined(dies: &[oracle::Die], name: &str) -> Vec<(u64, u64)> {
    let abs: Vec<u64> = dies
        .iter()
        .filter(|d| d.tag == "DW_TAG_subprogram" && d.name() == Some(name))
        .map(|d| d.offset)
        .collect();
    let mut out: Vec<(u64, u64)> = dies
        .iter()
        .filter(|d| d.tag == "DW_TAG_inlined_subroutine")
        .filter(|d| {
            d.reference("DW_AT_abstract_origin")
                .is_some_and(|o| abs.contains(&o))
        })
        .map(|d| {
            let pc = d
                .number("DW_AT_entry_pc")
                .or_else(|| d.number("DW_AT_low_pc"))
                .unwrap_or_else(|| panic!("inlined copy without entry pc: {d:?}"));
            (pc, d.offset)
        })
        .collect();
    out.sort_unstable();
    out
}

fn instances(m: &Module, spec: &str) -> (Vec<FunctionInfo>, Vec<FunctionInfo>) {
    m.function_instances(spec)
        .unwrap()
        .into_iter()
        .partition(|f| !f.inlined)
}

#[test]
fn inlined_copies_match_objdump_at_o2() {
    let exe = o2();
    let m = Module::open(exe).unwrap();
    let dies = oracle::dies(exe);
    let lists = oracle::location_lists(exe);

    // scale: one call in main, two in twice (itself inlined into main),
    // and the out-of-line copy whose address scale_ptr holds.
    let (outline, inl) = instances(&m, "scale");
    let want = oracle_inlined(&dies, "scale");
    assert_eq!(want.len(), 3, "the fixture should inline scale 3 times");
    let got: Vec<(u64, u64)> = inl
        .iter()
        .map(|f| (f.entry_address, f.die.offset as u64))
        .collect();
    assert_eq!(got, want);
    for f in &inl {
        assert_eq!(f.name, "scale");
        assert_eq!(f.probe_address, f.entry_address);
        assert!(f.no_probe.is_none(), "{f:?}");
        assert!(f.call_line.is_some());
    }
    let sym = m.symbols().unwrap().function("scale").unwrap().address;
    assert_eq!(outline.len(), 1);
    assert_eq!(outline[0].entry_address, sym);
    assert!(!outline[0].inlined);
    // function_params keeps to out-of-line definitions.
    let plain = m.function_params("scale").unwrap();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].entry_address, sym);

    // twice is only inlined; two of scale's copies are nested in it.
    let (t_out, t_inl) = instances(&m, "twice");
    assert!(t_out.is_empty());
    let t_want = oracle_inlined(&dies, "twice");
    assert_eq!(t_want.len(), 1);
    assert_eq!(t_inl.len(), 1);
    assert_eq!(t_inl[0].entry_address, t_want[0].0);
    let ti = dies.iter().position(|d| d.offset == t_want[0].1).unwrap();
    let depth = dies[ti].depth;
    let inside: Vec<u64> = dies[ti + 1..]
        .iter()
        .take_while(|d| d.depth > depth)
        .map(|d| d.offset)
        .collect();
    let nested = inl
        .iter()
        .filter(|f| inside.contains(&(f.die.offset as u64)))
        .count();
    assert_eq!(nested, 2, "scale copies nested in twice");

    // Each copy's parameters, in declaration order, where objdump's
    // location lists put them at the entry pc.
    let mut marks = Vec::new();
    for f in &inl {
        let names: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["factor", "tag", "mark"]);
        let i = dies
            .iter()
            .position(|d| d.offset == f.die.offset as u64)
            .unwrap();
        let kids = oracle::children(&dies, i);
        for p in &f.params {
            let abs = dies
                .iter()
                .find(|d| d.tag == "DW_TAG_formal_parameter" && d.name() == Some(&p.name))
                .unwrap()
                .offset;
            let var = kids
                .iter()
                .find(|d| d.reference("DW_AT_abstract_origin") == Some(abs))
                .copied();
            match oracle_location(var, &lists, f.entry_address) {
                Some(want) => assert_eq!(p.location, want, "{} at {:#x}", p.name, f.entry_address),
                None => assert!(
                    matches!(p.location, ParamLocation::Unsupported(_)),
                    "{} at {:#x}: {:?}",
                    p.name,
                    f.entry_address,
                    p.location
                ),
            }
        }
        if let ParamLocation::Constant(c) = f.params[2].location {
            marks.push(c as u8 as char);
        }
        // `tag` is a string literal: gcc describes it by an implicit
        // pointer, which the translator cannot read.
        assert!(matches!(
            f.params[1].location,
            ParamLocation::Unsupported(_)
        ));
    }
    marks.sort_unstable();
    assert_eq!(marks, ['a', 'm', 't'], "the constant `mark` of each call");
    // The out-of-line copy gets its arguments in the ABI registers.
    let locs: Vec<_> = outline[0]
        .params
        .iter()
        .map(|p| p.location.clone())
        .collect();
    use ParamLocation::Register as Reg;
    assert_eq!(locs, [Reg(5), Reg(4), Reg(1)]);
}

#[test]
fn nothing_is_inlined_at_o0() {
    let exe = o0();
    let m = Module::open(exe).unwrap();
    assert!(oracle_inlined(&oracle::dies(exe), "scale").is_empty());
    for name in ["scale", "twice", "walk"] {
        let all = m.function_instances(name).unwrap();
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        let f = &all[0];
        assert!(!f.inlined);
        let sym = m.symbols().unwrap().function(name).unwrap().address;
        assert_eq!(f.entry_address, sym);
        // -O0: after the prologue, parameters in their stack slots.
        assert!(f.prologue_skipped(), "{name}");
        assert!(f
            .params
            .iter()
            .all(|p| matches!(p.location, ParamLocation::Memory { base_reg: 6, .. })));
        assert_eq!(m.function_params(name).unwrap(), all);
    }
}

#[test]
fn unknown_functions_name_the_nearest() {
    let m = Module::open(o2()).unwrap();
    let e = m.function_instances("scal").unwrap_err();
    assert!(e.is_unresolved_name());
    let msg = e.to_string();
    assert!(
        msg.contains("'scal'") && msg.contains("nearest: scale"),
        "{msg}"
    );
    // A compile-unit pattern filters copies too.
    assert!(m.function_instances("scale@other.c").is_err());
    assert_eq!(m.function_instances("scale@sites.c").unwrap().len(), 4);
    assert_eq!(m.function_instances("sc*").unwrap().len(), 4);
}

/// The line of `tests/fixtures/sites.c` carrying `LINE:name`.
fn marker(name: &str) -> u64 {
    let text = std::fs::read_to_string(source()).unwrap();
    let tag = format!("LINE:{name}");
    let hits: Vec<u64> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.split_whitespace().any(|w| w == tag))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(hits.len(), 1, "marker {tag}: {hits:?}");
    hits[0]
}

/// Addresses where objdump's decoded line table has an `is_stmt` row of
/// `line`, sorted.
fn stmt_rows(exe: &Path, line: u64) -> Vec<u64> {
    let mut v: Vec<u64> = oracle::decoded_lines(exe, "sites.c")
        .into_iter()
        .filter(|r| r.is_stmt && r.line == line)
        .map(|r| r.address)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn local_names(f: &FunctionInfo) -> Vec<&str> {
    let mut v: Vec<&str> = f.locals.iter().map(|l| l.name.as_str()).collect();
    v.sort_unstable();
    v
}

/// The loop of `walk` at both levels: one site per line (walk is one
/// out-of-line function), at the line's lowest statement address, with
/// the locals of the blocks holding it.
fn statements_in_walk(exe: &Path, optimized: bool) {
    let m = Module::open(exe).unwrap();
    let cases = [
        ("loop_body", vec!["i", "sq", "total"]),
        ("odd_block", vec!["i", "odd", "sq", "total"]),
        ("walk_return", vec!["total"]),
    ];
    for (name, locals) in cases {
        let line = marker(name);
        for spec in [
            format!("walk@sites.c:{line}"),
            format!("*@sites.c:{line}"),
            format!("w*@fixtures/sites.c:{line}"),
        ] {
            let sites = m.statement_sites(&spec).unwrap();
            assert_eq!(sites.len(), 1, "{spec}: {sites:?}");
            let s = &sites[0];
            let rows = stmt_rows(exe, line);
            assert_eq!(s.address, rows[0], "{spec}: lowest statement row");
            assert_eq!(s.line, Some(line));
            assert!(s.file.as_deref().unwrap().ends_with("/sites.c"));
            let f = s.function.as_ref().unwrap();
            assert_eq!(f.name, "walk");
            assert!(!f.inlined);
            assert_eq!(f.probe_address, s.address);
            assert_eq!(local_names(f), locals, "{spec}");
            assert_eq!(f.params.len(), 1, "{spec}");
            assert_eq!(f.params[0].name, "count");
            if optimized {
                // Each variable where objdump's location lists put it.
                let dies = oracle::dies(exe);
                let lists = oracle::location_lists(exe);
                for v in f.params.iter().chain(&f.locals) {
                    let die = walk_var(&dies, &v.name);
                    match oracle_location(Some(die), &lists, s.address) {
                        Some(want) => assert_eq!(v.location, want, "{spec}: {}", v.name),
                        None => assert!(
                            matches!(v.location, ParamLocation::Unsupported(_)),
                            "{spec}: {}: {:?}",
                            v.name,
                            v.location
                        ),
                    }
                }
            } else {
                // -O0: every variable lives in its stack slot.
                assert!(
                    f.params
                        .iter()
                        .chain(&f.locals)
                        .all(|v| matches!(v.location, ParamLocation::Memory { base_reg: 6, .. })),
                    "{spec}: {f:?}"
                );
            }
            // The same address given as a number (`.absolute`).
            let abs = m.statement_sites(&format!("{:#x}", s.address)).unwrap();
            assert_eq!(abs, sites, "{spec}");
        }
    }
    // A range: each line with code once, lines without code skipped.
    let (a, b) = (marker("loop_body"), marker("walk_return"));
    let sites = m.statement_sites(&format!("walk@sites.c:{a}-{b}")).unwrap();
    let mut lines: Vec<u64> = sites.iter().map(|s| s.line.unwrap()).collect();
    lines.sort_unstable();
    let want: Vec<u64> = (a..=b).filter(|&l| !stmt_rows(exe, l).is_empty()).collect();
    assert_eq!(lines, want);
    for s in &sites {
        assert_eq!(s.address, stmt_rows(exe, s.line.unwrap())[0]);
    }
}

/// The DIE of walk's parameter or local `name` (names are unique there).
fn walk_var<'d>(dies: &'d [oracle::Die], name: &str) -> &'d oracle::Die {
    let w = dies
        .iter()
        .position(|d| d.tag == "DW_TAG_subprogram" && d.name() == Some("walk"))
        .unwrap();
    let depth = dies[w].depth;
    dies[w + 1..]
        .iter()
        .take_while(|d| d.depth > depth)
        .find(|d| d.name() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in walk"))
}

#[test]
fn statements_o0() {
    statements_in_walk(o0(), false);
}

#[test]
fn statements_o2() {
    statements_in_walk(o2(), true);
}

#[test]
fn statements_in_inlined_copies() {
    // scale's body at -O2: a site in the out-of-line copy and one in each
    // inlined copy (gcc starts each copy with a statement row of it).
    let exe = o2();
    let m = Module::open(exe).unwrap();
    let line = marker("scale_body");
    let sites = m.statement_sites(&format!("*@sites.c:{line}")).unwrap();
    let addrs: Vec<u64> = sites.iter().map(|s| s.address).collect();
    assert_eq!(addrs, stmt_rows(exe, line));
    let all = m.function_instances("scale").unwrap();
    assert_eq!(sites.len(), all.len());
    for s in &sites {
        let f = s.function.as_ref().unwrap();
        assert_eq!(f.name, "scale");
        let inst = all.iter().find(|i| i.die == f.die).unwrap();
        assert_eq!(f.inlined, inst.inlined);
        let names: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["factor", "tag", "mark"]);
        if f.inlined {
            // The copies begin at this line: same place as the probe.
            assert_eq!(s.address, inst.entry_address);
            assert_eq!(f.params, inst.params);
        }
    }
    // Restricting the function to the caller keeps the copies in main.
    let in_main = m.statement_sites(&format!("main@sites.c:{line}")).unwrap();
    assert_eq!(in_main.len(), 1, "{in_main:?}");
    assert_eq!(in_main[0].function.as_ref().unwrap().name, "main");

    // At -O0 the one copy is the out-of-line one.
    let sites = m_o0_sites(line);
    assert_eq!(sites.len(), 1);
    assert_eq!(sites[0].address, stmt_rows(o0(), line)[0]);
}

fn m_o0_sites(line: u64) -> Vec<stapxx::debuginfo::statements::StatementSite> {
    Module::open(o0())
        .unwrap()
        .statement_sites(&format!("*@sites.c:{line}"))
        .unwrap()
}

#[test]
fn statement_errors() {
    for exe in [o0(), o2()] {
        let m = Module::open(exe).unwrap();
        let line = marker("no_code");
        let e = m.statement_sites(&format!("*@sites.c:{line}")).unwrap_err();
        let msg = e.to_string();
        assert!(e.is_unresolved_name(), "{msg}");
        let near = msg
            .split("nearest lines with code: ")
            .nth(1)
            .unwrap_or_else(|| panic!("{msg}"));
        let near: Vec<u64> = near
            .split(|c: char| !c.is_ascii_digit())
            .take_while(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(!near.is_empty(), "{msg}");
        for l in near {
            assert!(!stmt_rows(exe, l).is_empty(), "line {l} has no code: {msg}");
        }
        let e = m.statement_sites("*@nosuch.c:3").unwrap_err().to_string();
        assert!(
            e.contains("'nosuch.c'") && e.contains("nearest: sites.c"),
            "{e}"
        );
        let walk_line = marker("loop_body");
        assert!(m
            .statement_sites(&format!("scale@sites.c:{walk_line}"))
            .is_err());
        assert!(m.statement_sites("walk@sites.c").is_err());
    }
}

/// The fixture with the IBT PLT layout: calls go through `.plt.sec`.
fn ibt() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| build(&["-g", "-O2", "-fcf-protection=full", "-Wl,-z,ibtplt"]))
}

/// Every stub against objdump's `name@plt` labels of the stub sections.
fn plt_matches_objdump(exe: &Path, calls_in: &str) {
    let m = Module::open(exe).unwrap();
    let entries = m.plt_entries().unwrap();
    let mut want = Vec::new();
    for section in [".plt", ".plt.sec", ".plt.got"] {
        for (name, addr) in oracle::plt_labels(exe, section) {
            want.push((addr, name, section.to_string()));
        }
    }
    want.sort();
    let got: Vec<(u64, String, String)> = entries
        .iter()
        .map(|e| (e.address, e.name.clone(), e.section.clone()))
        .collect();
    assert_eq!(got, want, "{}", exe.display());
    // The fixture's own calls go through `calls_in`.
    for name in ["getpid", "puts", "printf"] {
        let e = entries.iter().find(|e| e.name == name).unwrap();
        assert_eq!(e.section, calls_in, "{name}");
    }
    // strlen is only called through a pointer: a GOT slot, no stub.
    assert!(entries.iter().all(|e| e.name != "strlen"));
    // File offsets: the stub's bytes in the file.
    let bytes = std::fs::read(exe).unwrap();
    let segs = m.elf().load_segments();
    for e in &entries {
        assert_eq!(
            stapxx::debuginfo::vaddr_to_file_offset(segs, e.address),
            Some(e.file_offset)
        );
        let at = e.file_offset as usize;
        assert!(
            bytes[at..at + 16].windows(2).any(|w| w == [0xff, 0x25]),
            "{}: no jump through the GOT at offset {at:#x}",
            e.name
        );
    }
    // Patterns.
    let p = m.plt_matching("get*").unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].name, "getpid");
    assert_eq!(m.plt_matching("*").unwrap(), entries);
    let e = m.plt_matching("getpidd").unwrap_err().to_string();
    assert!(e.contains("nearest: getpid"), "{e}");
}

#[test]
fn plt_classic_layout() {
    plt_matches_objdump(o2(), ".plt");
    plt_matches_objdump(o0(), ".plt");
}

#[test]
fn plt_ibt_layout() {
    let exe = ibt();
    assert!(
        !oracle::plt_labels(exe, ".plt.sec").is_empty(),
        "the linker made no .plt.sec"
    );
    plt_matches_objdump(exe, ".plt.sec");
}
