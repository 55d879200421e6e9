//! The calls a function makes: what `process("P").function("f").callee("g")`
//! and `.callees` probe.
//!
//! Like stap (dwflpp.cxx, `dwflpp::iterate_over_callees`), the calls are
//! read from the caller's DIE tree: each `DW_TAG_call_site` (DWARF 5) or
//! `DW_TAG_GNU_call_site` names its callee through `DW_AT_call_origin` /
//! `DW_AT_abstract_origin`, and each `DW_TAG_inlined_subroutine` directly in
//! the caller (lexical blocks looked through, other inlined copies not: what
//! they call, the caller does not call itself) is an inlined callee.
//!
//! An out-of-line callee is probed at its own entry, which every caller
//! reaches; stap then runs the handler only when the return address on the
//! stack is one of the caller's call sites (tapsets.cxx, the
//! `_caller_match` checks added for `.callee`). So each call yields its
//! return address: `DW_AT_call_return_pc`, or the `DW_AT_low_pc` of a
//! `DW_TAG_GNU_call_site`. (stap reads only `DW_AT_low_pc` and falls back
//! to the callee's own low pc for DWARF 5 sites, a check that cannot match;
//! the return pc is what the check needs.)
//!
//! Differences from stap, on purpose:
//! * a callee with no definition in the module (a libc function called
//!   through the PLT) is listed with `callee_entry: None`; stap drops it.
//! * gcc emits no call-site entries at -O0. stap then finds no callee at
//!   all; here, when a caller's tree has no call-site entry of any kind, its
//!   x86-64 code is scanned for `call rel32` to known function entries and
//!   PLT stubs ([`FoundBy::MachineCode`]).
//! * only depth 1 (`.callees` = `.callees(1)`); stap's `.callees(N)`
//!   recursion, with a return-address check per level, is not done.
//!
//! Calls through pointers (a call site with no origin) name no callee:
//! they are skipped, and counted in [`CalleeSites::indirect_calls`].

mod code;

use std::collections::HashMap;

use gimli::constants as dw;

use super::dwarf::{DieId, R};
use super::error::{DebugError, Result};
use super::inlined::codeless;
use super::layout::nearest;
use super::params::{
    out_of_line, reference, split_spec, Candidate, Cfi, Debug, FunctionInfo, Sources, UnitInfo,
};
use super::plt::PltEntry;
use super::symbols::glob_match;

/// How deep lexical blocks are followed.
const MAX_DEPTH: u32 = 64;

/// One callee of a caller instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callee {
    /// One out-of-line call (one entry per call instruction: callers of
    /// the same callee share its entry and differ by `call_return`).
    Call {
        /// The caller's name.
        caller: String,
        /// The caller instance's entry (tells instances of the caller
        /// apart: static functions of several units, inlined copies).
        caller_entry: u64,
        callee: String,
        /// Link-time address of the instruction after the call: the
        /// return address the callee finds on its stack.
        call_return: u64,
        /// The target of the `call rel32` ending at `call_return` (x86-64):
        /// the callee's entry, or the PLT stub of an imported one; `None`
        /// when the call is of another form.
        call_target: Option<u64>,
        /// A tail call (`DW_AT_call_tail_call`): a jump, which leaves no
        /// return address in the caller, so a return-address check misses
        /// it (stap warns the probe may not fire).
        tail_call: bool,
        found_by: FoundBy,
        /// The callee's out-of-line definition, located at its probe
        /// address; `None` when the module has no DWARF definition of it
        /// (an imported function: `call_target` is its PLT stub).
        callee_entry: Option<FunctionInfo>,
    },
    /// A copy of the callee inlined in the caller, probed at that copy.
    Inlined(FunctionInfo),
}

/// Where a call was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// A `DW_TAG_call_site` / `DW_TAG_GNU_call_site` entry.
    CallSiteEntry,
    /// The caller's machine code (its DWARF describes no call).
    MachineCode,
}

/// Everything found for `.callee`: the callees and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalleeSites {
    /// Per caller instance (by entry): out-of-line calls by return
    /// address, then inlined copies by entry.
    pub callees: Vec<Callee>,
    /// Calls through pointers in the callers: no callee is known.
    pub indirect_calls: usize,
}

/// A call found in a caller, before its callee is resolved.
struct RawCall {
    name: String,
    /// The DIE the call site names (for calls found by machine code: none).
    origin: Option<DieId>,
    call_return: u64,
    call_target: Option<u64>,
    tail_call: bool,
    found_by: FoundBy,
}

/// What a walk of one caller instance found.
#[derive(Default)]
struct Walked {
    calls: Vec<RawCall>,
    inlined: Vec<Candidate>,
    /// Call-site entries of any kind (direct or not).
    sites: usize,
    indirect: usize,
}

