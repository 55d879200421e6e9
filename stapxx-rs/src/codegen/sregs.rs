//! A system call's registers, as stap's `CONTEXT->sregs`: SystemTap's
//! syscall tapsets probe `kernel.trace("sys_enter")`/`("sys_exit")`, hand
//! the event's `$regs` (the task's saved `struct pt_regs`) to
//! `__set_syscall_pt_regs()`, and then read the call's number and
//! arguments with `_stp_syscall_nr()` and `_stp_arg2()`, often from inside
//! script functions (`int_arg(n)` is one). So the pointer is state of the
//! handler run, not of one function: it lives in a slot of the per-CPU
//! frame, cleared at the start of every run.
//!
//! The slot exists only in programs that use these builtins (the frame
//! layout of every other program stays as it was). Register offsets come
//! from the kernel's BTF ([`PtRegsOffsets`]); reads go through
//! `bpf_probe_read_kernel`, a fault being a probe error as for
//! `kernel_*` reads: the pointer is whatever the script passed.
//!
//! Without syscall registers, `_stp_arg2()` in a uprobe reads the probed
//! function's arguments from its user registers (the System V call ABI,
//! then the user stack), as stap does for `int_arg()` and friends there;
//! in any other probe it is an error, as is `_stp_syscall_nr()`.
//!
//! 32-bit tasks: `_stp_is_compat_task()` and `probing_32bit_app()` are 0.
//! A 32-bit (IA-32 emulation) task could be told by its user code
//! segment (`task_pt_regs(current)->cs` is `__USER32_CS`, 0x23) or, as
//! stap does, by `MM_CONTEXT_UPROBE_IA32` in `current->mm->context.flags`;
//! this is not done, so such a task's arguments are read as a 64-bit
//! task's would be (from di, si, ... instead of bx, cx, ...).

use super::emit::{Gen, R};
use super::layout::*;
use super::regs::*;
use super::unsupported;
use crate::ir::{Builtin, Expr, ExprKind, Fault, Program};
use crate::kernel_btf::PtRegsOffsets;
use ebpf_backend::insn::{Alu, Cond, Reg, Size};
use ebpf_backend::{Insn, Label};
use grammar::Span;

/// Registers passed in registers by the x86-64 function-call ABI: later
/// arguments are on the stack, above the return address.
const CALL_REG_ARGS: i64 = 6;

/// Whether `p` uses the syscall registers (and its frame needs the slot).
pub(super) fn used(p: &Program) -> bool {
    crate::ir::print::uses_builtin(p, |b| {
        matches!(
            b,
            Builtin::SetSyscallRegs | Builtin::SyscallNr | Builtin::SyscallArg
        )
    })
}

/// Bytes the slot takes in the frame of program `p`.
pub(super) fn slot_bytes(p: &Program) -> u32 {
    if used(p) {
        8
    } else {
        0
    }
}

impl<'a> Gen<'a> {
    /// Where the pointer lives: just before the functions' regions.
    fn sregs_slot(&self) -> u32 {
        super::emit::regions_start(self.o)
    }

    /// Whether the program can raise error `kind`: the syscall-register
    /// errors only where these builtins are used, a kernel read fault only
    /// where kernel memory is read (a `catch` copies the message of each
    /// kind that may come, and the others need no code).
    pub(super) fn may_raise(&self, kind: usize) -> bool {
        let ours = [
            ErrKind::NoSyscallRegs,
            ErrKind::NoArgRegs,
            ErrKind::BadArgNum,
        ];
        if kind == ErrKind::KernelRead as usize {
            return self.kernel_reads_used;
        }
        self.sregs_used || !ours.iter().any(|k| *k as usize == kind)
    }

    /// At a handler's start: no syscall registers yet.
    pub(super) fn reset_sregs(&mut self) {
        if self.sregs_used {
            self.frame_addr(R1, self.sregs_slot());
            self.e(Insn::st_imm(Size::DW, R1, 0, 0));
        }
    }

