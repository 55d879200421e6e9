//! Builtins about the current task that need load-time facts: `ppid()`
//! (offsets from the kernel's BTF), `umodname()` (the target's mappings),
//! and `user_string_quoted()`, which escapes what it reads as stap does.

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use super::unsupported;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::Span;

/// Bytes written as a backslash and a letter.
const ESCAPES: [(u8, u8); 9] = [
    (b'"', b'"'),
    (b'\\', b'\\'),
    (b'\n', b'n'),
    (b'\t', b't'),
    (b'\r', b'r'),
    (0x07, b'a'),
    (0x08, b'b'),
    (0x0b, b'v'),
    (0x0c, b'f'),
];

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
        for (start, stop, path) in self.o.umods.clone() {
            let next = self.label();
            self.ld_local(R1, a);
            self.mov_imm(R2, start as i64);
            self.jreg(Cond::Lt, R1, R2, next);
            self.mov_imm(R2, stop as i64);
            self.jreg(Cond::Ge, R1, R2, next);
            self.set_lit(dst, &path);
            self.jmp(end);
            self.bind(next);
        }
        self.set_lit(dst, "<unknown>");
        self.bind(end);
    }

    /// `dst` = the user string at the address in `r0`, quoted: `"..."`
    /// with C escapes and octal for other unprintable bytes; `NULL` for
    /// address 0, `<unknown>` when it cannot be read.
    pub(super) fn user_string_quoted(&mut self, dst: u32) {
        let max = self.o.maxstr as i32;
        // MAXSTRINGLEN: the quoted text, quotes and NUL included, fits.
        let cap = self.o.strcap as i32;
        let raw = self.tmp_str();
        let olen = self.tmp_long();
        let (end, readable) = (self.label(), self.label());
        let null = self.label();
        self.jimm(Cond::Eq, R0, 0, null);
        self.e(Insn::mov64_reg(R3, R0));
        self.frame_addr(R1, raw + 8);
        self.mov_imm(R2, cap as i64);
        self.call(H_READ_USER_STR);
        self.jimm(Cond::Sgt, R0, 0, readable);
        self.set_lit(SLoc::Frame(dst), "<unknown>");
        self.jmp(end);
        self.bind(null);
        self.set_lit(SLoc::Frame(dst), "NULL");
        self.jmp(end);
        self.bind(readable);
        self.store_len_from_r0(SLoc::Frame(raw), 0);
        self.frame_addr(R1, dst + 8);
        self.e(Insn::st_imm(Size::B, R1, 0, b'"' as i32));
        self.e(Insn::st_imm(Size::DW, R7, olen, 1));
        let cb = self.cb_open(2, false);
        {
            // Room for the longest escape, the closing quote and the NUL.
            self.ld_local(R4, olen);
            self.jimm(Cond::Sgt, R4, cap - 7, cb.stop);
            self.cb_arg(R1, 0);
            self.e(Insn::alu64_imm(Alu::And, R1, max - 1));
            self.frame_addr(R2, raw + 8);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.e(Insn::ldx(Size::B, R3, R2, 0));
            // r1 = where the output goes.
            self.e(Insn::alu64_imm(Alu::And, R4, max - 1));
            self.frame_addr(R1, dst + 8);
            self.e(Insn::alu64_reg(Alu::Add, R1, R4));
            let done = self.label();
            self.e(Insn::mov64_imm(R5, 2));
            for (byte, letter) in ESCAPES {
                let other = self.label();
                self.jimm(Cond::Ne, R3, byte as i32, other);
                self.e(Insn::st_imm(Size::B, R1, 0, b'\\' as i32));
                self.e(Insn::st_imm(Size::B, R1, 1, letter as i32));
                self.jmp(done);
                self.bind(other);
            }
            // Printable: as is; else a backslash and three octal digits.
            let octal = self.label();
            self.jimm(Cond::Lt, R3, 0x20, octal);
            self.jimm(Cond::Gt, R3, 0x7e, octal);
            self.e(Insn::stx(Size::B, R1, 0, R3));
            self.e(Insn::mov64_imm(R5, 1));
            self.jmp(done);
            self.bind(octal);
            self.e(Insn::st_imm(Size::B, R1, 0, b'\\' as i32));
            for (i, shift) in [(1, 6), (2, 3), (3, 0)] {
                self.e(Insn::mov64_reg(R2, R3));
                self.e(Insn::alu64_imm(Alu::Rsh, R2, shift));
                self.e(Insn::alu64_imm(Alu::And, R2, 7));
                self.e(Insn::alu64_imm(Alu::Add, R2, b'0' as i32));
                self.e(Insn::stx(Size::B, R1, i, R2));
            }
            self.e(Insn::mov64_imm(R5, 4));
            self.bind(done);
            self.ld_local(R4, olen);
            self.e(Insn::alu64_reg(Alu::Add, R4, R5));
            self.st_local(olen, R4);
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "quote");
        self.frame_addr(R1, raw);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        self.call_loop(f);
        // The closing quote and the NUL.
        self.ld_local(R4, olen);
        self.e(Insn::alu64_imm(Alu::And, R4, max - 1));
        self.frame_addr(R1, dst + 8);
        self.e(Insn::alu64_reg(Alu::Add, R1, R4));
        self.e(Insn::st_imm(Size::B, R1, 0, b'"' as i32));
        self.e(Insn::st_imm(Size::B, R1, 1, 0));
        self.e(Insn::alu64_imm(Alu::Add, R4, 1));
        self.frame_addr(R1, dst);
        self.e(Insn::stx(Size::DW, R1, 0, R4));
        self.bind(end);
    }
}
