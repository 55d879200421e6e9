//! Symbolizing addresses inside kernel probes, in stap's formats:
//! `usymdata(addr)` (`name+0xoff/0xsize [module]`), `sprint_ustack(bt)` /
//! `sprint_usyms(bt)` (a ` 0xADDR : usymdata` line per address) and
//! `sprint_ubacktrace()` (`name+0xoff [module basename]` lines), for scripts
//! that keep the text itself (as a map key, say); and the same of kernel
//! addresses, `symdata`, `sprint_stack`, `sprint_backtrace()`, from the
//! kernel's symbol table (its module is `kernel`: this kernel loads no
//! modules). The host formats the same for host probes and printed stacks
//! (`runtime/ustack.rs`); both read the same symbol tables (with sizes) and
//! mappings (with load biases).

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;

/// Whose addresses: the target's (the user symbol table and mappings) or
/// the kernel's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Space {
    User,
    Kernel,
}

impl Space {
    /// Whose addresses a symbolizing builtin reads: the `u` ones the
    /// target's.
    pub(super) fn of(b: crate::ir::builtins::Builtin) -> Space {
        use crate::ir::builtins::Builtin::*;
        match b {
            Usymdata | SprintUstack | SprintUbacktrace | Usymname => Space::User,
            _ => Space::Kernel,
        }
    }
}

/// Which text each address becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SymStyle {
    /// `usymdata(addr)`.
    Data,
    /// ` 0xADDR : usymdata(addr)\n` (sprint_ustack).
    Usyms,
    /// `name+0xoff [basename]\n` (sprint_ubacktrace).
    Simple,
}

