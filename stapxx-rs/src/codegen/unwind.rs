//! User-stack unwinding in kernel probes (`ubacktrace()`, `ucallers(n)`,
//! `ustack(n)`, `print_ubacktrace()`), by the target's call-frame
//! information, so it works without frame pointers.
//!
//! One `bpf_loop` iteration per frame: record the pc (as hex, straight into
//! the result string), find its row in the packed table (`crate::unwind`,
//! one map value, binary search: no helper call), compute the CFA from
//! `rsp`/`rbp`, read the return address at CFA-8 and the caller's `rbp`
//! where the row says it was saved. Callers are looked up at `pc - 1` (the
//! call, not the instruction after it); the pcs themselves are recorded as
//! stap records them, return addresses as they are.
//!
//! A walk ends at the outermost frame (undefined return address, or 0),
//! at MAXBACKTRACE frames, at a pc no row covers, or at an unreadable
//! stack: each is counted in `stx_unwind` (`crate::unwind::STAT_*`), never
//! guessed past.

use super::emit::{Gen, SLoc, R};
use super::layout::*;
use super::regs::*;
use crate::ir::Expr;
use crate::unwind::*;
use ebpf_backend::insn::{Alu, AtomicOp, Cond, Size};
use ebpf_backend::Insn;

/// `rsp` and `rbp` in x86-64's `struct pt_regs`.
const PT_SP_OFF: i16 = 19 * 8;
const PT_BP_OFF: i16 = 4 * 8;

/// What a walk gives: which frames become text, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Frames {
    /// `ubacktrace()`: every frame, each `0x...` and a space.
    All,
    /// `ucallers(n)`: frames 0..=n (all for -1), space-separated.
    Callers,
}

