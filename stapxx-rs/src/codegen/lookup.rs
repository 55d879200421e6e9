//! Kernel side of the constants-data builtins (host side:
//! `runtime/lookup.rs`; semantics: `consts.rs`, `valtable.rs`).
//!
//! * `errno_str`/`errno_p`: the errno names in the read-only data map, one
//!   16-byte slot per value (the longest name has 15 letters), indexed by
//!   |e| after a bounds check, so no loop at all.
//! * `__stapxx_lookup_str`/`__stapxx_lookup_or_str`: the table is a
//!   literal known when the program is built, so its entries are unrolled
//!   into compare-and-append steps (a few dozen entries at most: bounded
//!   code, no loop for the verifier to follow). Names are copied in through
//!   one scratch string slot.

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use super::unsupported;
use crate::ir::*;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::{Insn, Label};
use grammar::{Diagnostic, Span};

/// Bytes per errno name in the read-only table (name and NUL).
const ERRNO_SLOT: usize = 16;

impl Gen<'_> {
    /// `errno_str`, `__stapxx_lookup_str`, `__stapxx_lookup_or_str`.
    pub(super) fn lookup_string(&mut self, b: Builtin, args: &[Expr], span: Span) -> R<SLoc> {
        if b == Builtin::ErrnoStr {
            let t = self.tmp_str();
            let dst = SLoc::Frame(t);
            let end = self.label();
            self.set_empty(dst);
            self.errno_slot(&args[0], end)?;
            self.sloc_addr(R1, dst);
            self.e(Insn::alu64_imm(Alu::Add, R1, 8));
            self.mov_imm(R2, ERRNO_SLOT.min(self.o.strcap as usize) as i64);
            self.call(H_READ_KERNEL_STR);
            self.store_len_from_r0(dst, 0);
            self.bind(end);
            return Ok(dst);
        }
        let (Some(ExprKind::Long(base)), Some(ExprKind::Str(table))) =
            (args.get(1).map(|a| &a.kind), args.get(2).map(|a| &a.kind))
        else {
            return Err(Diagnostic::error(
                span,
                "internal: a value-table lookup needs a constant base and table",
            ));
        };
        let entries = crate::valtable::decode(table)
            .ok_or_else(|| Diagnostic::error(span, "internal: a malformed value table"))?;
        let base = *base;
        if base == 8 {
            return Err(unsupported(span, "an octal value-table fallback (%#lo)"));
        }
        self.long(&args[0])?;
        let v = self.tmp_long();
        self.st_local(v, R0);
        let t = self.tmp_str();
        let dst = SLoc::Frame(t);
        let lit = SLoc::Frame(self.tmp_str());
        self.set_empty(dst);
        let end = self.label();
        if b == Builtin::LookupOrStr {
            let nonzero = self.label();
            self.ld_local(R0, v);
            self.jimm(Cond::Ne, R0, 0, nonzero);
            self.exact(&entries, v, dst, lit, base, end);
            self.bind(nonzero);
            let flag = self.tmp_long();
            self.e(Insn::mov64_imm(R0, 0));
            self.st_local(flag, R0);
            for &(ev, name) in entries.iter().filter(|e| e.0 != 0) {
                let skip = self.label();
                self.ld_local(R0, v);
                self.mov_imm(R1, ev);
                self.e(Insn::alu64_reg(Alu::And, R0, R1));
                self.jimm(Cond::Eq, R0, 0, skip);
                self.bar_if(flag, dst, lit);
                self.set_lit(lit, name);
                self.append_str(dst, lit);
                self.ld_local(R0, v);
                self.mov_imm(R1, !ev);
                self.e(Insn::alu64_reg(Alu::And, R0, R1));
                self.st_local(v, R0);
                self.e(Insn::mov64_imm(R0, 1));
                self.st_local(flag, R0);
                self.bind(skip);
            }
            self.ld_local(R0, v);
            self.jimm(Cond::Eq, R0, 0, end);
            self.bar_if(flag, dst, lit);
            self.number(v, dst, lit, base);
        } else {
            self.exact(&entries, v, dst, lit, base, end);
        }
        self.bind(end);
        Ok(dst)
    }

    /// `errno_p(e)` into r0: |e| when the table names it, else 0.
    pub(super) fn errno_p(&mut self, arg: &Expr) -> R<()> {
        let zero = self.label();
        let end = self.label();
        self.errno_slot(arg, zero)?;
        self.e(Insn::ldx(Size::B, R1, R3, 0));
        self.jimm(Cond::Eq, R1, 0, zero);
        self.e(Insn::mov64_reg(R0, R2));
        self.e(Insn::alu64_imm(
            Alu::Rsh,
            R0,
            ERRNO_SLOT.trailing_zeros() as i32,
        ));
        self.jmp(end);
        self.bind(zero);
        self.e(Insn::mov64_imm(R0, 0));
        self.bind(end);
        Ok(())
    }

    /// r3 = the errno table's slot of |arg| (r2 = its offset), or a jump
    /// to `outside` when |arg| is past the table.
    fn errno_slot(&mut self, arg: &Expr, outside: Label) -> R<()> {
        let names = crate::consts::errno_table();
        let len = names.last().map_or(0, |e| e.0 as usize + 1);
        let mut blob = vec![0u8; len * ERRNO_SLOT];
        for (v, n) in names {
            let at = v as usize * ERRNO_SLOT;
            let n = &n.as_bytes()[..n.len().min(ERRNO_SLOT - 1)];
            blob[at..at + n.len()].copy_from_slice(n);
        }
        let off = self.rodata_blob("\0errno names", &blob);
        self.long(arg)?;
        let pos = self.label();
        self.jimm(Cond::Sge, R0, 0, pos);
        self.e(Insn::neg64(R0));
        self.bind(pos);
        // Unsigned: i64::MIN stays negative after the negation, and out.
        self.jimm(Cond::Ge, R0, len as i32, outside);
        self.e(Insn::mov64_reg(R2, R0));
        self.e(Insn::alu64_imm(
            Alu::Lsh,
            R2,
            ERRNO_SLOT.trailing_zeros() as i32,
        ));
        let rm = self.rodata_map;
        self.ld_map_value(R3, rm, off);
        self.e(Insn::alu64_reg(Alu::Add, R3, R2));
        Ok(())
    }

    /// Bytes in the read-only data map, once per key; their offset.
    fn rodata_blob(&mut self, key: &str, bytes: &[u8]) -> u32 {
        if let Some(&o) = self.formats.get(key) {
            return o;
        }
        let o = self.rodata.len() as u32;
        self.rodata.extend_from_slice(bytes);
        while !self.rodata.len().is_multiple_of(8) {
            self.rodata.push(0);
        }
        self.formats.insert(key.to_string(), o);
        o
    }

    /// `_stp_lookup_str2`: the first entry equal to the value, else the
    /// number; then to `end`.
    fn exact(
        &mut self,
        entries: &[(i64, &str)],
        v: i16,
        dst: SLoc,
        lit: SLoc,
        base: i64,
        end: Label,
    ) {
        for &(ev, name) in entries {
            let next = self.label();
            self.ld_local(R0, v);
            self.mov_imm(R1, ev);
            self.jreg(Cond::Ne, R0, R1, next);
            self.set_lit(dst, name);
            self.jmp(end);
            self.bind(next);
        }
        self.number(v, dst, lit, base);
        self.jmp(end);
    }

    /// Appends "|" when `flag` is set.
    fn bar_if(&mut self, flag: i16, dst: SLoc, lit: SLoc) {
        let none = self.label();
        self.ld_local(R0, flag);
        self.jimm(Cond::Eq, R0, 0, none);
        self.set_lit(lit, "|");
        self.append_str(dst, lit);
        self.bind(none);
    }

    /// Appends the value as the runtime prints an unnamed one: `%ld` for
    /// base 10, else `0x%lx`.
    fn number(&mut self, v: i16, dst: SLoc, lit: SLoc, base: i64) {
        if base != 10 {
            self.set_lit(lit, "0x");
            self.append_str(dst, lit);
        }
        self.ld_local(R0, v);
        self.append_snprintf(dst, if base == 10 { "%lld" } else { "%llx" });
    }
}