    /// `r` = the syscall registers' pointer (0: none set).
    fn load_sregs(&mut self, r: Reg) {
        self.frame_addr(r, self.sregs_slot());
        self.e(Insn::ldx(Size::DW, r, r, 0));
    }

    fn pt_regs(&self, span: Span) -> R<PtRegsOffsets> {
        self.o.pt_regs.ok_or_else(|| {
            unsupported(
                span,
                "reading a system call's registers without the kernel's BTF (/sys/kernel/btf/vmlinux)",
            )
        })
    }

    /// The builtins of this module; returns whether r0 holds a value.
    pub(super) fn sregs_builtin(&mut self, b: Builtin, args: &[Expr], span: Span) -> R<bool> {
        match b {
            Builtin::SetSyscallRegs => {
                self.long(&args[0])?;
                self.frame_addr(R1, self.sregs_slot());
                self.e(Insn::stx(Size::DW, R1, 0, R0));
                return Ok(false);
            }
            Builtin::SyscallNr => self.syscall_nr(span)?,
            Builtin::SyscallArg => self.syscall_arg(args, span)?,
            Builtin::IsCompatTask | Builtin::Probing32bitApp => {
                self.e(Insn::mov64_imm(R0, 0));
            }
            Builtin::IntCast(bytes, signed) => {
                self.long(&args[0])?;
                int_cast(self, bytes, signed);
            }
            _ => return Err(unsupported(span, &format!("the builtin {b:?}"))),
        }
        Ok(true)
    }

    /// `r0` = the syscall number: `orig_ax` of the syscall registers, as
    /// the kernel's `syscall_get_nr()` gives it (an `int`).
    fn syscall_nr(&mut self, span: Span) -> R<()> {
        let o = self.pt_regs(span)?;
        self.span = span;
        self.load_sregs(R0);
        let set = self.label();
        self.jimm(Cond::Ne, R0, 0, set);
        // None set: the current task's user registers, as stap's
        // `_stp_current_pt_regs()` (the tapsets' argument-less syscalls,
        // `getppid`, gate on the number without setting any).
        self.call(H_TASK_BTF);
        self.e(Insn::mov64_reg(R1, R0));
        self.call(H_TASK_PT_REGS);
        self.jimm(Cond::Ne, R0, 0, set);
        self.fail(ErrKind::NoSyscallRegs);
        self.bind(set);
        self.e(Insn::alu64_imm(Alu::Add, R0, o.orig_ax as i32));
        self.kernel_read(4, true);
        Ok(())
    }

