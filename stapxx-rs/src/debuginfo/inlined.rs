//! Every instance of a function, inlined copies included: what stap's
//! `process("P").function("f")` probes (`.call` takes the out-of-line
//! definitions only, `.inline` the inlined copies only).
//!
//! An inlined copy is a `DW_TAG_inlined_subroutine` somewhere inside the
//! code of an out-of-line subprogram (possibly inside lexical blocks or
//! inside another inlined copy). It names its function through
//! `DW_AT_abstract_origin`; its children carry the locations of this copy's
//! parameters and locals, and point to the abstract ones for names and
//! types. The probe goes at its entry pc: there is no prologue to skip.

use gimli::constants as dw;

use super::dwarf::DieId;
use super::error::{DebugError, Result};
use super::layout::nearest;
use super::params::{
    out_of_line, split_spec, unit_matches, Candidate, Cfi, Debug, FunctionInfo, Sources, UnitInfo,
};
use super::symbols::glob_match;

/// How deep DIE trees are followed (namespaces, blocks, nested inlining);
/// real code stays far below, a corrupt file cannot recurse forever.
const MAX_DEPTH: u32 = 64;

/// The out-of-line definitions and inlined copies of the functions matching
/// `spec` (`name`, a pattern, optionally `@file`), out-of-line ones first,
/// each group by address. Nothing at all is an error naming the nearest
/// function names of the DWARF.
pub(crate) fn find_instances(src: &Sources<'_>, spec: &str) -> Result<Vec<FunctionInfo>> {
    let (pattern, cu_pattern) = split_spec(spec)?;
    let debug = Debug::load(src)?;
    let (found, names) = instances(&debug, src, pattern, cu_pattern)?;
    if found.is_empty() {
        return Err(nothing_matched(
            &debug,
            names,
            pattern,
            &format!("function '{spec}'"),
        ));
    }
    let mut cfi = Cfi::new(src);
    let mut out = Vec::with_capacity(found.len());
    for c in &found {
        // A copy whose range is empty (gcc folded its code into the code
        // around it) still has an entry pc, where its call happens: stap
        // probes it there, and so do we. Only a copy with no address at
        // all has nothing to probe.
        if c.entry == 0 {
            out.push(codeless(&debug, c)?);
        } else {
            out.push(debug.function_info(c, &mut cfi, None, &[])?);
        }
    }
    Ok(out)
}

/// The out-of-line definitions of the functions matching `pattern` (in
/// compile units matching `cu_pattern`), then their inlined copies by
/// address, codeless ones included; and every subprogram name seen, for
/// "nearest" suggestions.
pub(super) fn instances(
    debug: &Debug,
    src: &Sources<'_>,
    pattern: &str,
    cu_pattern: Option<&str>,
) -> Result<(Vec<Candidate>, Vec<String>)> {
    let mut found = out_of_line(debug, src, pattern, cu_pattern)?;
    let mut names = Vec::new();
    let mut copies = debug.scan_inlined(&|n| glob_match(pattern, n), &mut names)?;
    copies.retain(|c| unit_matches(debug, c.unit, cu_pattern));
    copies.sort_by_key(|c| (c.entry, c.die.offset));
    found.extend(copies);
    Ok((found, names))
}

/// The error for a function pattern that matched no definition and no
/// inlined copy, naming the nearest of the subprogram `names` seen.
pub(super) fn nothing_matched(
    debug: &Debug,
    mut names: Vec<String>,
    pattern: &str,
    what: &str,
) -> DebugError {
    names.sort_unstable();
    names.dedup();
    let near = nearest(pattern, names.iter().map(String::as_str), 3);
    let mut what = format!("{what} (no definition and no inlined copy)");
    if !near.is_empty() {
        what.push_str(&format!(" (nearest: {})", near.join(", ")));
    }
    DebugError::NotFound {
        what,
        file: debug.path.clone(),
    }
}

/// An inlined copy whose code the compiler removed: listed, with the
/// reason it cannot be probed.
pub(super) fn codeless(debug: &Debug, c: &Candidate) -> Result<FunctionInfo> {
    let own = debug.attrs(c.die)?;
    let (name, ret) = debug.name_and_type(own)?;
    let at = match c.call_line {
        Some(l) => format!(" (called at line {l})"),
        None => String::new(),
    };
    Ok(FunctionInfo {
        name: name.or_else(|| c.name.clone()).unwrap_or_default(),
        cu_name: debug.units[0].get(c.unit).and_then(|u| u.name.clone()),
        die: c.die,
        inlined: true,
        call_line: c.call_line,
        no_probe: Some(format!("this inlined copy{at} has no code left")),
        entry_address: 0,
        probe_address: 0,
        params: Vec::new(),
        locals: Vec::new(),
        return_type: ret.map(|t| super::layout::TypeHandle(super::layout::Ty::Die(t))),
        decl: debug.declared_at(c.die),
        cfa: None,
    })
}

impl Debug {
    /// Inlined copies (of the main file's units) whose function name
    /// `keep` accepts. `names` receives the name of every subprogram seen,
    /// for "nearest" suggestions.
    pub(super) fn scan_inlined(
        &self,
        keep: &dyn Fn(&str) -> bool,
        names: &mut Vec<String>,
    ) -> Result<Vec<Candidate>> {
        let mut out = Vec::new();
        for (ui, u) in self.units[0].iter().enumerate() {
            let err = |e: gimli::Error| {
                self.err(
                    format!("scanning the unit at {:#x} for inlined copies", u.start),
                    e,
                )
            };
            let mut tree = u.unit.entries_tree(None).map_err(err)?;
            let root = tree.root().map_err(err)?;
            let mut walk = Walk {
                ui,
                u,
                keep,
                names,
                out: &mut out,
                enclosing: Vec::new(),
            };
            self.inlined_in(&mut walk, root, None, 0)?;
        }
        Ok(out)
    }

