//! `Module::callees` (`.function("f").callee("g")`, `.callees`) against
//! `tests/fixtures/callees.c` at -O0 and -O2, checked with binutils:
//! `objdump --dwarf=info` for the call-site entries gcc wrote (their
//! return pc and origin) and the inlined copies, `objdump -d` for the call
//! instructions those return addresses follow.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use stapxx::debuginfo::callsites::{Callee, FoundBy};
use stapxx::debuginfo::Module;

/// `-O0`, `-O2`, or `-gdwarf-4` (at -O2).
fn exe(opt: &str) -> std::path::PathBuf {
    let flags: &[&str] = match opt {
        "-gdwarf-4" => &["-gdwarf-4", "-O2"],
        o => &[o],
    };
    support::c_fixture("callees.c", &format!("callees{opt}"), flags)
}

/// A `call` in `objdump -d`: where it returns to, its target and the
/// target's name (`getpid@plt` for a PLT stub).
#[derive(Debug, Clone, PartialEq)]
struct Insn {
    ret: u64,
    target: u64,
    name: String,
}

/// The direct calls (`call ADDR <name>`) of function `func`, in address order.
fn objdump_calls(exe: &Path, func: &str) -> Vec<Insn> {
    let text = support::must(
        Command::new("objdump")
            .args(["-d", "--no-show-raw-insn"])
            .arg(exe),
    );
    let head = format!("<{func}>:");
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.ends_with(&head))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let addr = |l: &str| u64::from_str_radix(l.trim().split(':').next().unwrap(), 16).unwrap();
    let mut out = Vec::new();
    for (i, l) in body.iter().enumerate() {
        let insn = l.split('\t').nth(1).unwrap_or("");
        if let Some(rest) = insn.strip_prefix("call") {
            let mut w = rest.split_whitespace();
            // `call *%rdx`: through a pointer, no target to compare.
            let Ok(target) = u64::from_str_radix(w.next().unwrap(), 16) else {
                continue;
            };
            let name = w.next().unwrap().trim_matches(|c| c == '<' || c == '>');
            out.push(Insn {
                ret: addr(body[i + 1]),
                target,
                name: name.to_string(),
            });
        }
    }
    assert!(!body.is_empty(), "{func} not in objdump -d");
    out
}

/// One DIE of `objdump --dwarf=info`: depth, tag and attributes.
#[derive(Debug)]
struct Die {
    depth: u32,
    offset: u64,
    tag: String,
    attrs: HashMap<String, String>,
}

