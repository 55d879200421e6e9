//! `try { ... } catch(msg) { ... }` in kernel probes.
//!
//! Errors jump to the body's unwind label (after a call or a loop, the
//! caller checks the frame and jumps there too), so inside a `try` block
//! that label is the `catch` code instead: it clears the error and runs the
//! handler. `next` passes through to the real unwind. Functions are
//! inlined, so an `error()` anywhere under the block knows statically that
//! it is caught: it writes its message to the catch variable and prints
//! nothing, as in stap. Caught errors are not counted.

use super::emit::{Gen, SLoc, R};
use super::layout::*;
use super::regs::*;
use crate::ir::*;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;

impl<'a> Gen<'a> {
    pub(super) fn try_catch(
        &mut self,
        body: &[Stmt],
        var: Option<LocalId>,
        handler: &[Stmt],
    ) -> R<()> {
        let slot = var.map(|v| self.str_local_abs(v));
        let catch = self.label();
        let outer = std::mem::replace(&mut self.cur().unwind, catch);
        self.catches.push(slot);
        let r = self.charged(body);
        self.catches.pop();
        self.cur().unwind = outer;
        r?;
        let end = self.label();
        self.jmp(end);
        self.bind(catch);
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.jimm(Cond::Set, R1, FLAG_NEXT, outer);
        self.e(Insn::ldx(Size::DW, R1, R6, F_ERR));
        self.jimm(Cond::Eq, R1, 0, outer);
        // MAXACTION is not caught (as in stap): the run must end.
        self.e(Insn::alu64_imm(Alu::And, R1, (ERR_KINDS - 1) as i32));
        self.jimm(Cond::Eq, R1, ErrKind::MaxAction as i32, outer);
        if let Some(slot) = slot {
            // error()'s own message is already there.
            for kind in 1..ERR_KINDS {
                if kind == ErrKind::Script as usize
                    || !ErrKind::is_error(kind)
                    || !self.may_raise(kind)
                {
                    continue;
                }
                let other = self.label();
                self.e(Insn::ldx(Size::DW, R1, R6, F_ERR));
                self.e(Insn::alu64_imm(Alu::And, R1, (ERR_KINDS - 1) as i32));
                self.jimm(Cond::Ne, R1, kind as i32, other);
                self.set_lit(SLoc::Frame(slot), ErrKind::message(kind));
                self.bind(other);
            }
        }
        self.e(Insn::st_imm(Size::DW, R6, F_ERR, 0));
        self.charged(handler)?;
        self.bind(end);
        Ok(())
    }

    /// `error(msg)` with the message in `s`: caught by an enclosing `try`,
    /// or reported. Returns whether it was caught.
    pub(super) fn raise_caught(&mut self, s: SLoc) -> bool {
        let Some(c) = self.catches.last().copied() else {
            return false;
        };
        if let Some(slot) = c {
            self.copy_str(SLoc::Frame(slot), s);
        }
        self.fail(ErrKind::Script);
        true
    }
}