    /// Children of `node`; `frame`: the out-of-line subprogram whose code
    /// they are in (`None` at the top of the unit).
    fn inlined_in(
        &self,
        w: &mut Walk<'_, '_>,
        node: gimli::EntriesTreeNode<'_, '_, '_, super::dwarf::R>,
        frame: Option<(DieId, u64)>,
        depth: u32,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let u = w.u;
        let err = |e: gimli::Error| {
            self.err(
                format!("scanning the unit at {:#x} for inlined copies", u.start),
                e,
            )
        };
        let mut children = node.children();
        while let Some(child) = children.next().map_err(err)? {
            let e = child.entry();
            let id = DieId {
                file: 0,
                offset: u.start + e.offset().0,
            };
            match (e.tag(), frame) {
                (dw::DW_TAG_subprogram, None) => {
                    let own = self.attrs_of(0, u, e).map_err(err)?;
                    // A declaration names a function defined elsewhere
                    // (another module, assembly): not one of this DWARF's.
                    let declared = matches!(
                        e.attr_value(dw::DW_AT_declaration).map_err(err)?,
                        Some(gimli::AttributeValue::Flag(true))
                    );
                    if let (Some(n), false) = (&own.name, declared) {
                        w.names.push(n.clone());
                    }
                    if let Some(code) = self.code_range(u, e, false).map_err(err)? {
                        w.enclosing.push(own.origin.unwrap_or(id));
                        let r = self.inlined_in(w, child, Some((id, code.entry)), depth + 1);
                        w.enclosing.pop();
                        r?;
                    }
                }
                (
                    dw::DW_TAG_namespace | dw::DW_TAG_class_type | dw::DW_TAG_structure_type,
                    None,
                ) => self.inlined_in(w, child, None, depth + 1)?,
                (dw::DW_TAG_lexical_block, Some(_)) => {
                    self.inlined_in(w, child, frame, depth + 1)?
                }
                (dw::DW_TAG_inlined_subroutine, Some(f)) => {
                    let own = self.attrs_of(0, u, e).map_err(err)?;
                    let origin = own.origin;
                    let name = self.name_and_type(own)?.0;
                    let call_line = e
                        .attr_value(dw::DW_AT_call_line)
                        .map_err(err)?
                        .and_then(|v| v.udata_value());
                    if name.as_deref().is_some_and(|n| (w.keep)(n))
                        && !self.split_part(&w.enclosing, origin, call_line)?
                    {
                        let code = self.code_range(u, e, true).map_err(err)?;
                        w.out.push(Candidate {
                            die: id,
                            unit: w.ui,
                            entry: code.as_ref().map_or(0, |c| c.entry),
                            end: code.as_ref().map_or(0, |c| c.end),
                            ranges: code.map(|c| c.ranges).unwrap_or_default(),
                            name,
                            frame: Some(f),
                            call_line,
                        });
                    }
                    w.enclosing.push(origin.unwrap_or(id));
                    let r = self.inlined_in(w, child, frame, depth + 1);
                    w.enclosing.pop();
                    r?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Debug {
    /// Whether an inlined copy of `origin` "called" at `call_line` is a part
    /// of an enclosing instance of the same function rather than a call:
    /// GCC's function splitting (`-fpartial-inlining`) moves a function's
    /// tail into `f.part.N` and may inline that back into `f` itself (or
    /// into an inlined copy of `f`); the DWARF then shows a copy of `f`
    /// nested in `f`, "called" from `f`'s own declaration line. Control
    /// reaches it by falling through from `f`'s entry, so probing it too
    /// would count every call of `f` twice. A real recursive call that was
    /// inlined is called from a line of the body, and is kept.
    fn split_part(
        &self,
        enclosing: &[DieId],
        origin: Option<DieId>,
        call_line: Option<u64>,
    ) -> Result<bool> {
        let Some(origin) = origin.filter(|o| enclosing.contains(o)) else {
            return Ok(false);
        };
        Ok(call_line.is_some() && self.decl_line(origin)? == call_line)
    }

    /// `DW_AT_decl_line` of a DIE.
    fn decl_line(&self, id: DieId) -> Result<Option<u64>> {
        let u = self
            .unit_of(id)
            .ok_or_else(|| self.err(format!("DIE {id}"), "offset is outside every unit"))?;
        let run = || -> gimli::Result<Option<u64>> {
            let e = u.unit.entry(gimli::UnitOffset(id.offset - u.start))?;
            Ok(e.attr_value(dw::DW_AT_decl_line)?
                .and_then(|v| v.udata_value()))
        };
        run().map_err(|e| self.err(format!("reading DIE {id}"), e))
    }
}

/// The state of one unit's walk.
struct Walk<'a, 'u> {
    ui: usize,
    u: &'u UnitInfo,
    keep: &'a dyn Fn(&str) -> bool,
    names: &'a mut Vec<String>,
    out: &'a mut Vec<Candidate>,
    /// The functions (abstract DIEs, or the subprogram itself when it has
    /// none) of the out-of-line subprogram and inlined copies the walk is
    /// inside, outermost first.
    enclosing: Vec<DieId>,
}