fn dies(exe: &Path) -> Vec<Die> {
    let text = support::must(Command::new("objdump").arg("--dwarf=info").arg(exe));
    let mut out: Vec<Die> = Vec::new();
    for l in text.lines() {
        let t = l.trim_start();
        if let Some(rest) = t.strip_prefix('<') {
            // " <2><103>: Abbrev Number: 3 (DW_TAG_call_site)"
            if let Some((depth, rest)) = rest.split_once("><") {
                if let Some((off, rest)) = rest.split_once(">: Abbrev Number:") {
                    let tag = rest.split('(').nth(1).map(|s| s.trim_end_matches(')'));
                    out.push(Die {
                        depth: depth.parse().unwrap(),
                        offset: u64::from_str_radix(off, 16).unwrap(),
                        tag: tag.unwrap_or("").to_string(),
                        attrs: HashMap::new(),
                    });
                    continue;
                }
            }
            // "<104>   DW_AT_call_return_pc: 0x10a3"
            if let (Some(d), Some((_, attr))) = (out.last_mut(), rest.split_once('>')) {
                if let Some((k, v)) = attr.trim().split_once(':') {
                    d.attrs.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
    }
    out
}

fn hex(v: &str) -> u64 {
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
}

/// `<0x1a6>` -> 0x1a6.
fn die_ref(v: &str) -> u64 {
    hex(v.trim_matches(|c| c == '<' || c == '>'))
}

/// The name a DIE gives (indirect strings: the text after the last `: `).
fn die_name(all: &[Die], offset: u64) -> String {
    let d = all.iter().find(|d| d.offset == offset).unwrap();
    match d.attrs.get("DW_AT_name") {
        Some(n) => n.rsplit(": ").next().unwrap().to_string(),
        None => die_name(all, die_ref(&d.attrs["DW_AT_abstract_origin"])),
    }
}

/// The children (any depth) of the subprogram named `func` that have tag `tag`.
fn dies_in<'a>(all: &'a [Die], func: &str, tag: &str) -> Vec<&'a Die> {
    let i = all
        .iter()
        .position(|d| {
            d.tag == "DW_TAG_subprogram"
                && d.attrs.contains_key("DW_AT_low_pc")
                && d.attrs.get("DW_AT_name").is_some_and(|n| n.ends_with(func))
        })
        .unwrap_or_else(|| panic!("no definition of {func}"));
    let depth = all[i].depth;
    all[i + 1..]
        .iter()
        .take_while(|d| d.depth > depth)
        .filter(|d| d.tag == tag)
        .collect()
}

/// (callee name, return pc) of the direct call-site entries of `func`.
fn oracle_sites(all: &[Die], func: &str) -> Vec<(String, u64)> {
    dies_in(all, func, "DW_TAG_call_site")
        .iter()
        .filter(|d| d.attrs.contains_key("DW_AT_call_origin"))
        .map(|d| {
            let origin = die_ref(&d.attrs["DW_AT_call_origin"]);
            (die_name(all, origin), hex(&d.attrs["DW_AT_call_return_pc"]))
        })
        .collect()
}

/// (callee, return address, call target, definition entry) of the calls.
fn calls(v: &[Callee]) -> Vec<(String, u64, Option<u64>, Option<u64>)> {
    v.iter()
        .filter_map(|c| match c {
            Callee::Call {
                callee,
                call_return,
                call_target,
                callee_entry,
                ..
            } => Some((
                callee.clone(),
                *call_return,
                *call_target,
                callee_entry.as_ref().map(|f| f.entry_address),
            )),
            Callee::Inlined(_) => None,
        })
        .collect()
}

fn found_by(v: &[Callee]) -> Vec<FoundBy> {
    v.iter()
        .filter_map(|c| match c {
            Callee::Call { found_by, .. } => Some(*found_by),
            Callee::Inlined(_) => None,
        })
        .collect()
}

/// Calls of `insns` named `name` (PLT stubs by their function) as
/// `calls` gives them; `entry`: the definition expected.
fn expected(
    insns: &[Insn],
    name: &str,
    entry: Option<u64>,
) -> Vec<(String, u64, Option<u64>, Option<u64>)> {
    insns
        .iter()
        .filter(|i| i.name.trim_end_matches("@plt") == name)
        .map(|i| (name.to_string(), i.ret, Some(i.target), entry))
        .collect()
}

#[test]
fn o2_call_sites_match_dwarf_and_code() {
    let exe = exe("-O2");
    let m = Module::open(&exe).unwrap();
    let all = dies(&exe);
    let insns = objdump_calls(&exe, "caller");
    let use_pool = m.symbols().unwrap().function("use_pool").unwrap().address;

    // The oracle: gcc described each call of caller(), and each return pc
    // follows a call instruction to that function.
    let sites = oracle_sites(&all, "caller");
    let mut names: Vec<&str> = sites.iter().map(|s| s.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["getpid", "use_pool", "use_pool"], "{sites:?}");
    for (name, ret) in &sites {
        let i = insns
            .iter()
            .find(|i| i.ret == *ret)
            .expect("a call before each return pc");
        assert_eq!(i.name.trim_end_matches("@plt"), name);
    }

    let got = m.callees("caller", "use_pool").unwrap();
    assert_eq!(calls(&got), expected(&insns, "use_pool", Some(use_pool)));
    assert_eq!(found_by(&got), [FoundBy::CallSiteEntry; 2]);
    let Callee::Call {
        callee_entry: Some(f),
        caller,
        tail_call,
        ..
    } = &got[0]
    else {
        panic!("{got:?}")
    };
    assert_eq!((caller.as_str(), *tail_call), ("caller", false));
    let params: Vec<&str> = f.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, ["pool", "n"]);

    // other()'s call of use_pool is not caller's: the return addresses
    // tell them apart.
    let other = m.callees("other", "use_pool").unwrap();
    let other_sites = oracle_sites(&all, "other");
    // The call through `hook` has a call-site entry with no origin.
    let through_pointer = dies_in(&all, "other", "DW_TAG_call_site")
        .iter()
        .filter(|d| !d.attrs.contains_key("DW_AT_call_origin"))
        .count();
    assert_eq!(through_pointer, 1);
    let sites = m.callee_sites("other", "*").unwrap();
    assert_eq!(sites.indirect_calls, through_pointer);
    assert_eq!(calls(&sites.callees), calls(&other));
    assert_eq!(
        calls(&other),
        vec![(
            "use_pool".to_string(),
            other_sites[0].1,
            Some(use_pool),
            Some(use_pool)
        )]
    );
    assert!(calls(&got).iter().all(|c| c.1 != other_sites[0].1));

    // .callees: getpid has no definition here and is reached through its
    // PLT stub; twice() is inlined at the entry pc DWARF gives.
    let every = m.callees("caller", "*").unwrap();
    let mut want = expected(&insns, "getpid", None);
    want.extend(expected(&insns, "use_pool", Some(use_pool)));
    want.sort_by_key(|c| c.1);
    assert_eq!(calls(&every), want);
    let inl = dies_in(&all, "caller", "DW_TAG_inlined_subroutine");
    assert_eq!(inl.len(), 1);
    let inlined: Vec<(String, u64)> = every
        .iter()
        .filter_map(|c| match c {
            Callee::Inlined(f) => {
                assert_eq!(f.no_probe, None);
                assert!(f.inlined);
                Some((f.name.clone(), f.entry_address))
            }
            Callee::Call { .. } => None,
        })
        .collect();
    assert_eq!(
        inlined,
        vec![("twice".to_string(), hex(&inl[0].attrs["DW_AT_entry_pc"]))]
    );
}

