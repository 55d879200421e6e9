//! Building an element's key and picking its key class at run time (the
//! classes: `keyclass.rs`), and keeping the entry count of arrays with
//! several classes.
//!
//! Every operation on `a[keys]` in a kernel probe goes through
//! [`Gen::keyed`]: the key values are computed once; then, for an array
//! with several classes, a chain of compares on the longest string's
//! length jumps to one copy of the operation per class, each with that
//! class's map and key layout. Each copy ends with nothing but scalars
//! and frame contents, so the verifier's states meet again after it (a map
//! value pointer of one class's map would keep the paths apart).
//!
//! The class must follow from the key's bytes alone, or one key could sit
//! in two maps: it follows from the strings' slot lengths, which are their
//! texts' lengths (`strings.rs`), and the key holds exactly those bytes.

use super::emit::{Gen, SLoc, R};
use super::layout::ErrKind;
use super::maps::{ArrayMap, KeyClass};
use super::regs::*;
use crate::ir::*;
use ebpf_backend::insn::{AtomicOp, Cond, Size};
use ebpf_backend::{Insn, Label};
use grammar::{Diagnostic, Span};

/// A key field's value, computed before the key is laid out.
#[derive(Clone, Copy)]
enum KeyVal {
    Long(i16),
    Str(SLoc),
}

/// Where a value to store is: a long temp (offset from r7) or a frame
/// buffer (offset from r6).
#[derive(Clone, Copy)]
pub(super) enum ValAt {
    Local(i16),
    Frame(u32),
}

