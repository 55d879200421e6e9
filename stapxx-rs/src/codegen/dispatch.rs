//! One program per raw syscall tracepoint that jumps to the handler of the
//! call's number, for scripts with many handlers each for one system call
//! (SystemTap's `syscall.*`: hundreds of `tp_syscall` handlers on
//! `sys_enter`). Without it every system call runs every handler up to its
//! number test (codegen/gatecheck.rs); with it, one small program and one
//! `bpf_tail_call` into a program array indexed by the number.
//!
//! Input: the compiled handlers and what `ir::gate` says each is for.
//! Output: the dispatcher programs, their program-array maps, and which
//! handler goes in which slot; those handlers are then not attached
//! themselves (a handler for no call at all, `Gate::Never`, is attached
//! nowhere, with a dispatcher or without). A handler shares its slot with
//! no other (two handlers for the same number stay attached as they
//! are), so the array needs no chains.

use super::regs::*;
use super::ProbeProgram;
use crate::ir::gate::{syscall_gate, Gate};
use crate::ir::Program;
use crate::probes::{trace::TpArgs, Site, SiteKind};
use ebpf_backend::insn::{Alu, Cond, Size, R10};
use ebpf_backend::{FuncAsm, FuncKind, Insn, MapDef, MapId, MapKind, Module, ProgId, ProgKind};
use std::collections::HashMap;

/// Fewer handlers than this on a tracepoint are attached as they are: the
/// tail call costs more than a few number tests.
const MIN_HANDLERS: usize = 4;

/// Syscall numbers the array has slots for (x86-64 has about 460).
const SLOTS: u32 = 1024;

/// One dispatcher: its program, the tracepoint it is attached to, and the
/// handler program of each slot.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub prog: ProgId,
    /// The handlers' program type (a raw tracepoint's, with its name).
    pub kind: ProgKind,
    pub site: Site,
    pub map: MapId,
    pub slots: Vec<(u32, ProgId)>,
}

/// The raw system-call tracepoint a site is on, if any (what the number
/// test of gatecheck.rs and the dispatchers here both key on).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Event {
    Enter,
    Exit,
}

pub(super) fn event(s: &Site) -> Option<Event> {
    match &s.kind {
        SiteKind::Tracepoint(t)
            if t.category == "raw_syscalls"
                && matches!(t.args, TpArgs::Typed(_))
                && t.filter.is_none() =>
        {
            match t.name.as_str() {
                "sys_enter" => Some(Event::Enter),
                "sys_exit" => Some(Event::Exit),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Plan and emit the dispatchers; marks the handlers they serve as
/// dispatched (not to be attached).
pub fn build(
    program: &Program,
    probes: &mut [ProbeProgram],
    orig_ax: Option<u32>,
    module: &mut Module,
) -> Vec<Dispatcher> {
    // Per tracepoint: the handlers for one number each, and the never-run.
    let mut groups: HashMap<Event, (Site, Vec<(usize, Gate)>)> = HashMap::new();
    for (i, pp) in probes.iter().enumerate() {
        let h = &program.probes[pp.probe];
        let [site] = h.sites.as_slice() else {
            continue;
        };
        let Some(ev) = event(site) else {
            continue;
        };
        let Some(gate) = syscall_gate(&h.body) else {
            continue;
        };
        groups
            .entry(ev)
            .or_insert_with(|| (site.clone(), Vec::new()))
            .1
            .push((i, gate));
    }
    let mut out = Vec::new();
    let mut order: Vec<Event> = groups.keys().copied().collect();
    order.sort_by_key(|e| *e == Event::Exit);
    for ev in order {
        let (site, members) = &groups[&ev];
        // A handler for no call is attached nowhere, dispatcher or not.
        for &(i, g) in members {
            if g == Gate::Never {
                probes[i].dispatched = true;
            }
        }
        if members.len() < MIN_HANDLERS || (ev == Event::Exit && orig_ax.is_none()) {
            continue;
        }
        let mut count: HashMap<i64, usize> = HashMap::new();
        for (_, g) in members {
            if let Gate::Only(k) = g {
                *count.entry(*k).or_default() += 1;
            }
        }
        let map = module.add_map(MapDef::new(
            format!("stx_disp{}", out.len()),
            MapKind::ProgArray,
            4,
            4,
            SLOTS,
        ));
        let mut slots = Vec::new();
        for &(i, g) in members {
            match g {
                Gate::Only(k) if (0..SLOTS as i64).contains(&k) && count[&k] == 1 => {
                    slots.push((k as u32, probes[i].prog));
                    probes[i].dispatched = true;
                }
                _ => {}
            }
        }
        let entry = module.asm.add(
            format!("stx_d{}", out.len()),
            FuncKind::Entry,
            1,
            code(ev, map, orig_ax.unwrap_or(0)),
        );
        let kind = probes[members[0].0].kind.clone();
        let prog = module.add_program(format!("stx_d{}", out.len()), kind.clone(), entry);
        out.push(Dispatcher {
            prog,
            kind,
            site: site.clone(),
            map,
            slots,
        });
    }
    out
}

/// r6 = context; r3 = the call's number (`id`, or `regs->orig_ax` as an
/// int); a tail call into slot r3; an empty slot or a number out of range
/// falls through to the end.
fn code(ev: Event, map: MapId, orig_ax: u32) -> FuncAsm {
    let mut f = FuncAsm::new();
    // No script line: the dispatcher is ours, not a probe's.
    f.set_tag(u32::MAX);
    let out = f.new_label();
    f.emit(Insn::mov64_reg(R6, R1));
    match ev {
        Event::Enter => f.emit(Insn::ldx(Size::DW, R3, R6, 8)),
        Event::Exit => {
            f.emit(Insn::ldx(Size::DW, R3, R6, 0));
            f.emit(Insn::alu64_imm(Alu::Add, R3, orig_ax as i32));
            f.emit(Insn::mov64_reg(R1, R10));
            f.emit(Insn::alu64_imm(Alu::Add, R1, -8));
            f.emit(Insn::mov64_imm(R2, 8));
            f.call_helper(H_READ_KERNEL);
            f.jmp_imm(Cond::Ne, R0, 0, out);
            f.emit(Insn::ldx(Size::DW, R3, R10, -8));
            f.emit(Insn::alu64_imm(Alu::Lsh, R3, 32));
            f.emit(Insn::alu64_imm(Alu::Arsh, R3, 32));
        }
    }
    f.jmp_imm(Cond::Ge, R3, SLOTS as i32, out);
    f.emit(Insn::mov64_reg(R1, R6));
    f.ld_map_fd(R2, map);
    f.call_helper(H_TAIL_CALL);
    f.bind(out);
    f.emit(Insn::mov64_imm(R0, 0));
    f.emit(Insn::exit());
    f
}
