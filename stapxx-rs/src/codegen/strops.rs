//! String operations that need a loop in BPF: comparing two computed
//! strings, `isinstr` and `strtol`. Each runs as a `bpf_loop` callback over
//! the bytes (a word at a time where it can), so it costs what the strings'
//! lengths cost, not MAXSTRINGLEN.

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use crate::ir::*;
use ebpf_backend::insn::{Alu, Cond, Reg, Size};
use ebpf_backend::Insn;

/// The address of string bytes (not of a slot's length field).
#[derive(Debug, Clone, Copy)]
pub(super) enum Mem {
    /// At this offset from the frame start.
    Frame(u32),
    /// At this offset in the globals map value.
    Global(u32),
}

impl Mem {
    /// The bytes of a string slot.
    pub(super) fn data_of(s: SLoc) -> Mem {
        match s {
            SLoc::Frame(o) => Mem::Frame(o + 8),
            SLoc::Global(o) => Mem::Global(o + 8),
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

impl<'a> Gen<'a> {
    pub(super) fn mem_addr(&mut self, r: Reg, m: Mem) {
        match m {
            Mem::Frame(o) => self.frame_addr(r, o),
            Mem::Global(o) => {
                let gm = self.m.globals_map;
                self.ld_map_value(r, gm, o)
            }
        }
    }

    /// `r0` = -1, 0 or 1 as `strcmp` orders the NUL-terminated strings at
    /// `a` and `b` (unsigned bytes). Each has MAXSTRINGLEN readable bytes.
    pub(super) fn strcmp_mem(&mut self, a: Mem, b: Mem) {
        let res = self.tmp_long();
        self.e(Insn::st_imm(Size::DW, R7, res, 0));
        let cb = self.cb_open(2, false);
        self.cb_arg(R1, 0);
        self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
        self.e(Insn::alu64_imm(Alu::And, R1, (self.o.maxstr - 1) as i32));
        self.mem_addr(R2, a);
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        self.mem_addr(R3, b);
        self.e(Insn::alu64_reg(Alu::Add, R3, R1));
        self.e(Insn::ldx(Size::DW, R4, R2, 0));
        self.e(Insn::ldx(Size::DW, R5, R3, 0));
        let diff = self.label();
        self.jreg(Cond::Ne, R4, R5, diff);
        // Equal words: the strings are equal if this word holds their NUL.
        self.has_zero_byte(R4);
        self.jimm(Cond::Ne, R0, 0, cb.stop);
        self.jmp(cb.next);
        self.bind(diff);
        for j in 0..8 {
            self.e(Insn::ldx(Size::B, R4, R2, j));
            self.e(Insn::ldx(Size::B, R5, R3, j));
            let same = self.label();
            let less = self.label();
            self.jreg(Cond::Eq, R4, R5, same);
            self.jreg(Cond::Lt, R4, R5, less);
            self.e(Insn::st_imm(Size::DW, R7, res, 1));
            self.jmp(cb.stop);
            self.bind(less);
            self.e(Insn::st_imm(Size::DW, R7, res, -1));
            self.jmp(cb.stop);
            self.bind(same);
            self.jimm(Cond::Eq, R4, 0, cb.stop);
        }
        self.jmp(cb.stop);
        let f = self.cb_close(cb, "strcmp");
        self.mov_imm(R1, (self.o.maxstr / 8) as i64);
        self.call_loop(f);
        self.ld_local(R0, res);
    }

    /// `r0` != 0 iff the word in `w` has a zero byte (`w` is clobbered).
    fn has_zero_byte(&mut self, w: Reg) {
        self.e(Insn::mov64_reg(R0, w));
        self.e2(Insn::ld_imm64(R1, ONES));
        self.e(Insn::alu64_reg(Alu::Sub, R0, R1));
        self.e(Insn::alu64_imm(Alu::Xor, w, -1));
        self.e(Insn::alu64_reg(Alu::And, R0, w));
        self.e2(Insn::ld_imm64(R1, HIGHS));
        self.e(Insn::alu64_reg(Alu::And, R0, R1));
    }

    /// A string operand copied into a fresh frame slot: a later operand's
    /// evaluation (an inlined call writing its return slot) cannot change it.
    fn string_copy(&mut self, e: &Expr) -> R<u32> {
        let s = self.string(e)?;
        let t = self.tmp_str();
        self.copy_str(SLoc::Frame(t), s);
        Ok(t)
    }

    /// `a OP b` for two computed strings: `r0` = 0 or 1.
    pub(super) fn str_cmp_general(&mut self, op: CmpOp, a: &Expr, b: &Expr) -> R<()> {
        let ta = self.string_copy(a)?;
        let sb = self.string(b)?;
        self.strcmp_mem(Mem::Frame(ta + 8), Mem::data_of(sb));
        self.bool_of_cmp(op);
        Ok(())
    }

    /// `r0` = (r0 OP 0) for a comparison result in `r0`.
    pub(super) fn bool_of_cmp(&mut self, op: CmpOp) {
        let c = super::expr::cmp_cond(op);
        self.bool_of_jump(|g, yes| g.jimm(c, R0, 0, yes));
    }

    /// `isinstr(s1, s2)`: `r0` = 1 if `s2` occurs in `s1`. Every start
    /// position is tried (outer loop), comparing a word at a time, the last
    /// word masked to the needle's length (inner loop).
    pub(super) fn isinstr(&mut self, hay: &Expr, needle: &Expr) -> R<()> {
        let t1 = self.string_copy(hay)?;
        let t2 = self.string_copy(needle)?;
        let (res, miss, pos) = (self.tmp_long(), self.tmp_long(), self.tmp_long());
        self.e(Insn::st_imm(Size::DW, R7, res, 1));
        let done = self.label();
        // An empty needle is found anywhere.
        self.frame_addr(R1, t2);
        self.e(Insn::ldx(Size::DW, R2, R1, 0));
        self.jimm(Cond::Eq, R2, 0, done);
        self.e(Insn::st_imm(Size::DW, R7, res, 0));
        self.frame_addr(R1, t1);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.e(Insn::alu64_reg(Alu::Sub, R1, R2));
        self.jimm(Cond::Slt, R1, 0, done);
        self.e(Insn::alu64_imm(Alu::Add, R1, 1));
        let outer = self.cb_open(2, false);
        {
            self.cb_arg(R1, 0);
            self.st_local(pos, R1);
            self.needle_at(t1, t2, pos, miss, "isinstr_at");
            self.ld_local(R1, miss);
            self.jimm(Cond::Ne, R1, 0, outer.next);
            self.e(Insn::st_imm(Size::DW, R7, res, 1));
            self.jmp(outer.stop);
        }
        let f = self.cb_close(outer, "isinstr");
        self.call_loop(f);
        self.bind(done);
        self.ld_local(R0, res);
        Ok(())
    }

    /// `miss` = 0 if the needle (string slot `needle`, not empty) occurs in
    /// the haystack (slot `hay`) at the position in the long `pos`, else 1:
    /// an inner loop comparing a word at a time, the last word masked to
    /// the needle's length. The haystack must have the needle's length of
    /// bytes from `pos` on (the callers check).
    pub(super) fn needle_at(&mut self, hay: u32, needle: u32, pos: i16, miss: i16, name: &str) {
        let max = self.o.maxstr as i32;
        self.e(Insn::st_imm(Size::DW, R7, miss, 0));
        let inner = self.cb_open(2, false);
        {
            // Word w of the needle against the haystack at pos + 8w.
            self.cb_arg(R1, 0);
            self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
            self.e(Insn::alu64_imm(Alu::And, R1, max - 1));
            self.ld_local(R2, pos);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.e(Insn::alu64_imm(Alu::And, R2, max - 1));
            self.frame_addr(R3, hay + 8);
            self.e(Insn::alu64_reg(Alu::Add, R3, R2));
            self.e(Insn::ldx(Size::DW, R4, R3, 0));
            self.frame_addr(R3, needle + 8);
            self.e(Insn::alu64_reg(Alu::Add, R3, R1));
            self.e(Insn::ldx(Size::DW, R5, R3, 0));
            // Bytes of the needle left from this word on.
            self.frame_addr(R3, needle);
            self.e(Insn::ldx(Size::DW, R3, R3, 0));
            self.e(Insn::alu64_reg(Alu::Sub, R3, R1));
            let full = self.label();
            self.jimm(Cond::Sge, R3, 8, full);
            self.e(Insn::alu64_imm(Alu::Lsh, R3, 3));
            self.e(Insn::mov64_imm(R0, 1));
            self.e(Insn::alu64_reg(Alu::Lsh, R0, R3));
            self.e(Insn::alu64_imm(Alu::Sub, R0, 1));
            self.e(Insn::alu64_reg(Alu::And, R4, R0));
            self.e(Insn::alu64_reg(Alu::And, R5, R0));
            self.bind(full);
            self.jreg(Cond::Eq, R4, R5, inner.next);
            self.e(Insn::st_imm(Size::DW, R7, miss, 1));
            self.jmp(inner.stop);
        }
        let f = self.cb_close(inner, name);
        self.frame_addr(R1, needle);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.e(Insn::alu64_imm(Alu::Add, R1, 7));
        self.e(Insn::alu64_imm(Alu::Rsh, R1, 3));
        self.call_loop(f);
    }

    /// `strtol(s, base)` with the kernel's `simple_strtol` rules (as the host
    /// interpreter's `strtol`): an optional `-`, base 0 picks 16 (`0x`), 8
    /// (leading `0`) or 10, a `0x` prefix is skipped in base 16, and digits
    /// are taken while they are below the base.
    pub(super) fn strtol(&mut self, s: &Expr, base: &Expr) -> R<()> {
        self.long(base)?;
        let b = self.tmp_long();
        // The kernel takes the base as an unsigned int.
        self.e(Insn::alu64_imm(Alu::Lsh, R0, 32));
        self.e(Insn::alu64_imm(Alu::Rsh, R0, 32));
        self.st_local(b, R0);
        let t = self.string_copy(s)?;
        let (neg, p, v) = (self.tmp_long(), self.tmp_long(), self.tmp_long());
        self.e(Insn::st_imm(Size::DW, R7, neg, 0));
        self.e(Insn::st_imm(Size::DW, R7, p, 0));
        self.e(Insn::st_imm(Size::DW, R7, v, 0));
        self.frame_addr(R2, t + 8);
        self.e(Insn::ldx(Size::B, R1, R2, 0));
        let unsigned = self.label();
        self.jimm(Cond::Ne, R1, b'-' as i32, unsigned);
        self.e(Insn::st_imm(Size::DW, R7, neg, 1));
        self.e(Insn::st_imm(Size::DW, R7, p, 1));
        self.e(Insn::alu64_imm(Alu::Add, R2, 1));
        self.bind(unsigned);
        // r2 = the first digit's address; r3 = whether "0x" follows there.
        let (hex, no_hex) = (self.label(), self.label());
        self.e(Insn::mov64_imm(R3, 0));
        self.e(Insn::ldx(Size::B, R1, R2, 0));
        self.jimm(Cond::Ne, R1, b'0' as i32, no_hex);
        self.e(Insn::ldx(Size::B, R1, R2, 1));
        self.e(Insn::alu64_imm(Alu::Or, R1, 0x20));
        self.jimm(Cond::Ne, R1, b'x' as i32, no_hex);
        self.bind(hex);
        self.e(Insn::mov64_imm(R3, 1));
        self.bind(no_hex);
        let known = self.label();
        self.ld_local(R4, b);
        self.jimm(Cond::Ne, R4, 0, known);
        // Base 0: 10, or 8 after a leading 0, or 16 after "0x" and a hex digit.
        self.e(Insn::mov64_imm(R4, 10));
        self.e(Insn::ldx(Size::B, R1, R2, 0));
        self.jimm(Cond::Ne, R1, b'0' as i32, known);
        self.e(Insn::mov64_imm(R4, 8));
        self.jimm(Cond::Eq, R3, 0, known);
        self.e(Insn::ldx(Size::B, R1, R2, 2));
        self.digit_value(R1, R0);
        self.jimm(Cond::Ge, R0, 16, known);
        self.e(Insn::mov64_imm(R4, 16));
        self.bind(known);
        self.st_local(b, R4);
        let digits = self.label();
        self.jimm(Cond::Ne, R4, 16, digits);
        self.jimm(Cond::Eq, R3, 0, digits);
        self.ld_local(R1, p);
        self.e(Insn::alu64_imm(Alu::Add, R1, 2));
        self.st_local(p, R1);
        self.bind(digits);
        let cb = self.cb_open(2, false);
        {
            self.cb_arg(R1, 0);
            self.ld_local(R2, p);
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.e(Insn::alu64_imm(Alu::And, R1, (self.o.maxstr - 1) as i32));
            self.frame_addr(R2, t + 8);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.e(Insn::ldx(Size::B, R1, R2, 0));
            self.digit_value(R1, R0);
            self.ld_local(R4, b);
            self.jreg(Cond::Ge, R0, R4, cb.stop);
            self.ld_local(R1, v);
            self.e(Insn::alu64_reg(Alu::Mul, R1, R4));
            self.e(Insn::alu64_reg(Alu::Add, R1, R0));
            self.st_local(v, R1);
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "strtol");
        self.frame_addr(R1, t);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.ld_local(R2, p);
        self.e(Insn::alu64_reg(Alu::Sub, R1, R2));
        let none = self.label();
        self.jimm(Cond::Sle, R1, 0, none);
        self.call_loop(f);
        self.bind(none);
        self.ld_local(R0, v);
        self.ld_local(R1, neg);
        let pos = self.label();
        self.jimm(Cond::Eq, R1, 0, pos);
        self.e(Insn::neg64(R0));
        self.bind(pos);
        Ok(())
    }

    /// `out` = the value of the digit or letter in `c` (0-35), or 99.
    fn digit_value(&mut self, c: Reg, out: Reg) {
        let (end, not_digit, not_lower) = (self.label(), self.label(), self.label());
        self.e(Insn::mov64_imm(out, 99));
        self.e(Insn::mov64_reg(R5, c));
        self.e(Insn::alu64_imm(Alu::Sub, R5, b'0' as i32));
        self.jimm(Cond::Gt, R5, 9, not_digit);
        self.e(Insn::mov64_reg(out, R5));
        self.jmp(end);
        self.bind(not_digit);
        self.e(Insn::mov64_reg(R5, c));
        self.e(Insn::alu64_imm(Alu::Sub, R5, b'a' as i32));
        self.jimm(Cond::Gt, R5, 25, not_lower);
        self.e(Insn::mov64_reg(out, R5));
        self.e(Insn::alu64_imm(Alu::Add, out, 10));
        self.jmp(end);
        self.bind(not_lower);
        self.e(Insn::mov64_reg(R5, c));
        self.e(Insn::alu64_imm(Alu::Sub, R5, b'A' as i32));
        self.jimm(Cond::Gt, R5, 25, end);
        self.e(Insn::mov64_reg(out, R5));
        self.e(Insn::alu64_imm(Alu::Add, out, 10));
        self.bind(end);
    }
}
