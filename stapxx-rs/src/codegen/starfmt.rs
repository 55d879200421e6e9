//! `%*d`, `%-*s`, `%.*s`: a width or precision taken from the arguments.
//!
//! `bpf_snprintf` knows no `*`, so the value is formatted without it into
//! a temporary string, which is then cut (a string's precision) and padded
//! with spaces to the width at run time, left or right as the `-` flag or
//! a negative width says (C's rules, which stap follows). The spaces come
//! from a run of spaces in the read-only data, copied in one helper call.
//! Zero padding (`%0*d`) and a run-time precision of a number (its minimum
//! digit count) are refused in kernel probes; host probes do both.

use super::emit::{Gen, SLoc, R};
use super::expr::Temp;
use super::regs::*;
use super::unsupported;
use crate::ir::types::Conversion;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::Span;

impl Gen<'_> {
    /// Append conversion `c` of `v` to `dst`, with the run-time width `w`
    /// and precision `p` (longs) where `c` has a `*`.
    pub(super) fn append_star_conv(
        &mut self,
        dst: SLoc,
        c: &Conversion,
        v: Temp,
        w: Option<Temp>,
        p: Option<Temp>,
        span: Span,
    ) -> R<()> {
        let plain = Conversion {
            width: None,
            precision: if c.precision_arg { None } else { c.precision },
            width_arg: false,
            precision_arg: false,
            flags: c.flags.replace('-', ""),
            ..c.clone()
        };
        let v = match (p, v) {
            (None, v) => v,
            (Some(Temp::Long(p)), Temp::Str(s)) => Temp::Str(self.cut(s, p)),
            _ => {
                return Err(unsupported(
                    span,
                    "a precision from the arguments for a number (`%.*d`)",
                ))
            }
        };
        let Some(Temp::Long(w)) = w else {
            return self.append_conv(dst, &plain, v, span);
        };
        if c.flags.contains('0') && c.kind != 's' {
            return Err(unsupported(
                span,
                "zero padding to a width from the arguments (`%0*d`)",
            ));
        }
        let piece = SLoc::Frame(self.tmp_str());
        self.set_empty(piece);
        self.append_conv(piece, &plain, v, span)?;
        // need = |w| - len(piece); left: the `-` flag or a negative width.
        let need = self.tmp_long();
        let left = self.tmp_long();
        self.ld_local(R0, w);
        self.mov_imm(R1, i64::from(c.flags.contains('-')));
        let pos = self.label();
        self.jimm(Cond::Sge, R0, 0, pos);
        self.e(Insn::neg64(R0));
        self.mov_imm(R1, 1);
        self.bind(pos);
        self.st_local(left, R1);
        self.sloc_addr(R1, piece);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.e(Insn::alu64_reg(Alu::Sub, R0, R1));
        self.st_local(need, R0);
        let after = self.label();
        let done = self.label();
        self.ld_local(R0, left);
        self.jimm(Cond::Ne, R0, 0, after);
        self.append_spaces(dst, need);
        self.append_str(dst, piece);
        self.jmp(done);
        self.bind(after);
        self.append_str(dst, piece);
        self.append_spaces(dst, need);
        self.bind(done);
        Ok(())
    }

    /// `s` cut to the first `p` bytes (all of it when `p` is negative).
    fn cut(&mut self, s: SLoc, p: i16) -> SLoc {
        let t = self.tmp_str();
        let last = (self.o.strcap - 1) as i32;
        self.ld_local(R2, p);
        let fits = self.label();
        let set = self.label();
        self.jimm(Cond::Slt, R2, 0, set);
        self.jimm(Cond::Sle, R2, last, fits);
        self.bind(set);
        self.mov_imm(R2, i64::from(last));
        self.bind(fits);
        self.e(Insn::alu64_imm(Alu::Add, R2, 1));
        self.frame_addr(R1, t + 8);
        self.sloc_addr(R3, s);
        self.e(Insn::alu64_imm(Alu::Add, R3, 8));
        self.call(H_READ_KERNEL_STR);
        self.store_len_from_r0(SLoc::Frame(t), 0);
        SLoc::Frame(t)
    }

    /// Append `need` spaces (a long temp; nothing when not positive), cut
    /// to the room left.
    fn append_spaces(&mut self, dst: SLoc, need: i16) {
        let skip = self.label();
        self.ld_local(R0, need);
        self.jimm(Cond::Sle, R0, 0, skip);
        let spaces = " ".repeat((self.o.strcap - 1) as usize);
        let off = self.rodata_str(&spaces);
        let old = self.append_point(dst);
        // r2 = room (with the NUL); r3 = min(need + 1, room).
        self.ld_local(R3, need);
        self.e(Insn::alu64_imm(Alu::Add, R3, 1));
        let fits = self.label();
        self.jreg(Cond::Le, R3, R2, fits);
        self.e(Insn::mov64_reg(R3, R2));
        self.bind(fits);
        self.e(Insn::mov64_reg(R2, R3));
        let rm = self.rodata_map;
        self.ld_map_value(R3, rm, off);
        self.call(H_READ_KERNEL_STR);
        self.finish_append(dst, old);
        self.bind(skip);
    }
}
