//! `foreach` and `delete arr` in kernel probes, over a global array's BPF
//! hash map with `bpf_for_each_map_elem`.
//!
//! Unsorted `foreach` runs its body in the map's callback (hash order, as
//! stap's unsorted order is its hash order). A sorted `foreach` cannot sort
//! in place, so it selects: each round scans the whole map for the
//! smallest element (in the requested order) above the one visited last,
//! then runs the body on it: O(n) scans of n elements, O(limit) with a
//! `limit`. The order is total: equal sort values are ordered by their keys
//! (ascending, field by field), so every element is visited exactly once.

use super::emit::{Gen, SLoc, R};
use super::maps::ArrayMap;
use super::regs::*;
use super::strops::Mem;
use super::unsupported;
use crate::ir::*;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::ast::SortDir;
use grammar::{Diagnostic, Span};

/// Where a key (the map's key bytes) is.
#[derive(Clone, Copy)]
enum KeyAt {
    /// Behind the pointer in argument `i` of the open callback.
    Arg(usize),
    /// In a frame buffer.
    Frame(u32),
}

/// One element's state in the selection: its key and sort value.
#[derive(Clone, Copy)]
struct Entry {
    key: u32,
    /// A long temp, or a string slot, by the sort value's type.
    long: i16,
    str: u32,
}

impl<'a> Gen<'a> {
    pub(super) fn foreach(&mut self, f: &Foreach, span: Span) -> R<()> {
        let a = self.array_map(f.array, span)?;
        // `keyclass.rs` keeps arrays a kernel foreach walks in one class.
        if a.single().is_none() {
            return Err(Diagnostic::error(
                span,
                "internal: a foreach in a kernel probe over an array with several key classes",
            ));
        }
        if a.percpu && f.value.is_some() {
            return Err(unsupported(
                span,
                "the value of a statistics array in foreach",
            ));
        }
        if f.sort.is_some() {
            return self.foreach_sorted(f, &a, span);
        }
        let limit = self.foreach_limit(f)?;
        let cb = self.cb_open(4, true);
        if let Some((lim, count)) = limit {
            self.count_against_limit(lim, count, cb.stop);
        }
        self.bind_foreach_vars(f, &a, KeyAt::Arg(1));
        if let Some(v) = f.value {
            self.cb_arg(R3, 2);
            self.assign_value(v, &a);
        }
        self.iteration(&f.body)?;
        let next = cb.next;
        self.jmp(next);
        let func = self.cb_close(cb, "foreach");
        self.span = span;
        self.call_for_each(a.widest().map, func);
        self.after_user_callback();
        Ok(())
    }

    /// `delete arr`: every element of every key class, one by one.
    pub(super) fn delete_array(&mut self, g: GlobalId, span: Span) -> R<()> {
        let a = self.array_map(g, span)?;
        let key = self.tmp_bytes(a.widest().key_size);
        for c in &a.classes {
            let cb = self.cb_open(4, false);
            self.copy_key(key, KeyAt::Arg(1), c.key_size);
            self.ld_map_fd(R1, c.map);
            self.frame_addr(R2, key);
            self.call(H_DELETE);
            self.count_delete(&a);
            let next = cb.next;
            self.jmp(next);
            let func = self.cb_close(cb, "delete_all");
            self.call_for_each(c.map, func);
        }
        Ok(())
    }

    fn array_map(&self, g: GlobalId, span: Span) -> R<ArrayMap> {
        self.array(g, span)
    }

    /// `(limit, count)` temps when the loop has a `limit`.
    fn foreach_limit(&mut self, f: &Foreach) -> R<Option<(i16, i16)>> {
        let Some(l) = &f.limit else { return Ok(None) };
        self.long(l)?;
        let (lim, count) = (self.tmp_long(), self.tmp_long());
        self.st_local(lim, R0);
        self.e(Insn::st_imm(Size::DW, R7, count, 0));
        Ok(Some((lim, count)))
    }

    fn count_against_limit(&mut self, lim: i16, count: i16, stop: ebpf_backend::Label) {
        self.ld_local(R1, count);
        self.ld_local(R2, lim);
        self.jreg(Cond::Sge, R1, R2, stop);
        self.e(Insn::alu64_imm(Alu::Add, R1, 1));
        self.st_local(count, R1);
    }

    /// `r1` = the address of a key.
    fn key_addr(&mut self, k: KeyAt) {
        match k {
            KeyAt::Arg(i) => self.cb_arg(R1, i),
            KeyAt::Frame(abs) => self.frame_addr(R1, abs),
        }
    }

    /// Copy a key of `size` bytes into a frame buffer.
    fn copy_key(&mut self, dst: u32, src: KeyAt, size: u32) {
        self.key_addr(src);
        self.e(Insn::mov64_reg(R3, R1));
        self.frame_addr(R1, dst);
        self.mov_imm(R2, size as i64);
        self.call(H_READ_KERNEL);
    }

