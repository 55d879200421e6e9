//! The test a handler's program makes before anything else when its sites
//! carry a [`TaskFilter`] (`process("P").begin/.end` on tracepoints that
//! fire for every task): a field of the tracepoint's record, whether the
//! task leads its thread group, whether it belongs to process PID, and
//! whether its executable is P
//! (`current->mm->exe_file->f_inode`: inode number and the superblock's
//! device, at offsets read from the kernel's BTF). A task that fails it
//! leaves at once: no busy flag, no error, no output.

use super::emit::{Gen, R};
use super::layout::{F_ARGS, F_BUSY};
use super::regs::*;
use crate::probes::lifecycle::TaskFilter;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::{Diagnostic, Span};

impl<'a> Gen<'a> {
    /// `r9` holds the context (the tracepoint's record), `r6` the frame.
    pub(super) fn task_filter(&mut self, f: &TaskFilter, span: Span) -> R<()> {
        let skip = self.label();
        if let Some((off, size, nonzero)) = f.record {
            let sz = match size {
                1 => Size::B,
                2 => Size::H,
                4 => Size::W,
                _ => Size::DW,
            };
            self.e(Insn::ldx(sz, R1, R9, off as i16));
            let c = if nonzero { Cond::Eq } else { Cond::Ne };
            self.jimm(c, R1, 0, skip);
        }
        if let Some(leader) = f.leader {
            // The low half is the thread id, the high half the group's.
            self.call(H_PID_TGID);
            self.e(Insn::mov64_reg(R1, R0));
            self.e(Insn::alu64_imm(Alu::Rsh, R1, 32));
            self.e(Insn::alu64_imm(Alu::Lsh, R0, 32));
            self.e(Insn::alu64_imm(Alu::Rsh, R0, 32));
            let c = if leader { Cond::Ne } else { Cond::Eq };
            self.jreg(c, R0, R1, skip);
        }
        if let Some(pid) = f.pid {
            // The high half is the thread group's id (the process).
            self.call(H_PID_TGID);
            self.e(Insn::alu64_imm(Alu::Rsh, R0, 32));
            self.mov_imm(R1, i64::from(pid));
            self.jreg(Cond::Ne, R0, R1, skip);
        }
        if let Some((dev, ino)) = f.exe {
            let Some(o) = self.o.exe else {
                return Err(Diagnostic::error(
                    span,
                    "telling processes by their executable needs the kernel's BTF (/sys/kernel/btf/vmlinux)",
                ));
            };
            // r0 = current, then ->mm, ->exe_file, ->f_inode (any 0: skip).
            self.call(H_CUR_TASK);
            for at in [o.task_mm, o.mm_exe_file, o.file_inode] {
                self.read_kernel_word(at, 8);
                self.jimm(Cond::Eq, R0, 0, skip);
            }
            self.e(Insn::stx(Size::DW, R6, F_ARGS + 8, R0));
            self.read_kernel_word(o.inode_ino, 8);
            self.mov_imm(R1, ino as i64);
            self.jreg(Cond::Ne, R0, R1, skip);
            self.e(Insn::ldx(Size::DW, R0, R6, F_ARGS + 8));
            self.read_kernel_word(o.inode_sb, 8);
            self.jimm(Cond::Eq, R0, 0, skip);
            self.read_kernel_word(o.sb_dev, 4);
            self.mov_imm(R1, dev as i64);
            self.jreg(Cond::Ne, R0, R1, skip);
        }
        let go = self.label();
        self.jmp(go);
        self.bind(skip);
        // Runs with the frame taken (so a nested handler cannot clobber the
        // scratch words): give it back.
        self.e(Insn::st_imm(Size::DW, R6, F_BUSY, 0));
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(go);
        Ok(())
    }

    /// `r0` = the `size`-byte word at kernel address `r0 + at` (0 when it
    /// cannot be read: the helper zeroes its buffer on a fault).
    fn read_kernel_word(&mut self, at: u32, size: i32) {
        self.e(Insn::mov64_reg(R3, R0));
        self.e(Insn::alu64_imm(Alu::Add, R3, at as i32));
        self.e(Insn::st_imm(Size::DW, R6, F_ARGS, 0));
        self.frame_addr(R1, F_ARGS as u32);
        self.e(Insn::mov64_imm(R2, size));
        self.call(H_READ_KERNEL);
        self.e(Insn::ldx(Size::DW, R0, R6, F_ARGS));
    }
}