#[test]
fn o0_calls_found_in_machine_code() {
    let exe = exe("-O0");
    let m = Module::open(&exe).unwrap();
    let all = dies(&exe);
    // gcc 12 writes no call-site entries at -O0 (no variable tracking).
    assert!(oracle_sites(&all, "caller").is_empty());
    let insns = objdump_calls(&exe, "caller");
    let entry = |f: &str| m.symbols().unwrap().function(f).unwrap().address;

    let got = m.callees("caller", "use_pool").unwrap();
    assert_eq!(
        calls(&got),
        expected(&insns, "use_pool", Some(entry("use_pool")))
    );
    assert_eq!(found_by(&got), [FoundBy::MachineCode; 2]);

    let every = m.callees("caller", "*").unwrap();
    let mut want = Vec::new();
    for i in &insns {
        let name = i.name.trim_end_matches("@plt");
        let def = (!i.name.ends_with("@plt")).then(|| entry(name));
        want.push((name.to_string(), i.ret, Some(i.target), def));
    }
    let names: Vec<&str> = want.iter().map(|w| w.0.as_str()).collect();
    assert_eq!(names, ["use_pool", "twice", "use_pool", "getpid"]);
    assert_eq!(calls(&every), want);

    let other = m.callees("other", "use_pool").unwrap();
    assert_eq!(
        calls(&other),
        expected(
            &objdump_calls(&exe, "other"),
            "use_pool",
            Some(entry("use_pool"))
        )
    );
}

/// DWARF 4: gcc's `DW_TAG_GNU_call_site`, with the return address in
/// `DW_AT_low_pc` and the callee in `DW_AT_abstract_origin`.
#[test]
fn dwarf4_gnu_call_sites() {
    let exe = exe("-gdwarf-4");
    let m = Module::open(&exe).unwrap();
    let all = dies(&exe);
    let gnu: Vec<(String, u64)> = dies_in(&all, "caller", "DW_TAG_GNU_call_site")
        .iter()
        .filter(|d| d.attrs.contains_key("DW_AT_abstract_origin"))
        .map(|d| {
            let origin = die_ref(&d.attrs["DW_AT_abstract_origin"]);
            (die_name(&all, origin), hex(&d.attrs["DW_AT_low_pc"]))
        })
        .filter(|s| s.0 == "use_pool")
        .collect();
    assert_eq!(gnu.len(), 2, "{gnu:?}");
    let use_pool = m.symbols().unwrap().function("use_pool").unwrap().address;
    let got = m.callees("caller", "use_pool").unwrap();
    let want: Vec<_> = gnu
        .iter()
        .map(|(n, ret)| (n.clone(), *ret, Some(use_pool), Some(use_pool)))
        .collect();
    assert_eq!(calls(&got), want);
    assert_eq!(found_by(&got), [FoundBy::CallSiteEntry; 2]);
    assert_eq!(
        calls(&got),
        expected(&objdump_calls(&exe, "caller"), "use_pool", Some(use_pool))
    );
}

#[test]
fn errors_name_what_there_is() {
    for opt in ["-O0", "-O2"] {
        let m = Module::open(exe(opt)).unwrap();
        let e = m.callees("calller", "*").unwrap_err().to_string();
        assert!(e.contains("nearest: caller"), "{opt}: {e}");
        let e = m.callees("caller", "use_poool").unwrap_err().to_string();
        assert!(e.contains("it calls: use_pool, "), "{opt}: {e}");
        assert!(e.contains("getpid") && e.contains("twice"), "{opt}: {e}");
    }
}
