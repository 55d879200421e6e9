//! A handler on the raw `sys_enter`/`sys_exit` tracepoints that is only
//! for one system call (`ir::gate`) tests the call's number first thing,
//! before its frame is set up: every system call runs every such handler
//! (SystemTap's `tp_syscall.*` aliases, hundreds under `syscall.*`), and
//! for all calls but its own that test is all it does.
//!
//! The number: `sys_enter`'s `id` argument; for `sys_exit`, `orig_ax` of
//! its `regs` argument (where the handler's `_stp_syscall_nr()` reads it).
//! When that read fails the handler runs as written and decides itself.

use super::dispatch::{event, Event};
use super::emit::Gen;
use super::regs::*;
use crate::ir::gate::{syscall_gate, Gate};
use ebpf_backend::insn::R10;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;

impl Gen<'_> {
    /// With the context in r9: leave unless this is the handler's call.
    pub(super) fn syscall_gate_check(&mut self, pi: usize) {
        let probe = &self.p.probes[pi];
        let Some(k) = syscall_gate(&probe.body) else {
            return;
        };
        let Some(first) = probe.sites.first().and_then(event) else {
            return;
        };
        if probe.sites.iter().any(|s| event(s) != Some(first)) {
            return;
        }
        let k = match k {
            Gate::Only(k) => k,
            // A handler whose start always leaves (SystemTap's compat-only
            // calls, for 32-bit tasks, which ours are not): let only number
            // -1 (no call) through, to the handler's own gate, so that the
            // verifier still sees the rest of the program reachable.
            Gate::Never => -1,
        };
        let run = self.label();
        match first {
            // Raw tracepoint arguments are u64s: `id` is the second.
            Event::Enter => self.e(Insn::ldx(Size::DW, R1, R9, 8)),
            Event::Exit => {
                let Some(o) = self.o.pt_regs else {
                    return;
                };
                self.e(Insn::ldx(Size::DW, R3, R9, 0));
                self.e(Insn::alu64_imm(Alu::Add, R3, o.orig_ax as i32));
                self.e(Insn::mov64_reg(R1, R10));
                self.e(Insn::alu64_imm(Alu::Add, R1, -8));
                self.mov_imm(R2, 8);
                self.call(H_READ_KERNEL);
                self.jimm(Cond::Ne, R0, 0, run);
                self.e(Insn::ldx(Size::DW, R1, R10, -8));
            }
        }
        // The number as `_stp_syscall_nr()` gives it: an int.
        self.e(Insn::alu64_imm(Alu::Lsh, R1, 32));
        self.e(Insn::alu64_imm(Alu::Arsh, R1, 32));
        self.mov_imm(R2, k);
        self.jreg(Cond::Eq, R1, R2, run);
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(run);
    }
}
