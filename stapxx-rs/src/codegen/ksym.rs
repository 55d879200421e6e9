//! `symname(addr)` and `usymname(addr)` in kernel probes: a binary search
//! over a packed symbol table (`crate::ksyms`; the kernel's or the
//! target's), all in one map value, so each step is a load and no helper
//! call.

use super::emit::{Gen, SLoc};
use super::regs::*;
use crate::ksyms::PackedLayout;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::{Insn, MapId};

/// What a packed table lookup found (long temps).
#[derive(Clone, Copy)]
pub(super) struct Found {
    /// 1 if a function holds the address.
    pub(super) yes: i16,
    pub(super) start: i16,
}

impl<'a> Gen<'a> {
    /// `dst` = the name of the kernel function holding the address in `r0`,
    /// or the address in hex.
    pub(super) fn symname(&mut self, dst: SLoc) {
        let table = self.m.ksyms_map;
        self.packed_symname(dst, table);
    }

    /// `dst` = the name of the target's function holding the address in
    /// `r0`, or the address in hex.
    pub(super) fn usymname(&mut self, dst: SLoc) {
        let table = self.m.usyms_map;
        self.packed_symname(dst, table);
    }

    fn packed_symname(&mut self, dst: SLoc, table: Option<(MapId, PackedLayout)>) {
        let a = self.tmp_long();
        self.st_local(a, R0);
        let hex = self.label();
        let end = self.label();
        let found = self.packed_lookup(a, table, dst, None);
        self.ld_local(R1, found.yes);
        self.jimm(Cond::Eq, R1, 0, hex);
        self.jmp(end);
        self.bind(hex);
        self.set_empty(dst);
        self.ld_local(R0, a);
        self.append_snprintf(dst, "0x%llx");
        self.bind(end);
    }

    /// The function of a packed table holding the address in long temp
    /// `a`: its name in `name`, its start and (with `size` and a table
    /// that keeps sizes) its size in the returned temps; `yes` is 0 when
    /// no function holds it (`name` is then unspecified).
    pub(super) fn packed_lookup(
        &mut self,
        a: i16,
        table: Option<(MapId, PackedLayout)>,
        name: SLoc,
        size: Option<i16>,
    ) -> Found {
        let f = Found {
            yes: self.tmp_long(),
            start: self.tmp_long(),
        };
        self.e(Insn::st_imm(Size::DW, R7, f.yes, 0));
        let Some((map, l)) = table.filter(|(_, l)| l.count > 0) else {
            return f;
        };
        let none = self.label();
        let key = self.tmp_long();
        self.e(Insn::st_imm(Size::DW, R7, key, 0));
        self.ld_map_fd(R1, map);
        self.e(Insn::mov64_reg(R2, R7));
        self.e(Insn::alu64_imm(Alu::Add, R2, key as i32));
        self.call(H_LOOKUP);
        self.jimm(Cond::Eq, R0, 0, none);
        self.e(Insn::mov64_reg(R1, R0));
        self.ld_local(R4, a);
        let lo = self.search_sorted(l.count, l.cap);
        let mask = (l.cap - 1) as i32;
        self.ld_local(R2, lo);
        // The symbol at lo must start at or below the address.
        self.e(Insn::alu64_imm(Alu::And, R2, mask));
        self.e(Insn::mov64_reg(R0, R2));
        self.e(Insn::alu64_imm(Alu::Lsh, R0, 3));
        self.e(Insn::alu64_reg(Alu::Add, R0, R1));
        self.e(Insn::ldx(Size::DW, R0, R0, 0));
        self.jreg(Cond::Gt, R0, R4, none);
        self.st_local(f.start, R0);
        if let (Some(t), true) = (size, l.sized) {
            // sizes[lo]: past the names, further than a 16-bit load offset.
            self.e(Insn::mov64_reg(R0, R2));
            self.e(Insn::alu64_imm(Alu::Lsh, R0, 3));
            self.e(Insn::alu64_reg(Alu::Add, R0, R1));
            self.e(Insn::alu64_imm(Alu::Add, R0, l.sizes_at() as i32));
            self.e(Insn::ldx(Size::DW, R0, R0, 0));
            self.st_local(t, R0);
        }
        if let (Some(t), false) = (size, l.sized) {
            // No sizes (kallsyms has none): to the next symbol, as the
            // host measures it; 0 for the last.
            let last = self.label();
            let done = self.label();
            self.e(Insn::mov64_reg(R0, R2));
            self.e(Insn::alu64_imm(Alu::Add, R0, 1));
            self.jimm(Cond::Ge, R0, l.count as i32, last);
            self.e(Insn::alu64_imm(Alu::And, R0, mask));
            self.e(Insn::alu64_imm(Alu::Lsh, R0, 3));
            self.e(Insn::alu64_reg(Alu::Add, R0, R1));
            self.e(Insn::ldx(Size::DW, R0, R0, 0));
            self.ld_local(R3, f.start);
            self.e(Insn::alu64_reg(Alu::Sub, R0, R3));
            self.st_local(t, R0);
            self.jmp(done);
            self.bind(last);
            self.e(Insn::st_imm(Size::DW, R7, t, 0));
            self.bind(done);
        }
        // Its name: names + offsets[lo] (masked into the names area).
        self.e(Insn::alu64_imm(Alu::Lsh, R2, 2));
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        self.e(Insn::alu64_imm(Alu::Add, R2, l.offsets_at() as i32));
        self.e(Insn::ldx(Size::W, R2, R2, 0));
        self.e(Insn::alu64_imm(Alu::And, R2, (l.names_cap - 1) as i32));
        self.e(Insn::alu64_reg(Alu::Add, R1, R2));
        self.e(Insn::mov64_reg(R3, R1));
        self.e(Insn::alu64_imm(Alu::Add, R3, l.names_at() as i32));
        self.sloc_addr(R1, name);
        self.e(Insn::alu64_imm(Alu::Add, R1, 8));
        self.mov_imm(R2, self.o.strcap as i64);
        self.call(H_READ_KERNEL_STR);
        self.store_len_from_r0(name, 0);
        // A nameless entry marks the end of a function: no symbol.
        self.jimm(Cond::Eq, R0, 0, none);
        self.e(Insn::st_imm(Size::DW, R7, f.yes, 1));
        self.bind(none);
        f
    }