impl Gen<'_> {
    /// `dst` (emptied first) = the address in long temp `a` in `style`.
    pub(super) fn sym_text(&mut self, dst: SLoc, a: i16, style: SymStyle, space: Space) {
        let size = self.tmp_long();
        self.e(Insn::st_imm(Size::DW, R7, size, 0));
        let name = self.tmp_str();
        let table = match space {
            Space::User => self.m.usyms_map,
            Space::Kernel => self.m.ksyms_map,
        };
        let f = self.packed_lookup(a, table, SLoc::Frame(name), Some(size));
        self.set_empty(dst);
        if style == SymStyle::Usyms {
            self.ld_local(R0, a);
            self.append_snprintf(dst, " 0x%llx : ");
        }
        let (hex, named) = (self.label(), self.label());
        self.ld_local(R1, f.yes);
        self.jimm(Cond::Eq, R1, 0, hex);
        self.append_str(dst, SLoc::Frame(name));
        self.ld_local(R0, a);
        self.ld_local(R1, f.start);
        self.e(Insn::alu64_reg(Alu::Sub, R0, R1));
        self.append_snprintf(dst, "+0x%llx");
        if style != SymStyle::Simple {
            self.ld_local(R0, size);
            self.append_snprintf(dst, "/0x%llx");
        }
        self.jmp(named);
        self.bind(hex);
        self.ld_local(R0, a);
        self.append_snprintf(dst, "0x%llx");
        self.bind(named);
        match space {
            Space::User => self.module_part(dst, a, f.yes, style),
            Space::Kernel => {
                let bare = self.label();
                self.ld_local(R1, f.yes);
                self.jimm(Cond::Eq, R1, 0, bare);
                self.append_lit(dst, " [kernel]");
                self.bind(bare);
            }
        }
        if style != SymStyle::Data {
            self.append_lit(dst, "\n");
        }
    }

    /// ` [module]` after a symbol, ` [module+0xoff/0x0]` after a bare
    /// address (offset from the module's load bias); basenames in the
    /// simple style, which has no size. Nothing outside every mapping.
    fn module_part(&mut self, dst: SLoc, a: i16, yes: i16, style: SymStyle) {
        let end = self.label();
        for (start, stop, path, bias) in self.o.umods.clone() {
            let next = self.label();
            self.unless_in(a, start, stop, next);
            let shown = if style == SymStyle::Simple {
                path.rsplit('/').next().unwrap_or(&path).to_string()
            } else {
                path.clone()
            };
            self.append_lit(dst, &format!(" [{shown}"));
            let bare = self.label();
            self.ld_local(R1, yes);
            self.jimm(Cond::Eq, R1, 0, bare);
            self.append_lit(dst, "]");
            self.jmp(end);
            self.bind(bare);
            self.ld_local(R0, a);
            self.mov_imm(R1, bias as i64);
            self.e(Insn::alu64_reg(Alu::Sub, R0, R1));
            if style == SymStyle::Simple {
                self.append_snprintf(dst, "+0x%llx]");
            } else {
                self.append_snprintf(dst, "+0x%llx/0x0]");
            }
            self.jmp(end);
            self.bind(next);
        }
        self.bind(end);
    }

    /// `dst` = the lines of every hex address in the string `src` in
    /// `style`, whole lines only, while they fit in MAXSTRINGLEN (as stap's
    /// tapset cuts them). One `bpf_loop` iteration per byte of `src`.
    pub(super) fn sym_lines(
        &mut self,
        dst: SLoc,
        src: SLoc,
        style: SymStyle,
        space: Space,
    ) -> R<()> {
        let [len, val, intok, a] = [(); 4].map(|_| self.tmp_long());
        let line = self.tmp_str();
        self.set_empty(dst);
        self.sloc_addr(R1, src);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.st_local(len, R1);
        self.e(Insn::st_imm(Size::DW, R7, val, 0));
        self.e(Insn::st_imm(Size::DW, R7, intok, 0));
        let cb = self.cb_open(2, false);
        {
            let (delim, digit, emit) = (self.label(), self.label(), self.label());
            // r2 = the byte at index i, or a space past the end.
            self.cb_arg(R1, 0);
            self.ld_local(R3, len);
            self.e(Insn::mov64_imm(R2, b' ' as i32));
            self.jreg(Cond::Ge, R1, R3, delim);
            self.e(Insn::alu64_imm(Alu::And, R1, (self.o.maxstr - 1) as i32));
            self.sloc_addr(R3, src);
            self.e(Insn::alu64_reg(Alu::Add, R3, R1));
            self.e(Insn::ldx(Size::B, R2, R3, 8));
            for sep in [b' ', b'\t', b'\n'] {
                self.jimm(Cond::Eq, R2, sep as i32, delim);
            }
            // A hex digit (an `x` of a `0x` prefix adds nothing).
            self.e(Insn::st_imm(Size::DW, R7, intok, 1));
            self.e(Insn::alu64_imm(Alu::Or, R2, 0x20));
            self.jimm(Cond::Eq, R2, b'x' as i32, cb.next);
            self.e(Insn::mov64_reg(R0, R2));
            self.e(Insn::alu64_imm(Alu::Sub, R0, b'0' as i32));
            self.jimm(Cond::Le, R0, 9, digit);
            self.e(Insn::mov64_reg(R0, R2));
            self.e(Insn::alu64_imm(Alu::Sub, R0, (b'a' - 10) as i32));
            self.jimm(Cond::Lt, R0, 10, cb.next);
            self.jimm(Cond::Gt, R0, 15, cb.next);
            self.bind(digit);
            self.ld_local(R1, val);
            self.e(Insn::alu64_imm(Alu::Lsh, R1, 4));
            self.e(Insn::alu64_reg(Alu::Add, R1, R0));
            self.st_local(val, R1);
            self.jmp(cb.next);
            self.bind(delim);
            self.ld_local(R1, intok);
            self.jimm(Cond::Ne, R1, 0, emit);
            self.jmp(cb.next);
            self.bind(emit);
            self.ld_local(R1, val);
            self.st_local(a, R1);
            self.e(Insn::st_imm(Size::DW, R7, val, 0));
            self.e(Insn::st_imm(Size::DW, R7, intok, 0));
            self.sym_text(SLoc::Frame(line), a, style, space);
            // Whole lines only: stop at the first that does not fit.
            self.sloc_addr(R1, dst);
            self.e(Insn::ldx(Size::DW, R1, R1, 0));
            self.sloc_addr(R2, SLoc::Frame(line));
            self.e(Insn::ldx(Size::DW, R2, R2, 0));
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.jimm(Cond::Gt, R1, (self.o.strcap - 1) as i32, cb.stop);
            self.append_str(dst, SLoc::Frame(line));
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "sym_lines");
        self.ld_local(R1, len);
        self.e(Insn::alu64_imm(Alu::Add, R1, 1));
        self.call_loop(f);
        Ok(())
    }
}