impl Gen<'_> {
    /// `dst` = the hex backtrace of the current task's user stack.
    /// `limit`: `ucallers`' n (else every frame up to MAXBACKTRACE).
    /// `from`: the registers to start at (pc, sp, fp), else the probe's.
    pub(super) fn ubacktrace(
        &mut self,
        dst: SLoc,
        how: Frames,
        limit: Option<&Expr>,
        from: Option<&[Expr]>,
    ) -> R<()> {
        let maxbt = self.o.maxbacktrace.max(1) as i64;
        let [pc, sp, bp] = [(); 3].map(|_| self.tmp_long());
        if let Some(regs) = from {
            for (e, t) in regs.iter().zip([pc, sp, bp]) {
                self.long(e)?;
                self.st_local(t, R0);
            }
        }
        let lim = self.tmp_long();
        match limit {
            Some(e) => {
                self.long(e)?;
                let (all, set) = (self.label(), self.label());
                self.jimm(Cond::Slt, R0, 0, all);
                self.e(Insn::alu64_imm(Alu::Add, R0, 1));
                self.jmp(set);
                self.bind(all);
                self.mov_imm(R0, maxbt);
                self.bind(set);
                self.st_local(lim, R0);
            }
            None => {
                self.mov_imm(R0, maxbt);
                self.st_local(lim, R0);
            }
        }
        self.set_empty(dst);
        let [n, why, word] = [(); 3].map(|_| self.tmp_long());
        self.e(Insn::st_imm(Size::DW, R7, n, 0));
        self.e(Insn::st_imm(Size::DW, R7, why, STAT_COMPLETE as i32));
        if from.is_none() {
            self.user_regs_for_unwind();
            self.e(Insn::ldx(Size::DW, R1, R6, F_REGS + PT_IP_OFF));
            self.st_local(pc, R1);
            self.e(Insn::ldx(Size::DW, R1, R6, F_REGS + PT_SP_OFF));
            self.st_local(sp, R1);
            self.e(Insn::ldx(Size::DW, R1, R6, F_REGS + PT_BP_OFF));
            self.st_local(bp, R1);
        }
        let after = self.label();
        self.ld_local(R1, pc);
        self.jimm(Cond::Eq, R1, 0, after);

        let cb = self.cb_open(2, false);
        let stop = cb.stop;
        {
            let stop_why = |g: &mut Self, w: usize| {
                g.e(Insn::st_imm(Size::DW, R7, why, w as i32));
                g.jmp(stop);
            };
            // Enough frames for `ucallers(n)`: a complete answer.
            self.ld_local(R1, n);
            self.ld_local(R2, lim);
            let more = self.label();
            self.jreg(Cond::Lt, R1, R2, more);
            stop_why(self, STAT_COMPLETE);
            self.bind(more);
            self.ld_local(R3, pc);
            self.append_hex(dst);
            self.ld_local(R1, n);
            self.e(Insn::alu64_imm(Alu::Add, R1, 1));
            self.st_local(n, R1);
            let Some((map, l)) = self.m.ucfi_map.filter(|(_, l)| l.count > 0) else {
                stop_why(self, STAT_NO_CFI);
                return self.finish_unwind(cb, dst, how, n, why, after);
            };
            // The row of the pc (a caller's: of its call instruction).
            self.ld_local(R4, pc);
            let first = self.label();
            self.jimm(Cond::Eq, R1, 1, first);
            self.e(Insn::alu64_imm(Alu::Sub, R4, 1));
            self.bind(first);
            self.ld_map_value(R1, map, 0);
            let lo = self.search_sorted(l.count, l.cap);
            let (no_cfi, have) = (self.label(), self.label());
            self.ld_local(R2, lo);
            self.e(Insn::alu64_imm(Alu::And, R2, (l.cap - 1) as i32));
            self.e(Insn::alu64_imm(Alu::Lsh, R2, 3));
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.e(Insn::ldx(Size::DW, R0, R2, 0));
            self.jreg(Cond::Gt, R0, R4, no_cfi);
            // r3 = the rule; r5 = the CFA's base register by its kind.
            // (The rules start past the addresses: further than a 16-bit
            // load offset reaches.)
            self.e(Insn::alu64_imm(Alu::Add, R2, l.rules_at() as i32));
            self.e(Insn::ldx(Size::DW, R3, R2, 0));
            self.st_local(word, R3);
            self.e(Insn::mov64_reg(R2, R3));
            self.e(Insn::alu64_imm(Alu::And, R2, 0xff));
            let (rsp, rbp, plt, outer) = (self.label(), self.label(), self.label(), self.label());
            self.jimm(Cond::Eq, R2, K_RSP as i32, rsp);
            self.jimm(Cond::Eq, R2, K_RBP as i32, rbp);
            self.jimm(Cond::Eq, R2, K_PLT as i32, plt);
            self.jimm(Cond::Eq, R2, K_OUTERMOST as i32, outer);
            self.jmp(no_cfi);
            self.bind(outer);
            stop_why(self, STAT_COMPLETE);
            self.bind(no_cfi);
            stop_why(self, STAT_NO_CFI);
            self.bind(rbp);
            self.ld_local(R5, bp);
            self.jmp(have);
            self.bind(plt);
            // + 8 once the slot's push ran: (pc & 15) >= threshold.
            self.ld_local(R5, sp);
            self.ld_local(R0, pc);
            self.e(Insn::alu64_imm(Alu::And, R0, 15));
            self.e(Insn::mov64_reg(R2, R3));
            self.e(Insn::alu64_imm(Alu::Rsh, R2, 16));
            self.e(Insn::alu64_imm(Alu::And, R2, 0xff));
            self.jreg(Cond::Lt, R0, R2, have);
            self.e(Insn::alu64_imm(Alu::Add, R5, 8));
            self.jmp(have);
            self.bind(rsp);
            self.ld_local(R5, sp);
            self.bind(have);
            // CFA = base + (i32)(rule >> 32); the new sp.
            self.e(Insn::alu64_imm(Alu::Arsh, R3, 32));
            self.e(Insn::alu64_reg(Alu::Add, R5, R3));
            self.st_local(sp, R5);
            // The return address, at CFA - 8: the next pc.
            self.local_addr(R1, pc);
            self.mov_imm(R2, 8);
            self.e(Insn::mov64_reg(R3, R5));
            self.e(Insn::alu64_imm(Alu::Sub, R3, 8));
            self.call(H_READ_USER);
            let read_ok = self.label();
            self.jimm(Cond::Eq, R0, 0, read_ok);
            stop_why(self, STAT_READ_FAIL);
            self.bind(read_ok);
            // The caller's rbp, where this frame saved it.
            let kept = self.label();
            self.ld_local(R3, word);
            self.e(Insn::mov64_reg(R2, R3));
            self.e(Insn::alu64_imm(Alu::Rsh, R2, 8));
            self.e(Insn::alu64_imm(Alu::And, R2, 0xff));
            self.jimm(Cond::Ne, R2, RBP_SAVED as i32, kept);
            // (i16)(rule >> 16)
            self.e(Insn::alu64_imm(Alu::Lsh, R3, 32));
            self.e(Insn::alu64_imm(Alu::Arsh, R3, 48));
            self.ld_local(R2, sp);
            self.e(Insn::alu64_reg(Alu::Add, R3, R2));
            self.local_addr(R1, bp);
            self.mov_imm(R2, 8);
            self.call(H_READ_USER);
            self.jimm(Cond::Eq, R0, 0, kept);
            stop_why(self, STAT_READ_FAIL);
            self.bind(kept);
            self.ld_local(R1, pc);
            self.jimm(Cond::Ne, R1, 0, cb.next);
            stop_why(self, STAT_COMPLETE);
        }
        self.finish_unwind(cb, dst, how, n, why, after)
    }

    /// Close the walk's callback, run it, and count how it ended.
    fn finish_unwind(
        &mut self,
        cb: super::callback::Cb,
        dst: SLoc,
        how: Frames,
        n: i16,
        why: i16,
        after: ebpf_backend::Label,
    ) -> R<()> {
        let f = self.cb_close(cb, "unwind");
        self.mov_imm(R1, self.o.maxbacktrace.max(1) as i64);
        self.call_loop(f);
        // All MAXBACKTRACE iterations ran without a stop: more frames were
        // there.
        let stopped = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.jimm(Cond::Set, R1, FLAG_LOOP_DONE, stopped);
        self.e(Insn::st_imm(Size::DW, R7, why, STAT_MAX as i32));
        self.bind(stopped);
        if let Some(stats) = self.m.unwind_stats {
            self.ld_map_value(R2, stats, 0);
            self.mov_imm(R3, 1);
            self.e(Insn::atomic(
                Size::DW,
                AtomicOp::Add,
                R2,
                (STAT_STACKS * 8) as i16,
                R3,
            ));
            self.ld_local(R3, n);
            self.e(Insn::atomic(
                Size::DW,
                AtomicOp::Add,
                R2,
                (STAT_FRAMES * 8) as i16,
                R3,
            ));
            self.ld_local(R1, why);
            self.e(Insn::alu64_imm(Alu::And, R1, 7));
            self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.mov_imm(R3, 1);
            self.e(Insn::atomic(Size::DW, AtomicOp::Add, R2, 0, R3));
        }
        self.bind(after);
        if how == Frames::Callers {
            // Separators between frames only: drop the last one.
            let empty = self.label();
            self.sloc_addr(R1, dst);
            self.e(Insn::ldx(Size::DW, R2, R1, 0));
            self.jimm(Cond::Eq, R2, 0, empty);
            self.e(Insn::alu64_imm(Alu::Sub, R2, 1));
            self.e(Insn::alu64_imm(Alu::And, R2, (self.o.maxstr - 1) as i32));
            self.e(Insn::stx(Size::DW, R1, 0, R2));
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.e(Insn::st_imm(Size::B, R1, 8, 0));
            self.bind(empty);
        }
        Ok(())
    }

    /// Probes whose context has no registers (tracepoints): the task's
    /// saved user registers, as kernel-mode samples get them at entry.
    fn user_regs_for_unwind(&mut self) {
        let have = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_REGS + PT_IP_OFF));
        self.jimm(Cond::Ne, R1, 0, have);
        self.task_user_regs();
        self.bind(have);
    }

    /// Append `0x<hex of r3> ` to `dst` (nothing once fewer than the 20
    /// bytes it may take are left: the string ends at the last whole
    /// address). Branch-free digits: every nibble is written, and the
    /// write point moves on from the first non-zero one.
    pub(super) fn append_hex(&mut self, dst: SLoc) {
        let cap = self.o.strcap as i32;
        if cap < 24 {
            return;
        }
        let full = self.label();
        self.sloc_addr(R1, dst);
        self.e(Insn::ldx(Size::DW, R4, R1, 0));
        self.e(Insn::alu64_imm(Alu::And, R4, (self.o.maxstr - 1) as i32));
        self.jimm(Cond::Gt, R4, cap - 21, full);
        // r2: the write offset from dst (a bounded scalar, not a pointer:
        // the length is then r2 - 8 without pointer arithmetic).
        self.e(Insn::mov64_reg(R2, R4));
        self.e(Insn::alu64_imm(Alu::Add, R2, 8));
        self.e(Insn::mov64_reg(R4, R1));
        self.e(Insn::alu64_reg(Alu::Add, R4, R2));
        self.e(Insn::st_imm(Size::B, R4, 0, b'0' as i32));
        self.e(Insn::st_imm(Size::B, R4, 1, b'x' as i32));
        self.e(Insn::alu64_imm(Alu::Add, R2, 2));
        // r5: whether a digit has been kept (the last one always is).
        self.e(Insn::mov64_imm(R5, 0));
        for shift in (0..16).rev() {
            self.e(Insn::mov64_reg(R0, R3));
            if shift > 0 {
                self.e(Insn::alu64_imm(Alu::Rsh, R0, shift * 4));
            }
            self.e(Insn::alu64_imm(Alu::And, R0, 15));
            // kept |= nibble != 0 (or the last nibble)
            if shift == 0 {
                self.e(Insn::mov64_imm(R5, 1));
            } else {
                self.e(Insn::mov64_reg(R4, R0));
                self.e(Insn::alu64_imm(Alu::Add, R4, 15));
                self.e(Insn::alu64_imm(Alu::Rsh, R4, 4));
                self.e(Insn::alu64_reg(Alu::Or, R5, R4));
            }
            // '0' + d, + 39 more for a..f: (d + 6) >> 4 is 1 exactly then.
            self.e(Insn::mov64_reg(R4, R0));
            self.e(Insn::alu64_imm(Alu::Add, R4, 6));
            self.e(Insn::alu64_imm(Alu::Rsh, R4, 4));
            self.e(Insn::alu64_imm(Alu::Mul, R4, 39));
            self.e(Insn::alu64_reg(Alu::Add, R0, R4));
            self.e(Insn::alu64_imm(Alu::Add, R0, b'0' as i32));
            self.e(Insn::mov64_reg(R4, R1));
            self.e(Insn::alu64_reg(Alu::Add, R4, R2));
            self.e(Insn::stx(Size::B, R4, 0, R0));
            self.e(Insn::alu64_reg(Alu::Add, R2, R5));
        }
        self.e(Insn::mov64_reg(R4, R1));
        self.e(Insn::alu64_reg(Alu::Add, R4, R2));
        self.e(Insn::st_imm(Size::B, R4, 0, b' ' as i32));
        self.e(Insn::st_imm(Size::B, R4, 1, 0));
        self.e(Insn::alu64_imm(Alu::Sub, R2, 7));
        self.e(Insn::stx(Size::DW, R1, 0, R2));
        self.bind(full);
    }
}

impl Gen<'_> {
    /// `r` = the address of the long temp or local at `off` (from r7).
    fn local_addr(&mut self, r: ebpf_backend::insn::Reg, off: i16) {
        self.e(Insn::mov64_reg(r, R7));
        self.e(Insn::alu64_imm(Alu::Add, r, off as i32));
    }
}