    /// Binary search of a sorted table of `cap` u64 addresses (`count` of
    /// them real) at `r1` for the last one at or below `r4`; returns the
    /// long temp holding its index (0 when none is: the caller compares).
    /// No helper calls; clobbers r0, r2, r3, r5 (r1 and r4 are kept).
    pub(super) fn search_sorted(&mut self, count: u32, cap: u32) -> i16 {
        // lo and n go through the frame at each step: values the verifier
        // cannot follow, else it walks every path of the search as a
        // separate state.
        let (lo, n) = (self.tmp_long(), self.tmp_long());
        self.e(Insn::st_imm(Size::DW, R7, lo, 0));
        self.e(Insn::st_imm(Size::DW, R7, n, count as i32));
        let mask = (cap - 1) as i32;
        let done = self.label();
        let steps = 32 - cap.leading_zeros() + 1;
        for _ in 0..steps {
            // half = n / 2; if addrs[lo + half] <= a { lo += half; n -= half } else { n = half }
            self.ld_local(R2, lo);
            self.ld_local(R3, n);
            self.jimm(Cond::Le, R3, 1, done);
            self.e(Insn::mov64_reg(R5, R3));
            self.e(Insn::alu64_imm(Alu::Rsh, R5, 1));
            self.e(Insn::mov64_reg(R0, R2));
            self.e(Insn::alu64_reg(Alu::Add, R0, R5));
            self.e(Insn::alu64_imm(Alu::And, R0, mask));
            self.e(Insn::alu64_imm(Alu::Lsh, R0, 3));
            self.e(Insn::alu64_reg(Alu::Add, R0, R1));
            self.e(Insn::ldx(Size::DW, R0, R0, 0));
            let upper = self.label();
            let next = self.label();
            self.jreg(Cond::Gt, R0, R4, upper);
            self.e(Insn::alu64_reg(Alu::Add, R2, R5));
            self.e(Insn::alu64_reg(Alu::Sub, R3, R5));
            self.st_local(lo, R2);
            self.st_local(n, R3);
            self.jmp(next);
            self.bind(upper);
            self.st_local(n, R5);
            self.bind(next);
        }
        self.bind(done);
        lo
    }
}
