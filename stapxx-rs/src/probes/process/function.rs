//! `.function("f")` (every instance, inlined copies included; `.call`,
//! `.inline`) and `.return`.
//!
//! A function is matched by DWARF when the module has it (every
//! out-of-line definition and inlined copy, `F@file.c` compile-unit
//! patterns, wildcards), the probe going where stap puts it: after the
//! prologue for unoptimized code, at the entry for optimized code (see
//! [`crate::debuginfo::params`]); by the symbol table when the module has
//! no DWARF for it (at the entry; no target variables). A `.return` probe
//! is a uretprobe on the function's first byte: the kernel takes the
//! return address from the top of the stack there, and nowhere else.

use super::super::{Miss, SiteKind};
use super::spec::{FunctionSpec, Instances};
use super::{pp, Place, UprobeSite};
use crate::debuginfo::dwarf::cu_matches;
use crate::debuginfo::symbols::{has_wildcards, vaddr_to_file_offset, FunctionAddress};
use crate::debuginfo::Module;
use crate::resolve::modules::Modules;
use std::sync::Arc;

pub(super) fn resolve(m: &Module, spec: &FunctionSpec) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let process = pp::process(m);
    let host_path = m.elf().path().to_path_buf();
    let segments = m.elf().load_segments();
    let offset_of = |addr: u64| vaddr_to_file_offset(segments, addr);
    let mut out = Vec::new();
    // By declaration line (`f@file.c:N`), the file is the one DWARF
    // declares the function in (a header, for a static inline one), as
    // stap matches it, not the compile unit.
    let (lookup, decl_file) = match (spec.decl_lines, spec.function.split_once('@')) {
        (Some(_), Some((name, file))) => (name, Some(file)),
        _ => (spec.function.as_str(), None),
    };
    match m.function_instances(lookup) {
        Ok(infos) => {
            let declared: Vec<String> = infos
                .iter()
                .filter_map(|i| {
                    i.decl
                        .as_ref()
                        .map(|d| format!("{}@{}:{}", i.name, d.file, d.line))
                })
                .collect();
            let infos: Vec<_> = infos
                .into_iter()
                .filter(|i| {
                    decl_file
                        .is_none_or(|f| i.decl.as_ref().is_some_and(|d| cu_matches(f, &d.file)))
                })
                .collect();
            for info in infos {
                let in_lines = |(lo, hi): (u64, u64)| {
                    info.decl
                        .as_ref()
                        .is_some_and(|d| (lo..=hi).contains(&d.line))
                };
                if !spec.decl_lines.is_none_or(in_lines) {
                    continue;
                }
                let wanted = match spec.instances {
                    Instances::All => true,
                    Instances::OutOfLine => !info.inlined,
                    Instances::Inlined => info.inlined,
                };
                if !wanted || info.no_probe.is_some() {
                    continue;
                }
                let (Some(entry_offset), Some(probe_offset)) =
                    (offset_of(info.entry_address), offset_of(info.probe_address))
                else {
                    continue;
                };
                out.push(UprobeSite {
                    pp: pp::function(&process, &info.name, Some(&info), &spec.suffix),
                    module: module.clone(),
                    host_path: host_path.clone(),
                    function: info.name.clone(),
                    entry_address: info.entry_address,
                    address: info.probe_address,
                    entry_offset,
                    probe_offset,
                    is_return: spec.is_return,
                    info: Some(Arc::new(info)),
                    marker: None,
                    ref_ctr: None,
                    guard: None,
                    place: Place::Function,
                });
            }
            if let (Some((lo, hi)), true) = (spec.decl_lines, out.is_empty()) {
                let lines = if lo == hi {
                    format!("line {lo}")
                } else {
                    format!("lines {lo}-{hi}")
                };
                let mut declared = declared;
                declared.sort();
                declared.dedup();
                return Err(Miss::NoMatch(format!(
                    "no function '{}' is declared at {lines} in {module} (declared: {}); statement(\"...\") probes a line inside a function",
                    spec.function,
                    declared.join(", ")
                )));
            }
        }
        Err(dwarf_err) if spec.decl_lines.is_some() => {
            return Err(Miss::NoMatch(if Modules::is_unresolved(&dwarf_err) {
                dwarf_err.to_string()
            } else {
                format!("a function by its declaration line needs DWARF: {dwarf_err}")
            }))
        }
        // No DWARF for it (stripped, or a function the debug info does not
        // describe): the symbol table places it at its entry.
        Err(dwarf_err) => match m.function_probes(&spec.function) {
            Ok(funcs) => {
                for f in funcs {
                    out.push(symbol_site(m, &process, f, spec));
                }
            }
            Err(sym_err) => {
                let msg = if Modules::is_unresolved(&dwarf_err) {
                    sym_err.to_string()
                } else {
                    format!("{sym_err} ({dwarf_err})")
                };
                return Err(Miss::NoMatch(msg));
            }
        },
    }
    // A wildcard also takes the functions DWARF does not describe, as stap's
    // does (their sites carry no target variables).
    if spec.instances != Instances::Inlined
        && has_wildcards(&spec.function)
        && !spec.function.contains('@')
        && !out.is_empty()
    {
        for f in m
            .functions_without_dwarf(&spec.function)
            .unwrap_or_default()
        {
            out.push(symbol_site(m, &process, f, spec));
        }
    }
    // A function not entered by a call has no return address on top of
    // its stack: a uretprobe would overwrite what is there (argc, at
    // `_start`), harming the target. stap refuses the same ones.
    let mut refused = Vec::new();
    if spec.is_return {
        out.retain(|s| {
            let keep = !not_called(&s.function);
            if !keep {
                refused.push(s.function.clone());
            }
            keep
        });
    }
    // One probe per address: a function seen in two compile units (or
    // through two names) is one place.
    out.sort_by_key(|s| (s.offset(), s.function.clone()));
    out.dedup_by_key(|s| s.offset());
    if out.is_empty() && !refused.is_empty() {
        refused.dedup();
        return Err(Miss::NoMatch(format!(
            "{} cannot take a .return probe: not entered by a call, it has no return address to replace",
            refused.join(", ")
        )));
    }
    if out.is_empty() {
        let what = match spec.instances {
            Instances::Inlined => "has no inlined copies",
            Instances::OutOfLine => "has no out-of-line copy (only inlined ones)",
            Instances::All => "has no code that a probe can be placed on",
        };
        return Err(Miss::NoMatch(format!(
            "function '{}' {what} in {module}",
            spec.function
        )));
    }
    Ok(out.into_iter().map(SiteKind::Uprobe).collect())
}

/// The site of a function known only from the symbol table: at its entry,
/// with no target variables.
fn symbol_site(m: &Module, process: &str, f: FunctionAddress, spec: &FunctionSpec) -> UprobeSite {
    UprobeSite {
        module: m.target_path().display().to_string(),
        host_path: m.elf().path().to_path_buf(),
        pp: pp::function(process, &f.name, None, &spec.suffix),
        function: f.name,
        entry_address: f.address,
        address: f.address,
        entry_offset: f.file_offset,
        probe_offset: f.file_offset,
        is_return: spec.is_return,
        info: None,
        marker: None,
        ref_ctr: None,
        guard: None,
        place: Place::Function,
    }
}

/// Functions that are not entered by a call: the program's entry point,
/// and the 32-bit PIC thunks that read their own return address.
fn not_called(name: &str) -> bool {
    name == "_start"
        || (name.starts_with("__")
            && name
                .split_once(".get_pc_thunk.")
                .is_some_and(|(head, _)| head.len() > 2))
}