    /// `_stp_arg2(n, sign_extend, truncate, force64)`: argument `n` of the
    /// system call (syscall registers set) or of the probed user function
    /// (a uprobe without them). With `truncate` and not `force64` the
    /// value is cut to 32 bits, sign-extended with `sign_extend`; a 64-bit
    /// task's values are otherwise kept whole.
    fn syscall_arg(&mut self, args: &[Expr], span: Span) -> R<()> {
        let o = self.pt_regs(span)?;
        // Every argument is evaluated, left to right, before the read, as
        // for a call.
        let mut t = [0i16; 4];
        for (slot, a) in t.iter_mut().zip(args) {
            self.long(a)?;
            *slot = self.tmp_long();
            self.st_local(*slot, R0);
        }
        let n_const = match args[0].kind {
            ExprKind::Long(n) => Some(n),
            _ => None,
        };
        self.span = span;
        let have = self.label();
        let no_sregs = self.label();
        let bad_num = self.label();
        // A system call's registers, in the kernel.
        self.load_sregs(R1);
        self.jimm(Cond::Eq, R1, 0, no_sregs);
        let table: Vec<(i64, u32)> = (1..=6)
            .filter_map(|n| Some((n, o.syscall_arg(n)?)))
            .collect();
        self.select(t[0], n_const, &table, R2, bad_num);
        self.load_sregs(R0);
        self.e(Insn::alu64_reg(Alu::Add, R0, R2));
        self.kernel_read(8, false);
        self.jmp(have);
        self.bind(no_sregs);
        let ctx = self.p.probes[self.probe_index].context();
        if ctx.regs && !ctx.kernel_samples {
            // A uprobe: the probed function's arguments, in the user
            // registers the handler copied at entry (`F_REGS`)...
            let table: Vec<(i64, u32)> = (1..=CALL_REG_ARGS)
                .filter_map(|n| Some((n, o.call_arg(n)?)))
                .filter(|&(_, off)| off as i32 + 8 <= PT_REGS_SIZE)
                .collect();
            let stack = self.label();
            self.select(t[0], n_const, &table, R2, stack);
            self.frame_addr(R0, F_REGS as u32);
            self.e(Insn::alu64_reg(Alu::Add, R0, R2));
            self.e(Insn::ldx(Size::DW, R0, R0, 0));
            self.jmp(have);
            // ... then on its stack: argument 7 just above the return
            // address. A page that cannot be read warns and gives 0, as
            // stap does.
            self.bind(stack);
            self.ld_local(R1, t[0]);
            self.jimm(Cond::Sle, R1, CALL_REG_ARGS as i32, bad_num);
            self.e(Insn::alu64_imm(Alu::Sub, R1, CALL_REG_ARGS as i32));
            self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
            self.frame_addr(R0, F_REGS as u32 + o.sp);
            self.e(Insn::ldx(Size::DW, R0, R0, 0));
            self.e(Insn::alu64_reg(Alu::Add, R0, R1));
            self.user_read(Size::DW, false, Fault::Warn);
            self.jmp(have);
        } else {
            self.fail(ErrKind::NoArgRegs);
        }
        self.bind(bad_num);
        self.fail(ErrKind::BadArgNum);
        self.bind(have);
        // The value's width: truncate && !force64 keeps 32 bits.
        let done = self.label();
        self.ld_local(R1, t[2]);
        self.jimm(Cond::Eq, R1, 0, done);
        self.ld_local(R1, t[3]);
        self.jimm(Cond::Ne, R1, 0, done);
        self.ld_local(R1, t[1]);
        let unsigned = self.label();
        self.jimm(Cond::Eq, R1, 0, unsigned);
        int_cast(self, 4, true);
        self.jmp(done);
        self.bind(unsigned);
        int_cast(self, 4, false);
        self.bind(done);
        Ok(())
    }

    /// `dst` = the offset `table` gives for the number in long temp `n`
    /// (`konst`: known at compile time); none: jump to `miss`.
    fn select(&mut self, n: i16, konst: Option<i64>, table: &[(i64, u32)], dst: Reg, miss: Label) {
        if let Some(k) = konst {
            match table.iter().find(|(m, _)| *m == k) {
                Some(&(_, off)) => self.e(Insn::mov64_imm(dst, off as i32)),
                None => self.jmp(miss),
            }
            return;
        }
        let got = self.label();
        self.ld_local(R3, n);
        for &(m, off) in table {
            let next = self.label();
            self.jimm(Cond::Ne, R3, m as i32, next);
            self.e(Insn::mov64_imm(dst, off as i32));
            self.jmp(got);
            self.bind(next);
        }
        self.jmp(miss);
        self.bind(got);
    }
}

/// `r0` cast to a C integer of `bytes` bytes (`__int32`, `__ushort`...).
fn int_cast(g: &mut Gen<'_>, bytes: u8, signed: bool) {
    let bits = 64 - 8 * i32::from(bytes);
    match (bits, signed) {
        (0, _) => {}
        (32, false) => g.e(Insn::mov32_reg(R0, R0)),
        (_, true) => {
            g.e(Insn::alu64_imm(Alu::Lsh, R0, bits));
            g.e(Insn::alu64_imm(Alu::Arsh, R0, bits));
        }
        (_, false) => {
            g.e(Insn::alu64_imm(Alu::Lsh, R0, bits));
            g.e(Insn::alu64_imm(Alu::Rsh, R0, bits));
        }
    }
}
