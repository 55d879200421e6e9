//! Kernel stacks in kernel probes: `backtrace()` (hex addresses, as stap's
//! `_STP_SYM_NONE` prints them) and `print_backtrace()`, from the kernel's
//! own unwinder through `bpf_get_stack` on the probe's context. The host
//! symbolizes printed stacks with kallsyms (`runtime/ustack.rs`, module
//! `kernel` as stap names it).

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use super::unsupported;
use ebpf_backend::helpers::GET_STACK as H_GET_STACK;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::Span;

/// Where the entry spills the context (`Options::kernel_stack`), below
/// the frame-lookup key at -4.
pub(super) const CTX_SLOT: i16 = -16;

/// `bpf_get_stack` returns at most this many frames (the kernel's
/// `perf_event_max_stack` default).
const MAX_KERNEL_FRAMES: u32 = 127;

impl Gen<'_> {
    /// `dst` = the kernel stack of the probe's context as hex addresses.
    pub(super) fn backtrace(&mut self, dst: SLoc, span: Span) -> R<()> {
        if self.loop_depth > 0 || !self.o.kernel_stack {
            // The context is only at hand in the handler's own body.
            return Err(unsupported(span, "backtrace() inside a loop"));
        }
        let frames = self.o.maxbacktrace.clamp(1, MAX_KERNEL_FRAMES);
        let slots = frames.next_power_of_two();
        let buf = self.tmp_bytes(slots * 8);
        let n = self.tmp_long();
        self.e(Insn::ldx(Size::DW, R1, ebpf_backend::insn::R10, CTX_SLOT));
        self.frame_addr(R2, buf);
        self.mov_imm(R3, i64::from(frames * 8));
        self.e(Insn::mov64_imm(R4, 0));
        self.call(H_GET_STACK);
        let got = self.label();
        self.jimm(Cond::Sgt, R0, 0, got);
        self.e(Insn::mov64_imm(R0, 0));
        self.bind(got);
        self.e(Insn::alu64_imm(Alu::Rsh, R0, 3));
        self.st_local(n, R0);
        self.set_empty(dst);
        let cb = self.cb_open(2, false);
        {
            self.cb_arg(R1, 0);
            self.e(Insn::alu64_imm(Alu::And, R1, (slots - 1) as i32));
            self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
            self.frame_addr(R2, buf);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.e(Insn::ldx(Size::DW, R3, R2, 0));
            self.append_hex(dst);
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "kstack");
        let none = self.label();
        self.ld_local(R1, n);
        self.jimm(Cond::Eq, R1, 0, none);
        self.call_loop(f);
        self.bind(none);
        Ok(())
    }
}