/// The calls made by the functions matching `caller_spec` (`name`,
/// pattern, optionally `@file`) to the functions matching
/// `callee_pattern` (`*`: all). `plt`: the module's PLT stubs, to name
/// imported callees in machine code.
pub(crate) fn find_callees(
    src: &Sources<'_>,
    plt: &[PltEntry],
    caller_spec: &str,
    callee_pattern: &str,
) -> Result<CalleeSites> {
    let (pattern, cu_pattern) = split_spec(caller_spec)?;
    let debug = Debug::load(src)?;
    let (mut callers, names) = super::inlined::instances(&debug, src, pattern, cu_pattern)?;
    // An inlined copy with no code left calls nothing.
    callers.retain(|c| !c.ranges.is_empty());
    if callers.is_empty() {
        return Err(super::inlined::nothing_matched(
            &debug,
            names,
            pattern,
            &format!("caller '{caller_spec}'"),
        ));
    }
    let defs = out_of_line(&debug, src, "*", None)?;
    let by_entry: HashMap<u64, &Candidate> = defs.iter().map(|d| (d.entry, d)).collect();
    let mut cfi = Cfi::new(src);
    let mut infos: HashMap<u64, FunctionInfo> = HashMap::new();
    let mut out = Vec::new();
    let mut indirect = 0;
    let mut called = Vec::new();
    for caller in &callers {
        let mut w = debug.walk_caller(caller)?;
        for c in &mut w.calls {
            c.call_target = code::call_target(src.code_file, c.call_return);
        }
        if w.sites == 0 && caller.frame.is_none() && code::is_x86_64(src.code_file) {
            w.calls = scan_code(src, caller, &by_entry, plt);
        }
        indirect += w.indirect;
        let caller_name = caller.name.clone().unwrap_or_default();
        w.calls.sort_by_key(|c| c.call_return);
        for call in w.calls {
            if !glob_match(callee_pattern, &call.name) {
                called.push(call.name);
                continue;
            }
            let def = callee_definition(&call, &defs, &by_entry);
            let callee_entry = match def {
                Some(d) => Some(match infos.get(&d.entry) {
                    Some(i) => i.clone(),
                    None => {
                        let i = debug.function_info(d, &mut cfi, None, &[])?;
                        infos.insert(d.entry, i.clone());
                        i
                    }
                }),
                None => None,
            };
            out.push(Callee::Call {
                caller: caller_name.clone(),
                caller_entry: caller.entry,
                callee: call.name,
                call_return: call.call_return,
                call_target: call.call_target,
                tail_call: call.tail_call,
                found_by: call.found_by,
                callee_entry,
            });
        }
        for c in &w.inlined {
            let name = c.name.clone().unwrap_or_default();
            if !glob_match(callee_pattern, &name) {
                called.push(name);
                continue;
            }
            out.push(Callee::Inlined(if c.ranges.is_empty() {
                codeless(&debug, c)?
            } else {
                debug.function_info(c, &mut cfi, None, &[])?
            }));
        }
    }
    if out.is_empty() {
        return Err(no_callee(
            &debug,
            caller_spec,
            callee_pattern,
            called,
            indirect,
        ));
    }
    Ok(CalleeSites {
        callees: out,
        indirect_calls: indirect,
    })
}

/// The error for a caller that calls nothing matching: what it does call,
/// nearest to the pattern first.
fn no_callee(
    debug: &Debug,
    caller_spec: &str,
    callee_pattern: &str,
    mut called: Vec<String>,
    indirect: usize,
) -> DebugError {
    called.sort_unstable();
    called.dedup();
    let order = nearest(
        callee_pattern,
        called.iter().map(String::as_str),
        called.len(),
    );
    let mut what = format!("a call to '{callee_pattern}' in '{caller_spec}'");
    if order.is_empty() {
        what.push_str(" (it calls no function by name)");
    } else {
        what.push_str(&format!(" (it calls: {})", order.join(", ")));
    }
    if indirect > 0 {
        what.push_str(&format!(
            "; {indirect} call(s) through pointers name no callee"
        ));
    }
    DebugError::NotFound {
        what,
        file: debug.path.clone(),
    }
}

/// The calls in the machine code of an out-of-line caller, named by their
/// targets (a DWARF definition's entry or a PLT stub).
fn scan_code(
    src: &Sources<'_>,
    caller: &Candidate,
    by_entry: &HashMap<u64, &Candidate>,
    plt: &[PltEntry],
) -> Vec<RawCall> {
    let stub = |t: u64| plt.iter().find(|p| p.address == t);
    let known = |t: u64| by_entry.contains_key(&t) || stub(t).is_some();
    let mut out = Vec::new();
    for &(begin, end) in &caller.ranges {
        let Some(bytes) = code::bytes(src.code_file, begin, end) else {
            continue;
        };
        for (ret, target) in code::scan_calls(begin, &bytes, &known) {
            let name = match by_entry.get(&target) {
                Some(d) => d.name.clone().unwrap_or_default(),
                None => stub(target).map(|p| p.name.clone()).unwrap_or_default(),
            };
            out.push(RawCall {
                name,
                origin: by_entry.get(&target).map(|d| d.die),
                call_return: ret,
                call_target: Some(target),
                tail_call: false,
                found_by: FoundBy::MachineCode,
            });
        }
    }
    out
}

