//! `kernel_char/short/int/long/pointer(addr)`: sized reads of kernel
//! memory with `bpf_probe_read_kernel`, a fault being a probe error (as
//! stap's `kernel_*` functions), or 0 with `--skip-badvars`. Pass 2 turns
//! tracepoint variables and their member chains into these.
//!
//! No read cache as for user memory: kernel reads are cheap (no page
//! tables of another mm to walk) and their chains are short.

use super::emit::Gen;
use super::layout::*;
use super::regs::*;
use crate::ir::builtins::Builtin;
use crate::ir::Program;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;

/// Whether program `p` reads kernel memory where a fault is an error
/// (`kernel_*`, `kernel_string*`, the syscall-register builtins): only
/// then does a `catch` need the message of [`ErrKind::KernelRead`].
pub(super) fn used(p: &Program) -> bool {
    super::sregs::used(p)
        || crate::ir::print::uses_builtin(p, |b| {
            matches!(
                b,
                Builtin::KernelRead(..) | Builtin::KernelString | Builtin::KernelStringN
            )
        })
}

impl<'a> Gen<'a> {
    /// `r0` = the `bytes`-byte value at kernel address `r0`.
    pub(super) fn kernel_read(&mut self, bytes: u8, signed: bool) {
        let size = match bytes {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            _ => Size::DW,
        };
        let val = self.tmp_long();
        self.e(Insn::mov64_reg(R3, R0));
        self.e(Insn::st_imm(Size::DW, R7, val, 0));
        self.e(Insn::mov64_reg(R1, R7));
        self.e(Insn::alu64_imm(Alu::Add, R1, val as i32));
        self.e(Insn::mov64_imm(R2, size.bytes() as i32));
        self.call(H_READ_KERNEL);
        let ok = self.label();
        self.jimm(Cond::Eq, R0, 0, ok);
        if !self.o.skip_badvars {
            self.fail(ErrKind::KernelRead);
        }
        self.bind(ok);
        if signed && bytes < 8 {
            self.e(Insn::ldx_sx(size, R0, R7, val));
        } else {
            self.e(Insn::ldx(size, R0, R7, val));
        }
    }
}
