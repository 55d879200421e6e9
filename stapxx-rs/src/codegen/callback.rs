//! Callbacks for `bpf_loop` and `bpf_for_each_map_elem` that the compiler
//! writes itself (string comparison, `foreach`, `delete arr`), as opposed to
//! the callbacks of script loops (`Gen::lp`).
//!
//! A callback shares the frame region of the function it serves, so the
//! caller's temporaries (allocated before the callback is opened) are
//! visible in it at the same offsets. Its arguments are spilled to the BPF
//! stack before the frame lookup clobbers `r1..r5`; a spilled pointer keeps
//! its type for the verifier, so a map key or value pointer can be loaded
//! back with [`Gen::cb_arg`].

use super::emit::{Body, Gen};
use super::layout::*;
use super::regs::*;
use ebpf_backend::insn::{self, Alu, Cond, Reg, Size};
use ebpf_backend::{FuncAsm, FuncId as AFunc, FuncKind, Insn, Label};

const FP: Reg = insn::R10;

/// The labels of an open callback.
pub(super) struct Cb {
    /// Stop the iteration (return 1), marking the loop as finished.
    pub(super) stop: Label,
    /// Go on with the next element (return 0).
    pub(super) next: Label,
    nargs: usize,
}

impl<'a> Gen<'a> {
    /// Open a callback of `nargs` arguments (2 for `bpf_loop`, 4 for
    /// `bpf_for_each_map_elem`). With `user`, script `break` and
    /// `continue` inside go to its stop and next labels.
    pub(super) fn cb_open(&mut self, nargs: usize, user: bool) -> Cb {
        self.callbacks += 1;
        let mut fa = FuncAsm::new();
        let unwind = fa.new_label();
        let stop = fa.new_label();
        let next = fa.new_label();
        self.bodies.push(Body {
            fa,
            unwind,
            brk: user.then_some(stop),
            cont: user.then_some(next),
            dead: false,
            targets: Default::default(),
        });
        self.loop_depth += 1;
        for (i, r) in [R1, R2, R3, R4].into_iter().take(nargs).enumerate() {
            self.e(Insn::stx(Size::DW, FP, Self::cb_slot(i), r));
        }
        self.load_frame();
        Cb { stop, next, nargs }
    }

    fn cb_slot(i: usize) -> i16 {
        -16 - 8 * i as i16
    }

    /// `r` = argument `i` of the open callback (0 = the first).
    pub(super) fn cb_arg(&mut self, r: Reg, i: usize) {
        self.e(Insn::ldx(Size::DW, r, FP, Self::cb_slot(i)));
    }

    /// Close the open callback: `next` returns 0, `stop` sets the done flag
    /// and returns 1, an error or `next` statement returns 1 too (the caller
    /// checks the frame after the helper call).
    pub(super) fn cb_close(&mut self, cb: Cb, name: &str) -> AFunc {
        self.bind(cb.next);
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(cb.stop);
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.e(Insn::alu64_imm(Alu::Or, R1, FLAG_LOOP_DONE));
        self.e(Insn::stx(Size::DW, R6, F_FLAGS, R1));
        self.e(Insn::mov64_imm(R0, 1));
        self.e(Insn::exit());
        let u = self.cur().unwind;
        self.bind(u);
        self.e(Insn::mov64_imm(R0, 1));
        self.e(Insn::exit());
        self.loop_depth -= 1;
        let b = self.bodies.pop().expect("callback body");
        let n = self.callbacks;
        self.asm.add(
            format!("stx_{name}{n}"),
            FuncKind::Static,
            cb.nargs as u8,
            b.fa,
        )
    }

    /// `bpf_loop(n, cb, NULL, 0)` with `n` in `r1` (clobbered).
    pub(super) fn call_loop(&mut self, cb: AFunc) {
        self.clear_done();
        self.ld_func_addr(R2, cb);
        self.e(Insn::mov64_imm(R3, 0));
        self.e(Insn::mov64_imm(R4, 0));
        self.call(H_LOOP);
    }

    /// `bpf_for_each_map_elem(map, cb, NULL, 0)`.
    pub(super) fn call_for_each(&mut self, map: ebpf_backend::MapId, cb: AFunc) {
        self.clear_done();
        self.ld_map_fd(R1, map);
        self.ld_func_addr(R2, cb);
        self.e(Insn::mov64_imm(R3, 0));
        self.e(Insn::mov64_imm(R4, 0));
        self.call(H_FOR_EACH);
    }

    /// (`r5` only: `r1` may hold the loop count.)
    fn clear_done(&mut self) {
        self.e(Insn::ldx(Size::DW, R5, R6, F_FLAGS));
        self.e(Insn::alu64_imm(Alu::And, R5, !FLAG_LOOP_DONE));
        self.e(Insn::stx(Size::DW, R6, F_FLAGS, R5));
    }

    /// After a callback that runs script statements: unwind on an error or
    /// `next`, and finish a `return` made inside it.
    pub(super) fn after_user_callback(&mut self) {
        self.check_after_call();
        let ret = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.jimm(Cond::Set, R1, FLAG_RETURN, ret);
        let after = self.label();
        self.jmp(after);
        self.bind(ret);
        match self.inlines.last() {
            Some(top) if top.loop_depth == self.loop_depth => {
                let end = top.end;
                self.e(Insn::alu64_imm(Alu::And, R1, !FLAG_RETURN));
                self.e(Insn::stx(Size::DW, R6, F_FLAGS, R1));
                self.jmp(end);
            }
            _ => {
                self.e(Insn::mov64_imm(R0, 1));
                self.e(Insn::exit());
            }
        }
        self.bind(after);
    }
}