impl Debug {
    /// The call sites and inlined copies directly in a caller instance.
    fn walk_caller(&self, caller: &Candidate) -> Result<Walked> {
        let u = &self.units[0][caller.unit];
        let err = |e: gimli::Error| self.err(format!("call sites of DIE {}", caller.die), e);
        let mut tree = u
            .unit
            .entries_tree(Some(gimli::UnitOffset(caller.die.offset - u.start)))
            .map_err(err)?;
        let root = tree.root().map_err(err)?;
        let mut w = Walked::default();
        let frame = caller.frame.unwrap_or((caller.die, caller.entry));
        self.walk_node(u, caller.unit, root, frame, &mut w, 0)?;
        Ok(w)
    }

    fn walk_node(
        &self,
        u: &UnitInfo,
        ui: usize,
        node: gimli::EntriesTreeNode<'_, '_, '_, R>,
        frame: (DieId, u64),
        w: &mut Walked,
        depth: u32,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let err =
            |e: gimli::Error| self.err(format!("call sites in the unit at {:#x}", u.start), e);
        let mut children = node.children();
        while let Some(child) = children.next().map_err(err)? {
            let e = child.entry();
            let id = DieId {
                file: 0,
                offset: u.start + e.offset().0,
            };
            match e.tag() {
                dw::DW_TAG_call_site | dw::DW_TAG_GNU_call_site => {
                    w.sites += 1;
                    self.call_site(u, e, w).map_err(err)?;
                }
                dw::DW_TAG_inlined_subroutine => {
                    let own = self.attrs_of(0, u, e).map_err(err)?;
                    let name = self.name_and_type(own)?.0;
                    let code = self.code_range(u, e, true).map_err(err)?;
                    let call_line = e
                        .attr_value(dw::DW_AT_call_line)
                        .map_err(err)?
                        .and_then(|v| v.udata_value());
                    w.inlined.push(Candidate {
                        die: id,
                        unit: ui,
                        entry: code.as_ref().map_or(0, |c| c.entry),
                        end: code.as_ref().map_or(0, |c| c.end),
                        ranges: code.map(|c| c.ranges).unwrap_or_default(),
                        name,
                        frame: Some(frame),
                        call_line,
                    });
                }
                // A nested function is a caller of its own.
                dw::DW_TAG_subprogram => {}
                _ => self.walk_node(u, ui, child, frame, w, depth + 1)?,
            }
        }
        Ok(())
    }

    /// Records one call-site entry: a named call, or an indirect one.
    fn call_site(
        &self,
        u: &UnitInfo,
        e: &super::params::Entry<'_>,
        w: &mut Walked,
    ) -> gimli::Result<()> {
        let origin = [dw::DW_AT_call_origin, dw::DW_AT_abstract_origin]
            .into_iter()
            .find_map(|at| {
                e.attr_value(at)
                    .ok()
                    .flatten()
                    .and_then(|v| reference(0, u.start, v))
            });
        let Some(origin) = origin else {
            w.indirect += 1;
            return Ok(());
        };
        let mut ret = None;
        for at in [dw::DW_AT_call_return_pc, dw::DW_AT_low_pc] {
            if let Some(v) = e.attr_value(at)? {
                ret = self.dwarf.attr_address(&u.unit, v)?;
                if ret.is_some() {
                    break;
                }
            }
        }
        let Some(call_return) = ret else {
            // No address: nothing to check a return address against.
            w.indirect += 1;
            return Ok(());
        };
        let tail_call = [dw::DW_AT_call_tail_call, dw::DW_AT_GNU_tail_call]
            .into_iter()
            .any(|at| {
                matches!(
                    e.attr_value(at),
                    Ok(Some(gimli::AttributeValue::Flag(true)))
                )
            });
        let name = self
            .attrs(origin)
            .and_then(|a| self.name_and_type(a))
            .ok()
            .and_then(|(n, _)| n)
            .unwrap_or_default();
        w.calls.push(RawCall {
            name,
            origin: Some(origin),
            call_return,
            call_target: None,
            tail_call,
            found_by: FoundBy::CallSiteEntry,
        });
        Ok(())
    }
}

/// The out-of-line definition a call reaches: the one at the call's
/// target (a clone such as `f.constprop.0` is what runs, though the site
/// names `f`), else the DIE the site names when it has code, else a
/// definition of that name (the site names a declaration).
fn callee_definition<'d>(
    call: &RawCall,
    defs: &'d [Candidate],
    by_entry: &HashMap<u64, &'d Candidate>,
) -> Option<&'d Candidate> {
    if let Some(d) = call.call_target.and_then(|t| by_entry.get(&t)) {
        return Some(d);
    }
    if let Some(d) = call.origin.and_then(|o| defs.iter().find(|d| d.die == o)) {
        return Some(d);
    }
    defs.iter().find(|d| d.name.as_deref() == Some(&call.name))
}
