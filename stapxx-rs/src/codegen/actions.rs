//! MAXACTION in kernel probes: one budget per handler run.
//!
//! stap bounds the statements one probe handler run executes, whatever
//! loops and function calls they sit in; that is what keeps a probe from
//! holding a CPU. The frame's `F_ACTIONS` starts at 0 in every run and each
//! straight-line statement list is charged when it is entered (stap's
//! translator batches its counting the same way): a statement counts 1, a
//! `{ }` block 1 plus its statements, and every loop iteration (`for`,
//! `while`, `foreach`) 1 plus its body's statements. Going past MAXACTION
//! is a probe error at the list's first statement. The host's interpreter
//! counts the same statements one at a time (`runtime::interp`), so a
//! handler has the same budget wherever it runs.
//!
//! `bpf_loop` still gets MAXACTION as each loop's iteration count: a bound
//! the verifier knows; the budget here is what ends a run first.

use super::emit::{Gen, R};
use super::layout::*;
use super::regs::*;
use crate::ir::{Stmt, StmtKind};
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;

/// What entering the list `ss` charges: its statements, with the contents
/// of plain blocks (they run in line); branches and loop bodies are
/// charged when they are entered.
pub(super) fn list_cost(ss: &[Stmt]) -> u32 {
    ss.iter()
        .map(|s| match &s.kind {
            StmtKind::Block(b) => 1 + list_cost(b),
            _ => 1,
        })
        .fold(0u32, u32::saturating_add)
}

impl<'a> Gen<'a> {
    /// Add `n` to the run's count; past MAXACTION, fail at the current span.
    pub(super) fn charge(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        let ok = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_ACTIONS));
        self.e(Insn::alu64_imm(Alu::Add, R1, n.min(i32::MAX as u32) as i32));
        self.e(Insn::stx(Size::DW, R6, F_ACTIONS, R1));
        self.jimm(Cond::Le, R1, self.o.maxaction as i32, ok);
        self.fail(ErrKind::MaxAction);
        self.bind(ok);
    }

    /// A statement list entered as a whole: charged, then emitted.
    pub(super) fn charged(&mut self, ss: &[Stmt]) -> R<()> {
        if let Some(first) = ss.first() {
            self.span = first.span;
        }
        self.charge(list_cost(ss));
        self.stmts(ss)
    }

    /// One loop iteration of `body`: 1 for the iteration, then the body.
    pub(super) fn iteration(&mut self, body: &[Stmt]) -> R<()> {
        if let Some(first) = body.first() {
            self.span = first.span;
        }
        self.charge(1u32.saturating_add(list_cost(body)));
        self.stmts(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammar::Span;

    fn st(kind: StmtKind) -> Stmt {
        Stmt {
            kind,
            span: Span::default(),
        }
    }

    #[test]
    fn blocks_run_in_line_branches_and_loops_count_one() {
        let leaf = || st(StmtKind::Next);
        let block = st(StmtKind::Block(vec![
            leaf(),
            st(StmtKind::Block(vec![leaf()])),
        ]));
        assert_eq!(list_cost(&[leaf(), block]), 1 + (1 + 1 + (1 + 1)));
        let lp = st(StmtKind::Loop {
            cond: None,
            body: vec![leaf(), leaf(), leaf()],
            step: None,
        });
        assert_eq!(list_cost(&[lp, leaf()]), 2);
        assert_eq!(list_cost(&[]), 0);
    }
}