    /// The loop variables take the key's fields.
    fn bind_foreach_vars(&mut self, f: &Foreach, a: &ArrayMap, src: KeyAt) {
        for (local, (ty, off)) in f.keys.iter().zip(a.widest().keys.iter()) {
            if *ty == Ty::Str {
                let slot = self.str_local_abs(*local);
                self.key_addr(src);
                self.e(Insn::mov64_reg(R3, R1));
                self.e(Insn::alu64_imm(Alu::Add, R3, *off as i32));
                self.frame_addr(R1, slot + 8);
                self.mov_imm(R2, self.o.maxstr as i64);
                self.call(H_READ_KERNEL_STR);
                self.store_len_from_r0(SLoc::Frame(slot), 0);
            } else {
                let l = self.long_local_off(*local);
                self.key_addr(src);
                self.e(Insn::ldx(Size::DW, R0, R1, *off as i16));
                self.st_local(l, R0);
            }
        }
    }

    /// Local `v` = the array value `r3` points to.
    fn assign_value(&mut self, v: LocalId, a: &ArrayMap) {
        if a.value == Ty::Str {
            let slot = self.str_local_abs(v);
            self.e(Insn::alu64_imm(Alu::Add, R3, 8));
            self.frame_addr(R1, slot + 8);
            self.mov_imm(R2, self.o.maxstr as i64);
            self.call(H_READ_KERNEL_STR);
            self.store_len_from_r0(SLoc::Frame(slot), 0);
        } else {
            let l = self.long_local_off(v);
            self.e(Insn::ldx(Size::DW, R0, R3, 0));
            self.st_local(l, R0);
        }
    }

    fn foreach_sorted(&mut self, f: &Foreach, a: &ArrayMap, span: Span) -> R<()> {
        let (col, dir) = f.sort.expect("sorted");
        let sort_ty = if col == usize::MAX {
            a.value
        } else {
            a.widest()
                .keys
                .get(col)
                .map(|k| k.0)
                .ok_or_else(|| Diagnostic::error(span, "sort column out of range"))?
        };
        let limit = self.foreach_limit(f)?;
        let mut entry = || -> Entry {
            Entry {
                key: self.tmp_bytes(a.widest().key_size),
                long: self.tmp_long(),
                str: if sort_ty == Ty::Str {
                    self.tmp_str()
                } else {
                    0
                },
            }
        };
        let (last, best, cand) = (entry(), entry(), entry());
        let (have_last, have_best) = (self.tmp_long(), self.tmp_long());
        self.e(Insn::st_imm(Size::DW, R7, have_last, 0));
        let outer = self.cb_open(2, true);
        {
            // Select the next element.
            self.e(Insn::st_imm(Size::DW, R7, have_best, 0));
            let scan = self.cb_open(4, false);
            {
                self.copy_key(cand.key, KeyAt::Arg(1), a.widest().key_size);
                self.sort_value(cand, col, sort_ty, a);
                let take = self.label();
                let after_last = self.label();
                self.ld_local(R1, have_last);
                self.jimm(Cond::Eq, R1, 0, after_last);
                self.compare_entries(cand, last, col, sort_ty, dir, a);
                self.jimm(Cond::Sle, R0, 0, scan.next);
                self.bind(after_last);
                self.ld_local(R1, have_best);
                self.jimm(Cond::Eq, R1, 0, take);
                self.compare_entries(cand, best, col, sort_ty, dir, a);
                self.jimm(Cond::Sge, R0, 0, scan.next);
                self.bind(take);
                self.copy_entry(best, cand, sort_ty, a);
                self.e(Insn::st_imm(Size::DW, R7, have_best, 1));
                self.jmp(scan.next);
            }
            let func = self.cb_close(scan, "foreach_scan");
            self.call_for_each(a.widest().map, func);
            self.ld_local(R1, have_best);
            self.jimm(Cond::Eq, R1, 0, outer.stop);
            if let Some((lim, count)) = limit {
                self.count_against_limit(lim, count, outer.stop);
            }
            self.copy_entry(last, best, sort_ty, a);
            self.e(Insn::st_imm(Size::DW, R7, have_last, 1));
            self.bind_foreach_vars(f, a, KeyAt::Frame(best.key));
            if let Some(v) = f.value {
                self.set_value_default(v, a);
                self.ld_map_fd(R1, a.widest().map);
                self.frame_addr(R2, best.key);
                self.call(H_LOOKUP);
                let gone = self.label();
                self.jimm(Cond::Eq, R0, 0, gone);
                self.e(Insn::mov64_reg(R3, R0));
                self.assign_value(v, a);
                self.bind(gone);
            }
            self.iteration(&f.body)?;
            let next = outer.next;
            self.jmp(next);
        }
        let func = self.cb_close(outer, "foreach_sorted");
        self.span = span;
        let max = self.p.globals[a.global.0 as usize]
            .size
            .filter(|&n| n > 0)
            .map(|n| n as u32)
            .unwrap_or(self.o.maxmapentries);
        self.mov_imm(R1, max as i64 + 1);
        self.call_loop(func);
        self.after_user_callback();
        Ok(())
    }

