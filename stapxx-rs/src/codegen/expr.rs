//! Expressions: longs into `r0`, strings into string slots, array and
//! statistic access through the global maps.

use super::classkey::ValAt;
use super::emit::{Gen, SLoc, R};
use super::layout::*;
use super::maps::*;
use super::regs::*;
use super::unsupported;
use crate::ir::stats::{Linear, LOG_BUCKET0, LOG_BUCKETS};
use crate::ir::*;
use ebpf_backend::insn::{Alu, AtomicOp, Cond, Reg, Size};
use ebpf_backend::Insn;
use grammar::{Diagnostic, Span};

/// Offsets in `struct pt_regs` (x86-64), which uprobe programs get as their
/// context and perf-event programs at the start of theirs.
const PT_IP: i16 = PT_IP_OFF;
const PT_CS: i16 = PT_CS_OFF;

/// An evaluated argument: a long temporary (offset from r7) or a string.
pub(super) enum Temp {
    Long(i16),
    Str(SLoc),
}

impl Gen<'_> {
    /// Evaluate for side effects only.
    pub(super) fn effect(&mut self, e: &Expr) -> R<()> {
        match (&e.kind, e.ty) {
            // Globals are shared by every CPU: `g++`, `g += n` whose value
            // is not used become atomic adds, so no update is lost.
            (ExprKind::Crement { place, delta, .. }, _) if !matches!(place, Place::Local(_)) => {
                self.mov_imm(R0, *delta);
                self.atomic_add(place, false, e.span).map(|_| ())
            }
            (ExprKind::AssignOp(place, op @ (LongOp::Add | LongOp::Sub), v), _)
                if !matches!(place, Place::Local(_)) =>
            {
                self.long(v)?;
                if *op == LongOp::Sub {
                    self.e(Insn::neg64(R0));
                }
                self.atomic_add(place, false, e.span).map(|_| ())
            }
            (ExprKind::Builtin(..), _) | (ExprKind::StatAdd(..), _) => self.long_or_void(e),
            (_, Ty::Str) => self.string(e).map(|_| ()),
            _ => self.long(e),
        }
    }

    /// `place += r0` atomically (a global scalar or array element). With
    /// `fetch`, the value before the add is left in the returned long temp.
    fn atomic_add(&mut self, place: &Place, fetch: bool, span: Span) -> R<i16> {
        let d = self.tmp_long();
        let old = if fetch { self.tmp_long() } else { d };
        self.st_local(d, R0);
        if fetch {
            // (An element inserted with the delta had no value before: 0.)
            self.e(Insn::st_imm(Size::DW, R7, old, 0));
        }
        let op = if fetch {
            AtomicOp::FetchAdd
        } else {
            AtomicOp::Add
        };
        match place {
            Place::Global(g) => {
                self.scalar_addr(R1, *g, span)?;
                self.ld_local(R2, d);
                self.e(Insn::atomic(Size::DW, op, R1, 0, R2));
                if fetch {
                    self.st_local(old, R2);
                }
            }
            Place::Elem(g, keys) => {
                self.keyed(*g, keys, span, &mut |s, a, c, key| {
                    let done = s.label();
                    let add = s.label();
                    s.lookup(c, key);
                    s.jimm(Cond::Ne, R0, 0, add);
                    // Missing: insert the delta; if another CPU inserted it
                    // meanwhile, add to that one.
                    s.insert_elem(a, c, key, ValAt::Local(d), Some(done));
                    s.lookup_or_full(c, key);
                    s.bind(add);
                    s.ld_local(R2, d);
                    s.e(Insn::atomic(Size::DW, op, R0, 0, R2));
                    if fetch {
                        s.st_local(old, R2);
                    }
                    s.bind(done);
                    Ok(())
                })?;
            }
            Place::Local(_) => {}
        }
        Ok(old)
    }

    fn long_or_void(&mut self, e: &Expr) -> R<()> {
        match &e.kind {
            ExprKind::Builtin(b, args) => self.builtin(*b, args, e).map(|_| ()),
            ExprKind::StatAdd(place, v) => self.stat_add(place, v, e.span),
            _ => self.long(e),
        }
    }

    /// A long expression into r0.
    pub(super) fn long(&mut self, e: &Expr) -> R<()> {
        self.span = e.span;
        match &e.kind {
            ExprKind::Long(n) => self.mov_imm(R0, *n),
            ExprKind::Read(place) => self.read_long(place, e.span)?,
            ExprKind::Exists(g, keys) => {
                self.keyed_long(*g, keys, e.span, &mut |s, _, c, key| {
                    s.lookup(c, key);
                    let no = s.label();
                    s.jimm(Cond::Eq, R0, 0, no);
                    s.e(Insn::mov64_imm(R0, 1));
                    s.bind(no);
                    Ok(())
                })?;
            }
            ExprKind::Call(f, args) => {
                self.call_fn(f.0 as usize, args, e.span)?;
                let ow = super::emit::Owner::Func(f.0 as usize);
                let locals = self.p.functions[f.0 as usize].locals.clone();
                let abs = self.ret_long_abs(ow, &locals);
                self.frame_addr(R1, abs);
                self.e(Insn::ldx(Size::DW, R0, R1, 0));
            }
            ExprKind::Builtin(b, args) => {
                if !self.builtin(*b, args, e)? {
                    self.e(Insn::mov64_imm(R0, 0));
                }
            }
            ExprKind::Neg(a) => {
                self.long(a)?;
                self.e(Insn::neg64(R0));
            }
            ExprKind::BitNot(a) => {
                self.long(a)?;
                self.e(Insn::alu64_imm(Alu::Xor, R0, -1));
            }
            ExprKind::Not(a) => {
                self.long(a)?;
                self.bool_of(Cond::Eq, 0);
            }
            ExprKind::Arith(op, a, b) => {
                let t = self.tmp_long();
                self.long(a)?;
                self.st_local(t, R0);
                self.long(b)?;
                self.e(Insn::mov64_reg(R1, R0));
                self.ld_local(R0, t);
                // An error points at the operator, between the operands.
                let at = Span {
                    start: a.span.end,
                    end: b.span.start.max(a.span.end),
                    ..a.span
                };
                self.arith(*op, at)?;
            }
            ExprKind::Cmp(op, a, b) => {
                if a.ty == Ty::Str {
                    self.str_cmp(*op, a, b)?;
                } else {
                    let t = self.tmp_long();
                    self.long(a)?;
                    self.st_local(t, R0);
                    self.long(b)?;
                    self.e(Insn::mov64_reg(R1, R0));
                    self.ld_local(R0, t);
                    let c = cmp_cond(*op);
                    self.bool_of_jump(|g, yes| g.jreg(c, R0, R1, yes));
                }
            }
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                let is_and = matches!(e.kind, ExprKind::And(..));
                let short = self.label();
                let end = self.label();
                self.long(a)?;
                self.jimm(if is_and { Cond::Eq } else { Cond::Ne }, R0, 0, short);
                self.long(b)?;
                self.bool_of(Cond::Ne, 0);
                self.jmp(end);
                self.bind(short);
                self.e(Insn::mov64_imm(R0, if is_and { 0 } else { 1 }));
                self.bind(end);
            }
            ExprKind::Cond(c, a, b) => {
                let els = self.label();
                let end = self.label();
                self.long(c)?;
                self.jimm(Cond::Eq, R0, 0, els);
                self.long(a)?;
                self.jmp(end);
                self.bind(els);
                self.long(b)?;
                self.bind(end);
            }
            ExprKind::Assign(place, v) => {
                self.long(v)?;
                self.write_long(place, e.span)?;
            }
            ExprKind::AssignOp(place, op, v) => {
                let t = self.tmp_long();
                self.long(v)?;
                self.st_local(t, R0);
                self.read_long(place, e.span)?;
                self.ld_local(R1, t);
                self.arith(*op, e.span)?;
                self.write_long(place, e.span)?;
            }
            // A global's `g++` whose value is used: an atomic fetch-and-add,
            // so concurrent probes on other CPUs lose no update.
            ExprKind::Crement { place, delta, post } if !matches!(place, Place::Local(_)) => {
                self.mov_imm(R0, *delta);
                let old = self.atomic_add(place, true, e.span)?;
                self.ld_local(R0, old);
                if !*post {
                    self.e(Insn::alu64_imm(Alu::Add, R0, *delta as i32));
                }
            }
            ExprKind::Crement { place, delta, post } => {
                let t = self.tmp_long();
                self.read_long(place, e.span)?;
                self.st_local(t, R0);
                self.e(Insn::alu64_imm(Alu::Add, R0, *delta as i32));
                self.write_long(place, e.span)?;
                if *post {
                    self.ld_local(R0, t);
                }
            }
            ExprKind::StatAdd(place, v) => {
                self.stat_add(place, v, e.span)?;
                self.e(Insn::mov64_imm(R0, 0));
            }
            ExprKind::Regex {
                subject,
                pattern,
                negate,
            } => self.regex_match(subject, pattern, *negate, e.span)?,
            ExprKind::StatGet { op, place, .. } => self.stat_get(*op, place, e.span)?,
            ExprKind::Str(_)
            | ExprKind::Concat(..)
            | ExprKind::AppendStr(..)
            | ExprKind::Format { .. } => {
                return Err(Diagnostic::error(
                    e.span,
                    "internal: string used as a number",
                ))
            }
        }
        Ok(())
    }

    /// r0 = (r0 cond imm) ? 1 : 0
    fn bool_of(&mut self, c: Cond, imm: i32) {
        self.bool_of_jump(|g, yes| g.jimm(c, R0, imm, yes));
    }

    /// `r0` = 1 if the jump `jump` emits (to its label) is taken, else 0.
    pub(super) fn bool_of_jump(&mut self, jump: impl FnOnce(&mut Self, ebpf_backend::Label)) {
        let yes = self.label();
        let end = self.label();
        jump(self, yes);
        self.e(Insn::mov64_imm(R0, 0));
        self.jmp(end);
        self.bind(yes);
        self.e(Insn::mov64_imm(R0, 1));
        self.bind(end);
    }

    /// r0 = r0 op r1, with stap's checks.
    fn arith(&mut self, op: LongOp, span: Span) -> R<()> {
        match op {
            LongOp::Div | LongOp::Mod => {
                let ok = self.label();
                self.jimm(Cond::Ne, R1, 0, ok);
                let outer = std::mem::replace(&mut self.span, span);
                self.fail(ErrKind::DivZero);
                self.span = outer;
                self.bind(ok);
                // Signed division and modulo (BPF_SDIV/SMOD: off = 1).
                let code = if op == LongOp::Div { 0x3f } else { 0x9f };
                self.e(Insn::new(code, R0, R1, 1, 0));
            }
            LongOp::Add => self.e(Insn::alu64_reg(Alu::Add, R0, R1)),
            LongOp::Sub => self.e(Insn::alu64_reg(Alu::Sub, R0, R1)),
            LongOp::Mul => self.e(Insn::alu64_reg(Alu::Mul, R0, R1)),
            LongOp::Shl => self.e(Insn::alu64_reg(Alu::Lsh, R0, R1)),
            LongOp::Shr => self.e(Insn::alu64_reg(Alu::Arsh, R0, R1)),
            LongOp::And => self.e(Insn::alu64_reg(Alu::And, R0, R1)),
            LongOp::Or => self.e(Insn::alu64_reg(Alu::Or, R0, R1)),
            LongOp::Xor => self.e(Insn::alu64_reg(Alu::Xor, R0, R1)),
        }
        Ok(())
    }

    // ------------------------------------------------------------ places

    /// `reg` = the address of scalar global `g` in the globals map.
    fn scalar_addr(&mut self, reg: Reg, g: GlobalId, span: Span) -> R<()> {
        let s = self
            .m
            .scalar(g)
            .ok_or_else(|| Diagnostic::error(span, "internal: no slot for global"))?;
        let (gm, off) = (self.m.globals_map, s.offset);
        self.ld_map_value(reg, gm, off);
        Ok(())
    }

    fn read_long(&mut self, place: &Place, span: Span) -> R<()> {
        match place {
            Place::Local(l) => {
                let off = self.long_local_off(*l);
                self.ld_local(R0, off);
            }
            Place::Global(g) => {
                self.scalar_addr(R1, *g, span)?;
                self.e(Insn::ldx(Size::DW, R0, R1, 0));
            }
            Place::Elem(g, keys) => {
                self.keyed_long(*g, keys, span, &mut |s, _, c, key| {
                    s.lookup(c, key);
                    let end = s.label();
                    s.jimm(Cond::Eq, R0, 0, end);
                    s.e(Insn::ldx(Size::DW, R0, R0, 0));
                    s.bind(end);
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// Store r0 (kept in r0).
    fn write_long(&mut self, place: &Place, span: Span) -> R<()> {
        match place {
            Place::Local(l) => {
                let off = self.long_local_off(*l);
                self.st_local(off, R0);
            }
            Place::Global(g) => {
                self.scalar_addr(R1, *g, span)?;
                self.e(Insn::stx(Size::DW, R1, 0, R0));
            }
            Place::Elem(g, keys) => {
                let v = self.tmp_long();
                self.st_local(v, R0);
                self.keyed(*g, keys, span, &mut |s, a, c, key| {
                    s.update_elem(a, c, key, ValAt::Local(v));
                    Ok(())
                })?;
                self.ld_local(R0, v);
            }
        }
        Ok(())
    }

    /// Zero `n` bytes at frame offset `at` from the zero area.
    pub(super) fn zero(&mut self, at: u32, n: u32) {
        let mut done = 0;
        while done < n {
            let chunk = (n - done).min(self.o.maxstr);
            self.frame_addr(R1, at + done);
            self.mov_imm(R2, chunk as i64);
            self.frame_addr(R3, F_ZERO);
            self.call(H_READ_KERNEL);
            done += chunk;
        }
    }

    /// r0 = the value pointer of the element at `key` in class `c`, or 0.
    pub(super) fn lookup(&mut self, c: &KeyClass, key: u32) {
        self.ld_map_fd(R1, c.map);
        self.frame_addr(R2, key);
        self.call(H_LOOKUP);
    }

    /// r0 = the value pointer of the element at `key` in class `c`, just
    /// inserted (or by another CPU); not there means the map was full.
    fn lookup_or_full(&mut self, c: &KeyClass, key: u32) {
        self.lookup(c, key);
        let found = self.label();
        self.jimm(Cond::Ne, R0, 0, found);
        self.fail(ErrKind::MapFull);
        self.bind(found);
    }

    pub(super) fn delete(&mut self, place: &Place, span: Span) -> R<()> {
        match place {
            Place::Elem(g, keys) => {
                self.keyed(*g, keys, span, &mut |s, a, c, key| {
                    s.ld_map_fd(R1, c.map);
                    s.frame_addr(R2, key);
                    s.call(H_DELETE);
                    s.count_delete(a);
                    Ok(())
                })?;
            }
            Place::Local(_) | Place::Global(_) => {
                // Deleting a scalar resets it.
                match self.place_ty(place) {
                    Ty::Str => {
                        let s = self.place_sloc(place, span)?;
                        self.set_empty(s);
                    }
                    _ => {
                        self.e(Insn::mov64_imm(R0, 0));
                        self.write_long(place, span)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn place_ty(&self, place: &Place) -> Ty {
        match place {
            Place::Local(l) => self.locals[l.0 as usize].ty,
            Place::Global(g) | Place::Elem(g, _) => self.p.globals[g.0 as usize].ty,
        }
    }

    /// `place <<< v` on a per-CPU statistic.
    pub(super) fn stat_add(&mut self, place: &Place, v: &Expr, span: Span) -> R<()> {
        let (g, keys): (GlobalId, &[Expr]) = match place {
            Place::Elem(g, k) => (*g, k),
            Place::Global(g) => (*g, &[]),
            Place::Local(_) => return Err(Diagnostic::error(span, "statistics must be globals")),
        };
        self.long(v)?;
        let val = self.tmp_long();
        self.st_local(val, R0);
        self.keyed(g, keys, span, &mut |s, a, c, key| {
            s.stat_add_at(a, c, key, val)
        })
    }

    /// `<<<` of the long temp `val` into the element at `key` in class `c`.
    fn stat_add_at(&mut self, a: &ArrayMap, c: &KeyClass, key: u32, val: i16) -> R<()> {
        self.lookup(c, key);
        let have = self.label();
        self.jimm(Cond::Ne, R0, 0, have);
        // First value on this CPU: insert a zeroed aggregate (or find the
        // one another CPU inserted meanwhile).
        self.insert_elem(a, c, key, ValAt::Frame(F_ZERO), None);
        self.lookup_or_full(c, key);
        self.bind(have);
        // r0 = aggregate, r1 = value.
        self.ld_local(R1, val);
        self.e(Insn::ldx(Size::DW, R2, R0, STAT_COUNT));
        self.e(Insn::alu64_imm(Alu::Add, R2, 1));
        self.e(Insn::stx(Size::DW, R0, STAT_COUNT, R2));
        self.e(Insn::ldx(Size::DW, R2, R0, STAT_SUM));
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        self.e(Insn::stx(Size::DW, R0, STAT_SUM, R2));
        // min/max: the first value sets both.
        let first = self.label();
        let minok = self.label();
        let maxok = self.label();
        self.e(Insn::ldx(Size::DW, R2, R0, STAT_COUNT));
        self.jimm(Cond::Eq, R2, 1, first);
        self.e(Insn::ldx(Size::DW, R2, R0, STAT_MIN));
        self.jreg(Cond::Sle, R2, R1, minok);
        self.e(Insn::stx(Size::DW, R0, STAT_MIN, R1));
        self.bind(minok);
        self.e(Insn::ldx(Size::DW, R2, R0, STAT_MAX));
        self.jreg(Cond::Sge, R2, R1, maxok);
        self.e(Insn::stx(Size::DW, R0, STAT_MAX, R1));
        let hist = self.label();
        self.jmp(hist);
        self.bind(first);
        self.e(Insn::stx(Size::DW, R0, STAT_MIN, R1));
        self.e(Insn::stx(Size::DW, R0, STAT_MAX, R1));
        self.bind(maxok);
        self.bind(hist);
        let layout = a.stat.clone();
        // The aggregate's address stays in r8 (a pointer cannot be kept in
        // the frame map; nothing below calls a helper).
        self.e(Insn::mov64_reg(R8, R0));
        if let Some(shift) = layout.variance {
            self.stat_variance(val, shift as i32);
        }
        if let Some(at) = layout.log {
            self.stat_log_bucket(val, at);
        }
        for (l, at) in &layout.linear {
            self.stat_linear_bucket(val, l, *at);
        }
        Ok(())
    }

    /// Welford's update of the running average and squared differences,
    /// as stap's `_stp_stat_add` (values scaled by `shift` bits).
    fn stat_variance(&mut self, val: i16, shift: i32) {
        let (first, end) = (self.label(), self.label());
        self.e(Insn::mov64_reg(R0, R8));
        self.ld_local(R1, val);
        self.e(Insn::alu64_imm(Alu::Lsh, R1, shift));
        self.e(Insn::ldx(Size::DW, R2, R0, STAT_COUNT));
        self.jimm(Cond::Eq, R2, 1, first);
        // delta = scaled - avg_s; avg_s += delta / count
        self.e(Insn::ldx(Size::DW, R3, R0, STAT_AVG_S));
        self.e(Insn::mov64_reg(R4, R1));
        self.e(Insn::alu64_reg(Alu::Sub, R4, R3));
        self.e(Insn::mov64_reg(R5, R4));
        self.e(Insn::new(0x3f, R5, R2, 1, 0)); // BPF_SDIV
        self.e(Insn::alu64_reg(Alu::Add, R3, R5));
        self.e(Insn::stx(Size::DW, R0, STAT_AVG_S, R3));
        // m2 += delta * (scaled - avg_s); variance_s = m2 / (count - 1)
        self.e(Insn::alu64_reg(Alu::Sub, R1, R3));
        self.e(Insn::alu64_reg(Alu::Mul, R4, R1));
        self.e(Insn::ldx(Size::DW, R3, R0, STAT_M2));
        self.e(Insn::alu64_reg(Alu::Add, R3, R4));
        self.e(Insn::stx(Size::DW, R0, STAT_M2, R3));
        self.e(Insn::alu64_imm(Alu::Sub, R2, 1));
        self.e(Insn::new(0x3f, R3, R2, 1, 0));
        self.e(Insn::stx(Size::DW, R0, STAT_VARIANCE_S, R3));
        self.jmp(end);
        self.bind(first);
        self.e(Insn::stx(Size::DW, R0, STAT_AVG_S, R1));
        self.e(Insn::st_imm(Size::DW, R0, STAT_M2, 0));
        self.bind(end);
    }

    /// Count the value in its `@hist_log` bucket (the host's layout: 0 in
    /// the middle, a bucket per power of two on each side).
    fn stat_log_bucket(&mut self, val: i16, at: u32) {
        let mid = LOG_BUCKET0 as i32;
        let (zero, neg, count) = (self.label(), self.label(), self.label());
        self.e(Insn::mov64_imm(R3, mid));
        self.ld_local(R1, val);
        self.jimm(Cond::Eq, R1, 0, count);
        // r4 = |val| (as unsigned), r5 = its bit length.
        self.e(Insn::mov64_reg(R4, R1));
        let pos = self.label();
        self.jimm(Cond::Sgt, R1, 0, pos);
        self.e(Insn::neg64(R4));
        self.bind(pos);
        self.e(Insn::mov64_imm(R5, 1));
        for shift in [32, 16, 8, 4, 2, 1] {
            let skip = self.label();
            self.e(Insn::mov64_reg(R2, R4));
            self.e(Insn::alu64_imm(Alu::Rsh, R2, shift));
            self.jimm(Cond::Eq, R2, 0, skip);
            self.e(Insn::mov64_reg(R4, R2));
            self.e(Insn::alu64_imm(Alu::Add, R5, shift));
            self.bind(skip);
        }
        self.jimm(Cond::Slt, R1, 0, neg);
        // Positive: mid + bits, at most the last bucket.
        self.e(Insn::alu64_reg(Alu::Add, R3, R5));
        self.jimm(Cond::Le, R3, (LOG_BUCKETS - 1) as i32, count);
        self.e(Insn::mov64_imm(R3, (LOG_BUCKETS - 1) as i32));
        self.jmp(count);
        self.bind(neg);
        // Negative: mid - bits, at least 0.
        self.e(Insn::alu64_reg(Alu::Sub, R3, R5));
        self.jimm(Cond::Sge, R3, 0, count);
        self.e(Insn::mov64_imm(R3, 0));
        self.bind(zero);
        self.bind(count);
        self.count_bucket(at, LOG_BUCKETS as u32);
    }

    /// Count the value in its `@hist_linear` bucket: 0 below the start, the
    /// last one at or past the stop.
    fn stat_linear_bucket(&mut self, val: i16, l: &Linear, at: u32) {
        let last = (l.buckets() - 1) as i32;
        let count = self.label();
        self.e(Insn::mov64_imm(R3, 0));
        self.ld_local(R1, val);
        self.mov_imm(R2, l.start);
        self.jreg(Cond::Slt, R1, R2, count);
        // (val - start) / interval + 1, dividing unsigned as stap does.
        self.e(Insn::mov64_reg(R3, R1));
        self.e(Insn::alu64_reg(Alu::Sub, R3, R2));
        self.mov_imm(R2, l.interval);
        self.e(Insn::alu64_reg(Alu::Div, R3, R2));
        self.e(Insn::alu64_imm(Alu::Add, R3, 1));
        self.jimm(Cond::Lt, R3, last, count);
        self.e(Insn::mov64_imm(R3, last));
        self.bind(count);
        self.count_bucket(at, l.buckets() as u32);
    }

    /// buckets[r3] += 1 for the bucket array at offset `at` of the
    /// aggregate in r8 (r3 is masked for the verifier; it is in range).
    fn count_bucket(&mut self, at: u32, n: u32) {
        let bound = n.next_power_of_two() - 1;
        let ok = self.label();
        self.jimm(Cond::Gt, R3, (n - 1) as i32, ok);
        self.e(Insn::alu64_imm(Alu::And, R3, bound as i32));
        self.e(Insn::alu64_imm(Alu::Lsh, R3, 3));
        self.e(Insn::alu64_reg(Alu::Add, R3, R8));
        self.e(Insn::ldx(Size::DW, R4, R3, at as i16));
        self.e(Insn::alu64_imm(Alu::Add, R4, 1));
        self.e(Insn::stx(Size::DW, R3, at as i16, R4));
        self.bind(ok);
    }

    // ------------------------------------------------------------ calls

    /// Evaluate `args` left to right into fresh temporaries (strings are
    /// copied: an argument may be a call's result slot that a later
    /// argument's call would overwrite).
    pub(super) fn eval_to_temps(&mut self, args: &[Expr]) -> R<Vec<Temp>> {
        let mut vals = Vec::new();
        for a in args {
            if a.ty == Ty::Str {
                let s = self.string(a)?;
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                vals.push(Temp::Str(SLoc::Frame(t)));
            } else {
                self.long(a)?;
                let t = self.tmp_long();
                self.st_local(t, R0);
                vals.push(Temp::Long(t));
            }
        }
        Ok(vals)
    }

    /// Evaluate arguments into temporaries, copy them into the callee's
    /// parameter slots, call, and unwind on error.
    pub(super) fn call_fn(&mut self, f: usize, args: &[Expr], span: Span) -> R<()> {
        let vals = self.eval_to_temps(args)?;
        let callee = super::emit::Owner::Func(f);
        let func = &self.p.functions[f];
        let locals = func.locals.clone();
        for (i, v) in vals.into_iter().enumerate() {
            let l = LocalId(i as u32);
            match v {
                Temp::Long(t) => {
                    let idx = locals[..i].iter().filter(|x| x.ty != Ty::Str).count() as u32;
                    let abs = self.bases.get(&callee).copied().unwrap_or(0) + idx * 8;
                    self.ld_local(R0, t);
                    self.frame_addr(R1, abs);
                    self.e(Insn::stx(Size::DW, R1, 0, R0));
                }
                Temp::Str(s) => {
                    let idx = locals[..l.0 as usize]
                        .iter()
                        .filter(|x| x.ty == Ty::Str)
                        .count() as u32;
                    let abs = self.str_base(callee) + idx * self.strslot;
                    self.copy_str(SLoc::Frame(abs), s);
                }
            }
        }
        self.inline_call(f, span)
    }

    /// Emit function `f`'s body in place, in its own frame region (r7 is
    /// switched there and back). Recursion was refused at pass 3, so one
    /// region per function is enough.
    fn inline_call(&mut self, f: usize, span: Span) -> R<()> {
        let _ = span;
        let func = self.p.functions[f].clone();
        let saved_owner = self.owner;
        let saved_locals = std::mem::take(&mut self.locals);
        let saved_alloc = self.alloc.clone();
        let saved_ret = self.ret;
        let saved_span = self.span;
        self.end_owner();
        self.begin_owner(super::emit::Owner::Func(f), &func.locals, func.ret);
        let base = self.base();
        self.e(Insn::mov64_reg(R7, R6));
        self.e(Insn::alu64_imm(Alu::Add, R7, base as i32));
        for i in func.params..func.locals.len() {
            let l = LocalId(i as u32);
            if func.locals[i].ty == Ty::Str {
                let abs = self.str_local_abs(l);
                self.set_empty(SLoc::Frame(abs));
            } else {
                let off = self.long_local_off(l);
                self.e(Insn::st_imm(Size::DW, R7, off, 0));
            }
        }
        let ow = super::emit::Owner::Func(f);
        match func.ret {
            Some(Ty::Str) => {
                let abs = self.ret_str_abs(ow, &func.locals);
                self.set_empty(SLoc::Frame(abs));
            }
            Some(_) => {
                let abs = self.ret_long_abs(ow, &func.locals);
                self.frame_addr(R1, abs);
                self.e(Insn::st_imm(Size::DW, R1, 0, 0));
            }
            None => {}
        }
        let end = self.label();
        self.inlines.push(super::emit::InlineFrame {
            end,
            loop_depth: self.loop_depth,
        });
        self.charged(&func.body)?;
        self.inlines.pop();
        self.bind(end);
        self.end_owner();
        self.owner = saved_owner;
        self.locals = saved_locals;
        self.alloc = saved_alloc;
        self.ret = saved_ret;
        self.span = saved_span;
        let base = self.base();
        self.e(Insn::mov64_reg(R7, R6));
        self.e(Insn::alu64_imm(Alu::Add, R7, base as i32));
        Ok(())
    }

    // ------------------------------------------------------------ builtins

    /// Emit a builtin; returns whether r0 holds a value.
    fn builtin(&mut self, b: Builtin, args: &[Expr], e: &Expr) -> R<bool> {
        use Builtin::*;
        let span = e.span;
        if e.ty == Ty::Str && !matches!(b, Print | Println | Warn | Error | Exit | System) {
            let s = self.string(e)?;
            let _ = s;
            return Ok(false);
        }
        match b {
            Pid | Tid => {
                self.call(H_PID_TGID);
                if b == Pid {
                    self.e(Insn::alu64_imm(Alu::Rsh, R0, 32));
                } else {
                    self.e(Insn::mov32_reg(R0, R0));
                }
            }
            Uid => {
                self.call(H_UID_GID);
                self.e(Insn::mov32_reg(R0, R0));
            }
            Gid => {
                self.call(H_UID_GID);
                self.e(Insn::alu64_imm(Alu::Rsh, R0, 32));
            }
            Cpu => self.call(H_CPU),
            Target => {
                let gm = self.m.globals_map;
                self.ld_map_value(R1, gm, TARGET_OFFSET);
                self.e(Insn::ldx(Size::DW, R0, R1, 0));
            }
            GettimeofdayS | GettimeofdayMs | GettimeofdayUs | GettimeofdayNs => {
                self.call(H_BOOT_NS);
                self.mov_imm(R1, self.o.boot_to_wall_ns);
                self.e(Insn::alu64_reg(Alu::Add, R0, R1));
                let div = match b {
                    GettimeofdayS => 1_000_000_000,
                    GettimeofdayMs => 1_000_000,
                    GettimeofdayUs => 1_000,
                    _ => 1,
                };
                if div > 1 {
                    self.e(Insn::alu64_imm(Alu::Div, R0, div));
                }
            }
            LocalClockNs | LocalClockUs | LocalClockMs | LocalClockS => {
                self.call(H_KTIME_NS);
                let div = match b {
                    LocalClockS => 1_000_000_000,
                    LocalClockMs => 1_000_000,
                    LocalClockUs => 1_000,
                    _ => 1,
                };
                if div > 1 {
                    self.e(Insn::alu64_imm(Alu::Div, R0, div));
                }
            }
            Jiffies => self.call(H_JIFFIES),
            UserMode => self.user_mode(),
            Addr => {
                // The kernel address of a kernel-mode sample, else the user one.
                let user = self.label();
                let end = self.label();
                self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
                self.jimm(Cond::Set, R1, FLAG_KERNEL, user);
                self.e(Insn::ldx(Size::DW, R0, R6, F_REGS + PT_IP));
                self.jmp(end);
                self.bind(user);
                self.e(Insn::ldx(Size::DW, R0, R6, F_KIP));
                self.bind(end);
            }
            Uaddr => {
                self.frame_addr(R1, F_REGS as u32);
                self.e(Insn::ldx(Size::DW, R0, R1, PT_IP));
                {
                    // Only a user-mode address counts.
                    self.e(Insn::ldx(Size::DW, R2, R1, PT_CS));
                    self.e(Insn::alu64_imm(Alu::And, R2, 3));
                    let ok = self.label();
                    self.jimm(Cond::Eq, R2, 3, ok);
                    self.e(Insn::mov64_imm(R0, 0));
                    self.bind(ok);
                }
            }
            URegister | Returnval => {
                let name = match (b, args.first().map(|a| &a.kind)) {
                    (Returnval, _) => "rax".to_string(),
                    (_, Some(ExprKind::Str(n))) => n.clone(),
                    _ => {
                        return Err(Diagnostic::error(
                            span,
                            "u_register() takes a register name literal",
                        ))
                    }
                };
                let Some(off) = pt_regs_offset(&name) else {
                    return Err(Diagnostic::error(
                        span,
                        format!("unknown x86-64 register '{name}'"),
                    ));
                };
                // Only a context that interrupted user mode has user registers.
                self.frame_addr(R1, F_REGS as u32);
                self.e(Insn::ldx(Size::DW, R2, R1, PT_CS));
                self.e(Insn::alu64_imm(Alu::And, R2, 3));
                self.e(Insn::mov64_imm(R0, 0));
                let kernel = self.label();
                self.jimm(Cond::Ne, R2, 3, kernel);
                self.e(Insn::ldx(Size::DW, R0, R1, off));
                self.bind(kernel);
            }
            ModuleBias => {
                let Some(ExprKind::Str(path)) = args.first().map(|a| &a.kind) else {
                    return Err(Diagnostic::error(
                        span,
                        "internal: module bias needs a literal path",
                    ));
                };
                let Some(&bias) = self.o.biases.get(path) else {
                    return Err(Diagnostic::error(
                        span,
                        format!("the load address of {path} is unknown: it is not mapped in the target process"),
                    ));
                };
                self.mov_imm(R0, bias as i64);
            }
            UserInt8(f) | UserUint8(f) | UserInt16(f) | UserUint16(f) | UserInt32(f)
            | UserUint32(f) | UserInt64(f) | UserUint64(f) => {
                let (size, signed) = match b {
                    UserInt8(_) => (Size::B, true),
                    UserUint8(_) => (Size::B, false),
                    UserInt16(_) => (Size::H, true),
                    UserUint16(_) => (Size::H, false),
                    UserInt32(_) => (Size::W, true),
                    UserUint32(_) => (Size::W, false),
                    _ => (Size::DW, false),
                };
                self.long(&args[0])?;
                self.user_read(size, signed, f);
            }
            KernelRead(size, signed) => {
                self.long(&args[0])?;
                // A fault is the read's (a kernel `@cast`'s), not its
                // address expression's.
                self.span = span;
                self.kernel_read(size, signed);
            }
            Context => {
                self.e(Insn::ldx(Size::DW, R0, R6, F_CTX));
            }
            TaskCurrent => self.call(H_CUR_TASK),
            MemPageSize => self.mov_imm(R0, crate::system::page_size() as i64),
            GetLoadavgIndex => return Err(super::strings::loadavg_in_kernel(span)),
            OnHost => self.mov_imm(R0, 0),
            Verbose => self.mov_imm(R0, self.o.verbose as i64),
            PidnsInum => self.mov_imm(R0, crate::task_info::pid_ns_inum()),
            RandomU32 => self.call(H_PRANDOM),
            // stapxx-rs's own ids do not change while it runs: known here.
            HostId => match args.first().map(|a| &a.kind) {
                Some(crate::ir::ExprKind::Long(n)) => {
                    self.mov_imm(R0, crate::runtime::host::id(*n))
                }
                _ => self.mov_imm(R0, -1),
            },
            TzGmtoff => self.mov_imm(R0, crate::runtime::host::timezone().0),
            ErrnoP => self.errno_p(&args[0])?,
            Strlen => {
                let s = self.string(&args[0])?;
                self.sloc_addr(R1, s);
                self.e(Insn::ldx(Size::DW, R0, R1, 0));
            }
            Abs => {
                self.long(&args[0])?;
                let ok = self.label();
                self.jimm(Cond::Sge, R0, 0, ok);
                self.e(Insn::neg64(R0));
                self.bind(ok);
            }
            Min | Max => {
                let t = self.tmp_long();
                self.long(&args[0])?;
                self.st_local(t, R0);
                self.long(&args[1])?;
                self.e(Insn::mov64_reg(R1, R0));
                self.ld_local(R0, t);
                let keep = self.label();
                self.jreg(if b == Min { Cond::Sle } else { Cond::Sge }, R0, R1, keep);
                self.e(Insn::mov64_reg(R0, R1));
                self.bind(keep);
            }
            Print | Println => {
                // Every argument, with nothing between them (as stap);
                // one (printf's formatted string) is copied as it is.
                let t = self.tmp_str();
                if args.len() != 1 {
                    self.set_empty(SLoc::Frame(t));
                }
                for (i, a) in args.iter().enumerate() {
                    let m = self.mark();
                    let s = if a.ty == Ty::Str {
                        self.string(a)?
                    } else {
                        self.format_long_to_new(a, "%lld")?
                    };
                    if args.len() == 1 && i == 0 {
                        self.copy_str(SLoc::Frame(t), s);
                    } else {
                        self.append_str(SLoc::Frame(t), s);
                    }
                    self.release(m);
                }
                if b == Println {
                    self.append_lit(SLoc::Frame(t), "\n");
                }
                self.output(REC_PRINT, t);
                return Ok(false);
            }
            System => {
                let s = self.string(&args[0])?;
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                self.output(REC_SYSTEM, t);
                return Ok(false);
            }
            Warn | Error => {
                let s = self.string(&args[0])?;
                if b == Error && self.raise_caught(s) {
                    return Ok(false);
                }
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                self.output(if b == Warn { REC_WARN } else { REC_ERROR }, t);
                if b == Error {
                    self.fail(ErrKind::Script);
                }
                return Ok(false);
            }
            Exit => {
                // The flag first: the record may not fit in a full buffer,
                // and the session must end anyway.
                let gm = self.m.globals_map;
                self.ld_map_value(R1, gm, EXIT_OFFSET);
                self.e(Insn::st_imm(Size::DW, R1, 0, 1));
                // No kernel probe starts after this one (stap's session
                // leaves the running state at once): a sampler that
                // prints and exits from its probe prints once.
                self.ld_map_value(R1, gm, RUNNING_OFFSET);
                self.e(Insn::st_imm(Size::DW, R1, 0, 0));
                let t = self.tmp_str();
                self.set_empty(SLoc::Frame(t));
                self.output(REC_EXIT, t);
                return Ok(false);
            }
            Isinstr => self.isinstr(&args[0], &args[1])?,
            Ppid => self.ppid(span)?,
            Printd | Printdln => {
                // The arguments joined by the delimiter, as one record.
                let delim = self.string(&args[0])?;
                let d = self.tmp_str();
                self.copy_str(SLoc::Frame(d), delim);
                let t = self.tmp_str();
                self.set_empty(SLoc::Frame(t));
                for (i, a) in args.iter().skip(1).enumerate() {
                    if i > 0 {
                        self.append_str(SLoc::Frame(t), SLoc::Frame(d));
                    }
                    let s = if a.ty == Ty::Str {
                        self.string(a)?
                    } else {
                        self.format_long_to_new(a, "%lld")?
                    };
                    self.append_str(SLoc::Frame(t), s);
                }
                if b == Printdln {
                    self.append_lit(SLoc::Frame(t), "\n");
                }
                self.output(REC_PRINT, t);
                return Ok(false);
            }
            Strtol => self.strtol(&args[0], &args[1])?,
            PrintUbacktrace(brief) => {
                let t = self.tmp_str();
                let from = (args.len() == 3).then_some(args);
                self.ubacktrace(SLoc::Frame(t), super::unwind::Frames::All, None, from)?;
                self.output(
                    if brief {
                        REC_USTACK_BRIEF
                    } else {
                        REC_USTACK_FULL
                    },
                    t,
                );
                return Ok(false);
            }
            PrintBacktrace => {
                let t = self.tmp_str();
                self.backtrace(SLoc::Frame(t), span)?;
                self.output(REC_KSTACK_FULL, t);
                return Ok(false);
            }
            PrintStack => {
                let s = self.string(&args[0])?;
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                self.output(REC_KSTACK_SYMS, t);
                return Ok(false);
            }
            PrintUstack => {
                let s = self.string(&args[0])?;
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                self.output(REC_USTACK_USYMS, t);
                return Ok(false);
            }
            SetSyscallRegs | SyscallNr | SyscallArg | IsCompatTask | Probing32bitApp
            | IntCast(..) => return self.sregs_builtin(b, args, span),
            _ => return Err(unsupported(span, &format!("the builtin {b:?}"))),
        }
        Ok(true)
    }

    /// `r0` = user_mode(): the probe interrupted user code.
    pub(super) fn user_mode(&mut self) {
        let no = self.label();
        let end = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.jimm(Cond::Set, R1, FLAG_KERNEL, no);
        self.e(Insn::ldx(Size::DW, R0, R6, F_REGS + PT_CS));
        self.e(Insn::alu64_imm(Alu::And, R0, 3));
        self.bool_of(Cond::Eq, 3);
        self.jmp(end);
        self.bind(no);
        self.e(Insn::mov64_imm(R0, 0));
        self.bind(end);
    }

    /// Send string slot `t` as an output record (its len field gets the kind).
    pub(super) fn output(&mut self, kind: u64, t: u32) {
        self.frame_addr(R2, t);
        self.e(Insn::ldx(Size::DW, R3, R2, 0));
        self.e(Insn::alu64_imm(Alu::And, R3, (self.o.maxstr - 1) as i32));
        if kind != 0 {
            self.e2(Insn::ld_imm64(R4, kind << 32));
            self.e(Insn::alu64_reg(Alu::Or, R4, R3));
            self.e(Insn::stx(Size::DW, R2, 0, R4));
        }
        self.e(Insn::alu64_imm(Alu::Add, R3, 8));
        let om = self.m.output_map;
        self.ld_map_fd(R1, om);
        self.e(Insn::mov64_imm(R4, 0));
        self.call(H_RINGBUF_OUTPUT);
        // A full buffer (the reader fell behind): count the lost record
        // against the running handler, for the report at the end.
        let sent = self.label();
        self.jimm(Cond::Sge, R0, 0, sent);
        self.e(Insn::ldx(Size::DW, R1, R6, F_PROBE));
        self.jimm(Cond::Ge, R1, self.p.probes.len() as i32, sent);
        self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
        let em = self.m.errors_map;
        self.ld_map_value(R2, em, LOST_OFFSET);
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        self.e(Insn::mov64_imm(R3, 1));
        self.e(Insn::atomic(Size::DW, AtomicOp::Add, R2, 0, R3));
        self.bind(sent);
    }
}

/// Offset of a register in x86-64 `struct pt_regs`.
fn pt_regs_offset(name: &str) -> Option<i16> {
    let order = [
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
        "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
    ];
    let name = match name {
        "ip" => "rip",
        "sp" => "rsp",
        "bp" => "rbp",
        "ax" => "rax",
        "bx" => "rbx",
        "cx" => "rcx",
        "dx" => "rdx",
        "si" => "rsi",
        "di" => "rdi",
        "flags" => "eflags",
        n => n,
    };
    order
        .iter()
        .position(|r| *r == name)
        .map(|i| (i * 8) as i16)
}

/// The signed jump condition of a comparison.
pub(super) fn cmp_cond(op: CmpOp) -> Cond {
    match op {
        CmpOp::Eq => Cond::Eq,
        CmpOp::Ne => Cond::Ne,
        CmpOp::Lt => Cond::Slt,
        CmpOp::Le => Cond::Sle,
        CmpOp::Gt => Cond::Sgt,
        CmpOp::Ge => Cond::Sge,
    }
}
