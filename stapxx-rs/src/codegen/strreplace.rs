//! `str_replace(s, old, new)` in kernel probes: every occurrence of `old`
//! in `s`, left to right and not overlapping, replaced by `new` (stap's
//! semantics; an empty `old` leaves `s` as it is; the result is cut at
//! MAXSTRINGLEN as stap's `strlcat` cuts it).
//!
//! One `bpf_loop` over the positions of `s`: a position inside a match
//! just taken is skipped; at a match (the needle compared a word at a time
//! by an inner loop, as `isinstr` does) `new` is appended, else the byte.

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use crate::ir::Expr;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;

impl Gen<'_> {
    pub(super) fn str_replace(&mut self, dst: SLoc, args: &[Expr]) -> R<()> {
        let copy = |g: &mut Self, e: &Expr| -> R<u32> {
            let s = g.string(e)?;
            let t = g.tmp_str();
            g.copy_str(SLoc::Frame(t), s);
            Ok(t)
        };
        let hay = copy(self, &args[0])?;
        let old = copy(self, &args[1])?;
        let new = copy(self, &args[2])?;
        let (skip, miss, pos) = (self.tmp_long(), self.tmp_long(), self.tmp_long());
        let max = self.o.maxstr as i32;
        let last = (self.o.strcap - 1) as i32;
        let done = self.label();
        // An empty `old`: `s` itself.
        self.copy_str(dst, SLoc::Frame(hay));
        self.frame_addr(R1, old);
        self.e(Insn::ldx(Size::DW, R2, R1, 0));
        self.jimm(Cond::Eq, R2, 0, done);
        self.set_empty(dst);
        self.e(Insn::st_imm(Size::DW, R7, skip, 0));
        let outer = self.cb_open(2, false);
        {
            self.cb_arg(R1, 0);
            self.st_local(pos, R1);
            self.ld_local(R2, skip);
            self.jreg(Cond::Slt, R1, R2, outer.next);
            // A match needs len(old) bytes left from pos.
            self.e(Insn::st_imm(Size::DW, R7, miss, 1));
            self.frame_addr(R3, hay);
            self.e(Insn::ldx(Size::DW, R3, R3, 0));
            self.e(Insn::alu64_reg(Alu::Sub, R3, R1));
            self.frame_addr(R4, old);
            self.e(Insn::ldx(Size::DW, R4, R4, 0));
            let no_room = self.label();
            self.jreg(Cond::Slt, R3, R4, no_room);
            self.needle_at(hay, old, pos, miss, "str_replace_at");
            self.bind(no_room);
            let byte = self.label();
            self.ld_local(R1, miss);
            self.jimm(Cond::Ne, R1, 0, byte);
            // A match: `new`, and the positions of `old` skipped.
            self.append_str(dst, SLoc::Frame(new));
            self.ld_local(R1, pos);
            self.frame_addr(R2, old);
            self.e(Insn::ldx(Size::DW, R2, R2, 0));
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.st_local(skip, R1);
            self.jmp(outer.next);
            self.bind(byte);
            // No match: the byte at pos, while there is room.
            self.sloc_addr(R1, dst);
            self.e(Insn::ldx(Size::DW, R2, R1, 0));
            self.jimm(Cond::Sge, R2, last, outer.stop);
            self.e(Insn::alu64_imm(Alu::And, R2, max - 1));
            self.ld_local(R3, pos);
            self.e(Insn::alu64_imm(Alu::And, R3, max - 1));
            self.frame_addr(R4, hay + 8);
            self.e(Insn::alu64_reg(Alu::Add, R4, R3));
            self.e(Insn::ldx(Size::B, R4, R4, 0));
            self.sloc_addr(R1, dst);
            self.e(Insn::alu64_imm(Alu::Add, R1, 8));
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.e(Insn::stx(Size::B, R1, 0, R4));
            self.e(Insn::st_imm(Size::B, R1, 1, 0));
            self.sloc_addr(R1, dst);
            self.e(Insn::alu64_imm(Alu::Add, R2, 1));
            self.e(Insn::stx(Size::DW, R1, 0, R2));
        }
        let f = self.cb_close(outer, "str_replace");
        self.frame_addr(R1, hay);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.call_loop(f);
        self.bind(done);
        Ok(())
    }
}