    /// An element that vanished between the scan and the visit reads as 0/"".
    fn set_value_default(&mut self, v: LocalId, a: &ArrayMap) {
        if a.value == Ty::Str {
            let slot = self.str_local_abs(v);
            self.set_empty(SLoc::Frame(slot));
        } else {
            let l = self.long_local_off(v);
            self.e(Insn::st_imm(Size::DW, R7, l, 0));
        }
    }

    /// The candidate's sort value: from the value (callback argument 2) or
    /// from its key field `col` (already copied into `e.key`).
    fn sort_value(&mut self, e: Entry, col: usize, ty: Ty, a: &ArrayMap) {
        if col == usize::MAX && a.percpu {
            self.percpu_count(a.widest().map, e.key);
            self.st_local(e.long, R0);
        } else if col == usize::MAX {
            self.cb_arg(R3, 2);
            if ty == Ty::Str {
                self.e(Insn::alu64_imm(Alu::Add, R3, 8));
                self.frame_addr(R1, e.str + 8);
                self.mov_imm(R2, self.o.maxstr as i64);
                self.call(H_READ_KERNEL_STR);
            } else {
                self.e(Insn::ldx(Size::DW, R0, R3, 0));
                self.st_local(e.long, R0);
            }
        } else if ty != Ty::Str {
            let off = a.widest().keys[col].1;
            self.frame_addr(R1, e.key);
            self.e(Insn::ldx(Size::DW, R0, R1, off as i16));
            self.st_local(e.long, R0);
        }
        // A string key field is compared where it is, in the key buffer.
    }

    fn copy_entry(&mut self, dst: Entry, src: Entry, ty: Ty, a: &ArrayMap) {
        self.copy_key(dst.key, KeyAt::Frame(src.key), a.widest().key_size);
        if ty == Ty::Str {
            self.frame_addr(R1, dst.str + 8);
            self.mov_imm(R2, self.o.maxstr as i64);
            self.frame_addr(R3, src.str + 8);
            self.call(H_READ_KERNEL_STR);
        } else {
            self.ld_local(R0, src.long);
            self.st_local(dst.long, R0);
        }
    }

    /// `r0` = -1, 0 or 1: where `x` comes relative to `y` in the loop's
    /// order (the sort value in direction `dir`, then the keys ascending).
    fn compare_entries(
        &mut self,
        x: Entry,
        y: Entry,
        col: usize,
        ty: Ty,
        dir: SortDir,
        a: &ArrayMap,
    ) {
        let done = self.label();
        let res = self.tmp_long();
        // The sort value.
        if ty == Ty::Str {
            let (mx, my) = if col == usize::MAX {
                (Mem::Frame(x.str + 8), Mem::Frame(y.str + 8))
            } else {
                let off = a.widest().keys[col].1;
                (Mem::Frame(x.key + off), Mem::Frame(y.key + off))
            };
            self.strcmp_mem(mx, my);
        } else {
            self.ld_local(R1, x.long);
            self.ld_local(R2, y.long);
            self.sign_of_compare(R1, R2);
        }
        if dir == SortDir::Desc {
            self.e(Insn::neg64(R0));
        }
        self.st_local(res, R0);
        self.jimm(Cond::Ne, R0, 0, done);
        // Ties: the keys, field by field.
        for (ty, off) in a.widest().keys.clone() {
            if ty == Ty::Str {
                self.strcmp_mem(Mem::Frame(x.key + off), Mem::Frame(y.key + off));
            } else {
                self.frame_addr(R3, x.key);
                self.e(Insn::ldx(Size::DW, R1, R3, off as i16));
                self.frame_addr(R3, y.key);
                self.e(Insn::ldx(Size::DW, R2, R3, off as i16));
                self.sign_of_compare(R1, R2);
            }
            self.st_local(res, R0);
            self.jimm(Cond::Ne, R0, 0, done);
        }
        self.bind(done);
        self.ld_local(R0, res);
    }

    /// `r0` = -1, 0 or 1 as the signed longs `a` and `b` compare.
    fn sign_of_compare(&mut self, a: ebpf_backend::insn::Reg, b: ebpf_backend::insn::Reg) {
        let (less, end) = (self.label(), self.label());
        self.e(Insn::mov64_imm(R0, 0));
        self.jreg(Cond::Eq, a, b, end);
        self.jreg(Cond::Slt, a, b, less);
        self.e(Insn::mov64_imm(R0, 1));
        self.jmp(end);
        self.bind(less);
        self.e(Insn::mov64_imm(R0, -1));
        self.bind(end);
    }
}
