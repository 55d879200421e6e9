//! Reading a statistic (`@count`, `@sum`, `@min`, `@max`, `@avg`) inside a
//! kernel probe: the per-CPU aggregates are merged on the spot, one
//! `bpf_map_lookup_percpu_elem` per possible CPU, as stap reads its per-CPU
//! statistics. An empty aggregate is an error for `@min`, `@max`, `@avg`.

use super::emit::{Gen, R};
use super::layout::*;
use super::maps::*;
use super::regs::*;
use super::unsupported;
use crate::ir::*;
use ebpf_backend::helpers::MAP_LOOKUP_PERCPU_ELEM as H_LOOKUP_PERCPU;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::ast::StatOp;
use grammar::{Diagnostic, Span};

impl<'a> Gen<'a> {
    /// `r0` = `@op(place)`.
    pub(super) fn stat_get(&mut self, op: StatOp, place: &Place, span: Span) -> R<()> {
        if !matches!(
            op,
            StatOp::Count | StatOp::Sum | StatOp::Min | StatOp::Max | StatOp::Avg
        ) {
            return Err(unsupported(
                span,
                "this statistic extractor (use it in an end or timer probe)",
            ));
        }
        let (g, keys): (GlobalId, &[Expr]) = match place {
            Place::Elem(g, k) => (*g, k),
            Place::Global(g) => (*g, &[]),
            Place::Local(_) => return Err(Diagnostic::error(span, "statistics must be globals")),
        };
        let (cnt, sum, min, max) = (
            self.tmp_long(),
            self.tmp_long(),
            self.tmp_long(),
            self.tmp_long(),
        );
        self.keyed(g, keys, span, &mut |s, _, c, key| {
            s.merge_cpus(c.map, key, [cnt, sum, min, max]);
            Ok(())
        })?;
        if op != StatOp::Count && op != StatOp::Sum {
            let ok = self.label();
            self.ld_local(R1, cnt);
            self.jimm(Cond::Ne, R1, 0, ok);
            self.fail(ErrKind::EmptyAggregate);
            self.bind(ok);
        }
        match op {
            StatOp::Count => self.ld_local(R0, cnt),
            StatOp::Sum => self.ld_local(R0, sum),
            StatOp::Min => self.ld_local(R0, min),
            StatOp::Max => self.ld_local(R0, max),
            _ => {
                // @avg: the sum divided by the count, truncated as stap's.
                self.ld_local(R0, sum);
                self.ld_local(R1, cnt);
                self.e(Insn::new(0x3f, R0, R1, 1, 0)); // BPF_SDIV
            }
        }
        Ok(())
    }

    /// Merge the per-CPU aggregates of the element at frame buffer `key` of
    /// `map` into the long temps count, sum, min and max.
    fn merge_cpus(&mut self, map: ebpf_backend::MapId, key: u32, [cnt, sum, min, max]: [i16; 4]) {
        for t in [cnt, sum, min, max] {
            self.e(Insn::st_imm(Size::DW, R7, t, 0));
        }
        let cb = self.cb_open(2, false);
        {
            self.cpu_aggregate(map, key, cb.next);
            self.jimm(Cond::Eq, R1, 0, cb.next);
            // min/max: this CPU's, or the first CPU's when none seen yet.
            let (take_min, min_ok, take_max, max_ok) =
                (self.label(), self.label(), self.label(), self.label());
            self.ld_local(R2, cnt);
            self.e(Insn::ldx(Size::DW, R3, R0, STAT_MIN));
            self.jimm(Cond::Eq, R2, 0, take_min);
            self.ld_local(R4, min);
            self.jreg(Cond::Sle, R4, R3, min_ok);
            self.bind(take_min);
            self.st_local(min, R3);
            self.bind(min_ok);
            self.e(Insn::ldx(Size::DW, R3, R0, STAT_MAX));
            self.jimm(Cond::Eq, R2, 0, take_max);
            self.ld_local(R4, max);
            self.jreg(Cond::Sge, R4, R3, max_ok);
            self.bind(take_max);
            self.st_local(max, R3);
            self.bind(max_ok);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.st_local(cnt, R2);
            self.ld_local(R2, sum);
            self.e(Insn::ldx(Size::DW, R3, R0, STAT_SUM));
            self.e(Insn::alu64_reg(Alu::Add, R2, R3));
            self.st_local(sum, R2);
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "stat_merge");
        self.mov_imm(R1, self.o.ncpus.max(1) as i64);
        self.call_loop(f);
    }

    /// `r0` = the `@count` of the statistic at the key in the frame buffer
    /// `key` (summed over the CPUs): a sorted `foreach` over a statistics
    /// array orders by it, as stap's does by default.
    pub(super) fn percpu_count(&mut self, map: ebpf_backend::MapId, key: u32) {
        let cnt = self.tmp_long();
        self.e(Insn::st_imm(Size::DW, R7, cnt, 0));
        let cb = self.cb_open(2, false);
        {
            self.cpu_aggregate(map, key, cb.next);
            self.ld_local(R2, cnt);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.st_local(cnt, R2);
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "stat_count");
        self.mov_imm(R1, self.o.ncpus.max(1) as i64);
        self.call_loop(f);
        self.ld_local(R0, cnt);
    }

    /// In a per-CPU loop's callback (the CPU is argument 0): `r0` = that
    /// CPU's aggregate at the key in frame buffer `key`, `r1` = its count;
    /// on to `none` when the CPU has none.
    fn cpu_aggregate(&mut self, map: ebpf_backend::MapId, key: u32, none: ebpf_backend::Label) {
        self.cb_arg(R3, 0);
        self.ld_map_fd(R1, map);
        self.frame_addr(R2, key);
        self.call(H_LOOKUP_PERCPU);
        self.jimm(Cond::Eq, R0, 0, none);
        self.e(Insn::ldx(Size::DW, R1, R0, STAT_COUNT));
    }
}
