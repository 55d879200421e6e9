//! Builtins about the current task that need load-time facts: `ppid()`
//! (offsets from the kernel's BTF) and `umodname()` (the target's
//! mappings).

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use super::unsupported;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::Span;

impl<'a> Gen<'a> {
    /// `r0` = `current->real_parent->tgid`.
    pub(super) fn ppid(&mut self, span: Span) -> R<()> {
        let Some(t) = self.o.task else {
            return Err(unsupported(
                span,
                "ppid() without the kernel's BTF (/sys/kernel/btf/vmlinux)",
            ));
        };
        let tmp = self.tmp_long();
        self.call(H_CUR_TASK);
        self.e(Insn::mov64_reg(R3, R0));
        self.e(Insn::alu64_imm(Alu::Add, R3, t.real_parent as i32));
        self.e(Insn::mov64_reg(R1, R7));
        self.e(Insn::alu64_imm(Alu::Add, R1, tmp as i32));
        self.e(Insn::mov64_imm(R2, 8));
        self.call(H_READ_KERNEL);
        self.ld_local(R3, tmp);
        self.e(Insn::alu64_imm(Alu::Add, R3, t.tgid as i32));
        self.e(Insn::st_imm(Size::DW, R7, tmp, 0));
        self.e(Insn::mov64_reg(R1, R7));
        self.e(Insn::alu64_imm(Alu::Add, R1, tmp as i32));
        self.e(Insn::mov64_imm(R2, 4));
        self.call(H_READ_KERNEL);
        self.e(Insn::ldx(Size::W, R0, R7, tmp));
        Ok(())
    }

    /// `dst` = the file mapped at the address in `r0` in the target (its
    /// mappings when the script started), or `<unknown>`.
    pub(super) fn umodname(&mut self, dst: SLoc) {
        let a = self.tmp_long();
        self.st_local(a, R0);
        let end = self.label();
        for (start, stop, path, _) in self.o.umods.clone() {
            let next = self.label();
            self.unless_in(a, start, stop, next);
            self.set_lit(dst, &path);
            self.jmp(end);
            self.bind(next);
        }
        self.set_lit(dst, "<unknown>");
        self.bind(end);
    }

    /// Go to `next` unless the long temp `a` is in `[start, stop)`.
    pub(super) fn unless_in(&mut self, a: i16, start: u64, stop: u64, next: ebpf_backend::Label) {
        self.ld_local(R1, a);
        self.mov_imm(R2, start as i64);
        self.jreg(Cond::Lt, R1, R2, next);
        self.mov_imm(R2, stop as i64);
        self.jreg(Cond::Ge, R1, R2, next);
    }
}
