//! Where `process(..).function("*")` puts its probes, against SystemTap's
//! own pass 2 on the same files: `stap -p2` prints each probe's address
//! (`/* pc=.dynamic+0xN */`), `stapxx-rs -p2` each site's file offset.
//! The sets must be equal: the out-of-line definitions (after the prologue
//! at -O0, at the entry at -O2), every inlined copy at its entry pc (those
//! whose code gcc folded into the caller too), a function split into hot
//! and cold parts at the hot part, a `.constprop` clone under its
//! function's name, no `.part` tail as an entry, and the functions DWARF
//! does not describe (`_start`, `f.cold`) from the symbol table.
//!
//! stap runs on a stub kernel build tree (`support::stap`). Files: `tests/fixtures/sites.c` and
//! `split.c` at -O0 and -O2, and the test suite's LuaJIT (GC64 and not),
//! about 5000 probe sites each.

mod support;

// Only its DIE reader is used here.
#[allow(dead_code)]
#[path = "dwarf_sites/oracle.rs"]
mod oracle;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use object::{Object, ObjectSegment};
use support::luajit::{self, Variant};

/// File offsets of the probes `stap -p2` derives for `point`, each with
/// the function stap names it by.
fn stap_sites(exe: &Path, point: &str) -> BTreeMap<u64, String> {
    let script = format!(
        "probe process(\"{}\").{point} {{ print(1) }}",
        exe.display()
    );
    let out = support::stap::stap(2, &script);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stap -p2 failed on {point} of {}:\n{}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(exe).expect("read the file");
    let elf = object::File::parse(&*data).expect("parse ELF");
    text.lines()
        .filter_map(|l| {
            let name = l.split("(\"").nth(2)?.split(['@', '"']).next()?.to_string();
            Some((l.split("pc=.dynamic+0x").nth(1)?, name))
        })
        .map(|(rest, name)| {
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            let addr = u64::from_str_radix(&hex, 16).expect("pc");
            let off = file_offset(&elf, addr).unwrap_or_else(|| panic!("{addr:#x} in no segment"));
            (off, name)
        })
        .collect()
}

/// The file offset of link-time address `addr` (through the loadable
/// segments).
fn file_offset(elf: &object::File<'_>, addr: u64) -> Option<u64> {
    elf.segments().find_map(|s| {
        let (off, size) = s.file_range();
        (s.address() <= addr && addr < s.address() + size).then(|| addr - s.address() + off)
    })
}

/// Entry pcs (file offsets) of the split tails inlined back, as objdump
/// reads the DWARF: an inlined copy of a function nested in an instance of
/// that same function (the out-of-line one, or an inlined copy of it) and
/// "called" from the function's own declaration line.
fn split_tails(exe: &Path) -> BTreeSet<u64> {
    let dies = oracle::dies(exe);
    let decl: BTreeMap<u64, u64> = dies
        .iter()
        .filter_map(|d| Some((d.offset, d.number("DW_AT_decl_line")?)))
        .collect();
    let data = std::fs::read(exe).expect("read the file");
    let elf = object::File::parse(&*data).expect("parse ELF");
    let mut out = BTreeSet::new();
    // (depth, function) of the instances the walk is inside.
    let mut enclosing: Vec<(u32, u64)> = Vec::new();
    for d in &dies {
        enclosing.retain(|&(depth, _)| depth < d.depth);
        let own = d.reference("DW_AT_abstract_origin").unwrap_or(d.offset);
        match d.tag.as_str() {
            "DW_TAG_subprogram" => enclosing.push((d.depth, own)),
            "DW_TAG_inlined_subroutine" => {
                let nested = enclosing.iter().any(|&(_, f)| f == own);
                let from_decl = d.number("DW_AT_call_line").is_some()
                    && d.number("DW_AT_call_line") == decl.get(&own).copied();
                let entry = d
                    .number("DW_AT_entry_pc")
                    .or_else(|| d.number("DW_AT_low_pc"));
                if let (true, true, Some(pc)) = (nested, from_decl, entry) {
                    out.extend(file_offset(&elf, pc));
                }
                enclosing.push((d.depth, own));
            }
            _ => {}
        }
    }
    out
}

/// File offsets of the sites `stapxx-rs -p2` lists for `point`.
fn our_sites(exe: &Path, point: &str) -> BTreeSet<u64> {
    support::p2_site_offsets(exe, point).into_iter().collect()
}

/// Our sites equal stap's, but for the split tails gcc inlined back into
/// their own function (no call: we do not probe them, stap does; see the
/// split-part tests of `uprobes.rs`), told by objdump's reading of the
/// DWARF, not by ours.
fn same_sites(exe: &Path, point: &str) {
    let theirs = stap_sites(exe, point);
    let ours = our_sites(exe, point);
    assert!(!theirs.is_empty(), "stap found nothing for {point}");
    let tails = split_tails(exe);
    let only_stap: Vec<String> = theirs
        .iter()
        .filter(|(a, _)| !ours.contains(a) && !tails.contains(a))
        .map(|(a, name)| format!("{a:#x} ({name})"))
        .collect();
    let only_ours: Vec<String> = ours
        .iter()
        .filter(|a| !theirs.contains_key(a))
        .map(|a| format!("{a:#x}"))
        .collect();
    eprintln!(
        "{point} of {}: {} sites; {} split tails inlined back in the file",
        exe.display(),
        ours.len(),
        tails.len()
    );
    assert!(
        only_stap.is_empty() && only_ours.is_empty(),
        "{point} of {}: {} sites by stap, {} by us; only stap's: {only_stap:?}; only ours: {only_ours:?}",
        exe.display(),
        theirs.len(),
        ours.len()
    );
}

#[test]
fn c_fixtures_at_both_levels() {
    if !support::have_tool("stap") {
        return support::missing("stap (SystemTap), the oracle");
    }
    for source in ["sites.c", "split.c"] {
        for opt in ["-O0", "-O2"] {
            let tag = format!("stap-sites-{source}{opt}");
            let exe = support::c_fixture(source, &tag, &[opt]);
            same_sites(&exe, "function(\"*\")");
        }
    }
}

/// Statement sites: per line and function instance holding it, the line's
/// lowest address among all its line-table rows. (sites.c at -O2 differs
/// from stap at two of 27 sites, where a row shares its address with rows
/// of other lines: not checked here.)
#[test]
fn statement_lines() {
    if !support::have_tool("stap") {
        return support::missing("stap (SystemTap), the oracle");
    }
    for (source, opts) in [("split.c", &["-O0", "-O2"][..]), ("sites.c", &["-O0"][..])] {
        for opt in opts {
            let tag = format!("stap-sites-{source}{opt}");
            let exe = support::c_fixture(source, &tag, &[opt]);
            same_sites(&exe, &format!("statement(\"*@{source}:1-300\")"));
        }
    }
}

#[test]
fn luajit_both_layouts() {
    if !support::have_tool("stap") {
        return support::missing("stap (SystemTap), the oracle");
    }
    for v in Variant::ALL {
        let Some(lj) = luajit::get(v) else { return };
        same_sites(&lj.luajit, "function(\"*\")");
        same_sites(&lj.luajit, "function(\"lj_*\").return");
    }
}
