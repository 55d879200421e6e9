//! `.function("f").callee("g")` and `.callees`.

use super::super::{Miss, SiteKind};
use super::{miss, pp, Place, UprobeSite};
use crate::debuginfo::callsites::Callee;
use crate::debuginfo::params::FunctionInfo;
use crate::debuginfo::symbols::vaddr_to_file_offset;
use crate::debuginfo::Module;
use grammar::ast::{BinOp, Expr, ExprKind};
use std::sync::Arc;

/// `.function("f").callee("g")`: each inlined copy of g in f at the
/// copy; an out-of-line g (or its PLT stub, for an imported g) at its
/// entry, guarded by where the call came from: the return address on the
/// stack must be one of f's call sites, as stap checks it. Addresses are
/// compared relative to the probe's own `rip`, so the test needs no load
/// bias.
pub(super) fn resolve(m: &Module, caller: &str, callee: &str) -> Result<Vec<SiteKind>, Miss> {
    let module = m.target_path().display().to_string();
    let process = pp::process(m);
    let found = m.callees(caller, callee).map_err(miss)?;
    let segments = m.elf().load_segments();
    let host_path = m.elf().path().to_path_buf();
    // Out-of-line calls, per probe address: (name, info, return addresses).
    let mut calls: Vec<(u64, String, Option<FunctionInfo>, Vec<u64>)> = Vec::new();
    let mut out = Vec::new();
    for c in found {
        match c {
            Callee::Inlined(info) => {
                let Some(off) = vaddr_to_file_offset(segments, info.probe_address) else {
                    continue;
                };
                if info.no_probe.is_some() {
                    continue;
                }
                out.push(SiteKind::Uprobe(UprobeSite {
                    module: module.clone(),
                    host_path: host_path.clone(),
                    pp: pp::function(&process, &info.name, Some(&info), ""),
                    function: info.name.clone(),
                    entry_address: info.entry_address,
                    address: info.probe_address,
                    entry_offset: off,
                    probe_offset: off,
                    is_return: false,
                    info: Some(Arc::new(info)),
                    marker: None,
                    ref_ctr: None,
                    guard: None,
                    place: Place::Callee,
                }));
            }
            Callee::Call {
                callee,
                call_return,
                call_target,
                callee_entry,
                ..
            } => {
                let at = match (&callee_entry, call_target) {
                    (Some(info), _) => info.probe_address,
                    (None, Some(t)) => t,
                    (None, None) => continue,
                };
                match calls.iter_mut().find(|x| x.0 == at) {
                    Some(x) => x.3.push(call_return),
                    None => calls.push((at, callee, callee_entry, vec![call_return])),
                }
            }
        }
    }
    for (at, name, info, returns) in calls {
        let Some(off) = vaddr_to_file_offset(segments, at) else {
            continue;
        };
        // Where the return address is at the probe: the word below the
        // CFA; at a function's (or stub's) first instruction, at rsp.
        let (reg, cfa_off) = match info.as_ref().and_then(|i| i.cfa) {
            Some((r, o)) => match crate::debuginfo::params::x86_64_register_name(r) {
                Some(name) => (name, o),
                None => continue,
            },
            None if info
                .as_ref()
                .is_none_or(|i| i.probe_address == i.entry_address) =>
            {
                ("rsp", 8)
            }
            None => continue,
        };
        let guard = return_guard(reg, cfa_off - 8, at, &returns);
        out.push(SiteKind::Uprobe(UprobeSite {
            module: module.clone(),
            host_path: host_path.clone(),
            pp: pp::function(&process, &name, info.as_ref(), ""),
            function: name,
            entry_address: info.as_ref().map_or(at, |i| i.entry_address),
            address: at,
            entry_offset: off,
            probe_offset: off,
            is_return: false,
            info: info.map(Arc::new),
            marker: None,
            ref_ctr: None,
            guard: Some(guard),
            place: Place::Callee,
        }));
    }
    if out.is_empty() {
        return Err(Miss::NoMatch(format!(
            "no call to '{callee}' in '{caller}' in {module} can be probed"
        )));
    }
    Ok(out)
}

/// `user_uint64(REG + off) - u_register("rip") == R1 - at || ...`: the
/// return address (at `REG + off`) is one of `returns`, each compared by its
/// distance from the probe address `at`, which `rip` holds when it fires.
fn return_guard(reg: &str, off: i64, at: u64, returns: &[u64]) -> Expr {
    let span = grammar::Span::default();
    let e = |kind| Expr { kind, span };
    let call = |name: &str, args| {
        e(ExprKind::Call {
            name: name.into(),
            args,
        })
    };
    let bin = |op, l, r| {
        e(ExprKind::Binary {
            op,
            lhs: Box::new(l),
            rhs: Box::new(r),
        })
    };
    let slot = bin(
        BinOp::Add,
        call("u_register", vec![e(ExprKind::String(reg.into()))]),
        e(ExprKind::Number(off)),
    );
    let distance = bin(
        BinOp::Sub,
        call("user_uint64", vec![slot]),
        call("u_register", vec![e(ExprKind::String("rip".into()))]),
    );
    let mut guard: Option<Expr> = None;
    for r in returns {
        let test = bin(
            BinOp::Eq,
            distance.clone(),
            e(ExprKind::Number(r.wrapping_sub(at) as i64)),
        );
        guard = Some(match guard {
            None => test,
            Some(g) => bin(BinOp::Or, g, test),
        });
    }
    guard.unwrap_or(e(ExprKind::Number(0)))
}