/// An operation on one element: given the array, the class, and the frame
/// offset of the key laid out for that class.
pub(super) type ElemOp<'o, 'a> = dyn FnMut(&mut Gen<'a>, &ArrayMap, &KeyClass, u32) -> R<()> + 'o;

impl<'a> Gen<'a> {
    pub(super) fn array(&self, g: GlobalId, span: Span) -> R<ArrayMap> {
        self.m
            .array(g)
            .cloned()
            .ok_or_else(|| Diagnostic::error(span, "internal: no map for array"))
    }

    /// Run `op` on the element `g[keys]`, in the class its key belongs to.
    pub(super) fn keyed(
        &mut self,
        g: GlobalId,
        keys: &[Expr],
        span: Span,
        op: &mut ElemOp<'_, 'a>,
    ) -> R<()> {
        let a = self.array(g, span)?;
        // Evaluate every key first: a key expression may itself look up a map.
        let mut vals = Vec::new();
        for k in keys {
            if k.ty == Ty::Str {
                vals.push(KeyVal::Str(self.string(k)?));
            } else {
                self.long(k)?;
                let t = self.tmp_long();
                self.st_local(t, R0);
                vals.push(KeyVal::Long(t));
            }
        }
        let buf = self.tmp_bytes(a.widest().key_size);
        if let Some(c) = a.single() {
            let c = c.clone();
            self.lay_out(buf, &c, &vals, keys.is_empty());
            return op(self, &a, &c, buf);
        }
        // The longest string's length picks the class.
        self.e(Insn::mov64_imm(R0, 0));
        for v in &vals {
            if let KeyVal::Str(s) = *v {
                let keep = self.label();
                self.sloc_addr(R1, s);
                self.e(Insn::ldx(Size::DW, R1, R1, 0));
                self.jreg(Cond::Ge, R0, R1, keep);
                self.e(Insn::mov64_reg(R0, R1));
                self.bind(keep);
            }
        }
        let n = a.classes.len();
        let entry: Vec<Label> = (0..n).map(|_| self.label()).collect();
        self.pick_class(&a, n, &entry);
        let end = self.label();
        for (c, &at) in a.classes.iter().zip(&entry) {
            self.bind(at);
            self.lay_out(buf, c, &vals, false);
            op(self, &a, c, buf)?;
            self.jmp(end);
        }
        self.bind(end);
        Ok(())
    }

    /// [`Gen::keyed`] for an operation that leaves a long in r0: with
    /// several classes it goes through a temp (r0 is not kept across the
    /// join).
    pub(super) fn keyed_long(
        &mut self,
        g: GlobalId,
        keys: &[Expr],
        span: Span,
        op: &mut ElemOp<'_, 'a>,
    ) -> R<()> {
        let t = self
            .array(g, span)?
            .single()
            .is_none()
            .then(|| self.tmp_long());
        self.keyed(g, keys, span, &mut |s, a, c, key| {
            op(s, a, c, key)?;
            if let Some(t) = t {
                s.st_local(t, R0);
            }
            Ok(())
        })?;
        if let Some(t) = t {
            self.ld_local(R0, t);
        }
        Ok(())
    }

    /// Jump to the entry of the first of `classes[..n]` whose width holds
    /// a text of r0 bytes and its NUL; the last of them otherwise.
    fn pick_class(&mut self, a: &ArrayMap, n: usize, entry: &[Label]) {
        for (c, &at) in a.classes[..n - 1].iter().zip(entry) {
            self.jimm(Cond::Lt, R0, c.width as i32, at);
        }
        self.jmp(entry[n - 1]);
    }

    /// Lay the key out in the frame buffer `buf` for class `c`: each string
    /// by its length (shorter than the class's width), zero-padded.
    fn lay_out(&mut self, buf: u32, c: &KeyClass, vals: &[KeyVal], empty: bool) {
        if vals.iter().any(|v| matches!(v, KeyVal::Str(_))) || empty {
            self.zero(buf, c.key_size);
        }
        for (v, (_, off)) in vals.iter().zip(&c.keys) {
            match *v {
                KeyVal::Long(t) => {
                    self.ld_local(R0, t);
                    self.frame_addr(R1, buf + off);
                    self.e(Insn::stx(Size::DW, R1, 0, R0));
                }
                KeyVal::Str(s) => {
                    self.sloc_addr(R3, s);
                    self.slot_len(R2, R3);
                    self.e(Insn::alu64_imm(ebpf_backend::insn::Alu::Add, R3, 8));
                    self.frame_addr(R1, buf + off);
                    self.call(H_READ_KERNEL);
                }
            }
        }
    }

    /// Store the value at `val` as the element at `key` in class `c`
    /// (inserting it, or replacing its value whole).
    pub(super) fn update_elem(&mut self, a: &ArrayMap, c: &KeyClass, key: u32, val: ValAt) {
        let done = self.label();
        if a.count.is_none() {
            self.update_call(c, key, val, 0); // BPF_ANY
            self.jimm(Cond::Sge, R0, 0, done);
            self.fail(ErrKind::MapFull);
            self.bind(done);
            return;
        }
        // Counted: replace when it is there, else insert and count it.
        let (insert, again) = (self.label(), self.label());
        self.update_call(c, key, val, 2); // BPF_EXIST
        self.jimm(Cond::Slt, R0, 0, insert);
        self.jmp(done);
        self.bind(insert);
        self.update_call(c, key, val, 1); // BPF_NOEXIST
        self.jimm(Cond::Slt, R0, 0, again);
        self.count_insert(a, c, key);
        self.jmp(done);
        // Another CPU inserted it meanwhile.
        self.bind(again);
        self.update_call(c, key, val, 2);
        self.jimm(Cond::Sge, R0, 0, done);
        self.fail(ErrKind::MapFull);
        self.bind(done);
    }

    /// Insert the value at `val` as a new element at `key` (BPF_NOEXIST),
    /// counted; on to `inserted` when it was (given one), else on: it is
    /// there already, or the map is full.
    pub(super) fn insert_elem(
        &mut self,
        a: &ArrayMap,
        c: &KeyClass,
        key: u32,
        val: ValAt,
        inserted: Option<Label>,
    ) {
        self.update_call(c, key, val, 1);
        if a.count.is_none() {
            if let Some(l) = inserted {
                self.jimm(Cond::Sge, R0, 0, l);
            }
            return;
        }
        let failed = self.label();
        self.jimm(Cond::Slt, R0, 0, failed);
        self.count_insert(a, c, key);
        if let Some(l) = inserted {
            self.jmp(l);
        }
        self.bind(failed);
    }

    fn update_call(&mut self, c: &KeyClass, key: u32, val: ValAt, flags: i32) {
        self.ld_map_fd(R1, c.map);
        self.frame_addr(R2, key);
        match val {
            ValAt::Local(v) => {
                self.e(Insn::mov64_reg(R3, R7));
                self.e(Insn::alu64_imm(ebpf_backend::insn::Alu::Add, R3, v as i32));
            }
            ValAt::Frame(t) => self.frame_addr(R3, t),
        }
        self.e(Insn::mov64_imm(R4, flags));
        self.call(H_UPDATE);
    }

    /// After an insert of a new element (r0 = the update's result, >= 0):
    /// count it, and undo it when the array is already full.
    pub(super) fn count_insert(&mut self, a: &ArrayMap, c: &KeyClass, key: u32) {
        if a.count.is_none() {
            return;
        }
        let room = self.label();
        self.count_addr(a);
        self.e(Insn::mov64_imm(R2, 1));
        self.e(Insn::atomic(Size::DW, AtomicOp::FetchAdd, R1, 0, R2));
        self.jimm(Cond::Lt, R2, a.max_entries as i32, room);
        self.ld_map_fd(R1, c.map);
        self.frame_addr(R2, key);
        self.call(H_DELETE);
        self.uncount(a);
        self.fail(ErrKind::MapFull);
        self.bind(room);
    }

    /// After a delete (r0 = its result): one element fewer when it found one.
    pub(super) fn count_delete(&mut self, a: &ArrayMap) {
        if a.count.is_none() {
            return;
        }
        let none = self.label();
        self.jimm(Cond::Ne, R0, 0, none);
        self.uncount(a);
        self.bind(none);
    }

    fn uncount(&mut self, a: &ArrayMap) {
        if a.count.is_none() {
            return;
        }
        self.count_addr(a);
        self.e(Insn::mov64_imm(R2, -1));
        self.e(Insn::atomic(Size::DW, AtomicOp::Add, R1, 0, R2));
    }

    /// r1 = the address of the array's entry count (of the current
    /// generation, for an `--interval` statistic).
    fn count_addr(&mut self, a: &ArrayMap) {
        let Some(at) = a.count else { return };
        let gm = self.m.globals_map;
        match (self.m.gen_offset, a.widest().alt.is_some()) {
            (Some(gen), true) => {
                self.ld_map_value(R1, gm, gen);
                self.e(Insn::ldx(Size::DW, R2, R1, 0));
                self.e(Insn::alu64_imm(ebpf_backend::insn::Alu::And, R2, 1));
                self.e(Insn::alu64_imm(ebpf_backend::insn::Alu::Lsh, R2, 3));
                self.ld_map_value(R1, gm, at);
                self.e(Insn::alu64_reg(ebpf_backend::insn::Alu::Add, R1, R2));
            }
            _ => self.ld_map_value(R1, gm, at),
        }
    }
}
