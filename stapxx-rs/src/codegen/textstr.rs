//! Kernel side of stap's text quoting: `user_string_quoted`,
//! `kernel_string_quoted`, `user_buffer_quoted(_error)`, and the bare
//! escaping of `text_str`/`text_strn`. The rules (and
//! the host side, which the tests hold this to) are in
//! `runtime/textstr.rs`; here the same steps run as a `bpf_loop` callback,
//! one decoded character per iteration, its state in frame longs so the
//! verifier sees one bounded iteration. The input is read in one helper
//! call first: a string up to its NUL, a buffer as far as the output can
//! show (so a fault is one for the whole read, where stap would fault only
//! at the first unreadable byte it reaches).

use super::emit::{Gen, SLoc, R};
use super::layout::ErrKind;
use super::regs::*;
use crate::ir::Expr;
use crate::runtime::textstr::SHORT_ESCAPES;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::{Insn, Label};

/// The frame places of one quoting.
#[derive(Clone, Copy)]
struct Q {
    /// The input's string slot (bytes at +8) and the output's.
    raw: u32,
    dst: u32,
    /// Input position, input bytes left (stap's `inlen`), output position,
    /// output bytes left (`outlen`), iterations to run.
    ip: i16,
    il: i16,
    op: i16,
    ol: i16,
    count: i16,
    /// The last character decoded and its length in bytes.
    c: i16,
    n: i16,
    /// The output length of the current character.
    num: i16,
    /// The first escape a cut at the end could split: where it starts (-1:
    /// none yet) and how long it is.
    esc: i16,
    esc_len: i16,
    /// Between double quotes, with `"...` after a cut (the `_quoted`
    /// forms); else bare (`text_str`).
    quoted: bool,
}

impl<'a> Gen<'a> {
    /// `dst` = the kernel string at the address in `r0` (a string slot's
    /// text) escaped as `text_str` / `text_strn` do: in at most the output
    /// length in the local `outlen` (0 or none: MAXSTRINGLEN - 1),
    /// between quotes when `quoted`; empty when it cannot be read.
    pub(super) fn escaped_string(&mut self, dst: u32, outlen: Option<i16>, quoted: bool) {
        let mut q = self.new_q(dst);
        q.quoted = quoted;
        let (fault, end) = (self.label(), self.label());
        let cap = self.o.strcap as i64;
        self.read_input_string(q, true, fault);
        match outlen {
            None => self.mov_imm(R1, cap - 1),
            Some(l) => {
                let (set, ok) = (self.label(), self.label());
                self.ld_local(R1, l);
                self.jimm(Cond::Sle, R1, 0, set);
                self.jimm(Cond::Sle, R1, (cap - 1) as i32, ok);
                self.bind(set);
                self.mov_imm(R1, cap - 1);
                self.bind(ok);
            }
        }
        if quoted {
            self.clamp_signed(R1, 5, (cap - 1).max(5) as i32);
            self.e(Insn::alu64_imm(Alu::Sub, R1, 2));
        }
        self.st_local(q.ol, R1);
        self.quote(q, false);
        self.jmp(end);
        self.bind(fault);
        self.set_empty(SLoc::Frame(dst));
        self.bind(end);
    }

    /// `dst` = the user string at the address in `r0`, as the tree's
    /// `string_quoted(user_string(addr))`, or the address in hex when it
    /// cannot be read.
    pub(super) fn user_string_quoted(&mut self, dst: u32) {
        self.string_quoted(dst, false);
    }

    /// `dst` = `kernel_string_quoted(addr in r0)`: the same for kernel
    /// memory.
    pub(super) fn kernel_string_quoted(&mut self, dst: u32) {
        self.string_quoted(dst, true);
    }

    /// The string at the address in `r0` read into `q`'s input, with
    /// `q.count` (one iteration per byte read, the NUL included) and
    /// `q.il` set; to `fault` when it cannot be read. Returns the address
    /// saved in a long temp.
    fn read_input_string(&mut self, q: Q, kernel: bool, fault: Label) -> i16 {
        let a = self.tmp_long();
        self.st_local(a, R0);
        let cap = self.o.strcap as i64;
        self.frame_addr(R1, q.raw + 8);
        self.mov_imm(R2, cap);
        self.ld_local(R3, a);
        self.call(if kernel {
            H_READ_KERNEL_STR
        } else {
            H_READ_USER_STR
        });
        self.jimm(Cond::Sle, R0, 0, fault);
        self.st_local(q.count, R0);
        self.mov_imm(R1, cap - 1);
        self.st_local(q.il, R1);
        a
    }

    fn string_quoted(&mut self, dst: u32, kernel: bool) {
        let q = self.new_q(dst);
        let (fault, end) = (self.label(), self.label());
        let cap = self.o.strcap as i64;
        let a = self.read_input_string(q, kernel, fault);
        self.mov_imm(R1, (cap - 1).max(5) - 2);
        self.st_local(q.ol, R1);
        self.quote(q, false);
        self.jmp(end);
        self.bind(fault);
        self.set_empty(SLoc::Frame(dst));
        self.ld_local(R0, a);
        self.append_snprintf(SLoc::Frame(dst), "0x%llx");
        self.bind(end);
    }

    /// `dst` = `user_buffer_quoted(addr, inlen, outlen)`; with `error`,
    /// the `_error` form.
    pub(super) fn user_buffer_quoted(&mut self, args: &[Expr], error: bool, dst: u32) -> R<()> {
        let q = self.new_q(dst);
        let (a, olc) = (self.tmp_long(), self.tmp_long());
        self.long(&args[0])?;
        self.st_local(a, R0);
        self.long(&args[1])?;
        self.st_local(q.il, R0);
        self.long(&args[2])?;
        let cap = self.o.strcap as i32;
        let (fault, empty, end) = (self.label(), self.label(), self.label());
        // outlen: a C int clamped to [0, MAXSTRINGLEN]; 0 gives "".
        self.int_of(R0);
        self.clamp_signed(R0, 0, cap);
        self.st_local(olc, R0);
        self.jimm(Cond::Eq, R0, 0, if error { fault } else { empty });
        // What stap's quoting makes of them: inlen and outlen of 0 or
        // beyond MAXSTRINGLEN - 1 mean MAXSTRINGLEN - 1; 2 of outlen (at
        // least 5) are the quotes.
        self.ld_local(R0, q.il);
        self.int_of(R0);
        let (ok, set) = (self.label(), self.label());
        self.jimm(Cond::Sle, R0, 0, set);
        self.jimm(Cond::Sle, R0, cap - 1, ok);
        self.bind(set);
        self.mov_imm(R0, (cap - 1) as i64);
        self.bind(ok);
        self.st_local(q.il, R0);
        self.ld_local(R0, olc);
        self.clamp_signed(R0, 5, (cap - 1).max(5));
        self.e(Insn::alu64_imm(Alu::Sub, R0, 2));
        self.st_local(q.ol, R0);
        // Read what the output can show: each character shown takes at
        // least one output byte, and the last one decoded may take 4.
        self.e(Insn::alu64_imm(Alu::Add, R0, 4));
        self.ld_local(R1, q.il);
        let le = self.label();
        self.jreg(Cond::Sle, R0, R1, le);
        self.e(Insn::mov64_reg(R0, R1));
        self.bind(le);
        self.clamp_signed(R0, 1, self.o.maxstr as i32 - 1);
        self.st_local(q.count, R0);
        self.e(Insn::mov64_reg(R2, R0));
        self.frame_addr(R1, q.raw + 8);
        self.ld_local(R3, a);
        self.call(H_READ_USER);
        self.jimm(Cond::Ne, R0, 0, fault);
        self.quote(q, true);
        self.jmp(end);
        self.bind(empty);
        self.set_empty(SLoc::Frame(dst));
        self.jmp(end);
        self.bind(fault);
        if error {
            if self.o.skip_badvars {
                self.count_error_const(ErrKind::SkippedRead);
                self.set_empty(SLoc::Frame(dst));
            } else {
                self.fail(ErrKind::BadRead);
            }
        } else {
            // The address in hex, cut to outlen - 1 bytes as stap's
            // snprintf into outlen bytes cuts it.
            self.set_empty(SLoc::Frame(dst));
            self.ld_local(R0, a);
            self.append_snprintf(SLoc::Frame(dst), "0x%llx");
            let fits = self.label();
            self.ld_local(R2, olc);
            self.e(Insn::alu64_imm(Alu::Sub, R2, 1));
            self.clamp_signed(R2, 0, self.o.maxstr as i32 - 1);
            self.frame_addr(R1, dst);
            self.e(Insn::ldx(Size::DW, R3, R1, 0));
            self.jreg(Cond::Le, R3, R2, fits);
            self.e(Insn::stx(Size::DW, R1, 0, R2));
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.e(Insn::st_imm(Size::B, R1, 8, 0));
            self.bind(fits);
        }
        self.bind(end);
        Ok(())
    }

    fn new_q(&mut self, dst: u32) -> Q {
        Q {
            raw: self.tmp_str(),
            dst,
            ip: self.tmp_long(),
            il: self.tmp_long(),
            op: self.tmp_long(),
            ol: self.tmp_long(),
            count: self.tmp_long(),
            c: self.tmp_long(),
            n: self.tmp_long(),
            num: self.tmp_long(),
            esc: self.tmp_long(),
            esc_len: self.tmp_long(),
            quoted: true,
        }
    }

    /// `r` = its low 32 bits as a signed C int.
    fn int_of(&mut self, r: ebpf_backend::insn::Reg) {
        self.e(Insn::alu64_imm(Alu::Lsh, r, 32));
        self.e(Insn::alu64_imm(Alu::Arsh, r, 32));
    }

    /// `r` = clamp(r, lo, hi), signed.
    fn clamp_signed(&mut self, r: ebpf_backend::insn::Reg, lo: i32, hi: i32) {
        let (above, below) = (self.label(), self.label());
        self.jimm(Cond::Sge, r, lo, above);
        self.mov_imm(r, lo as i64);
        self.bind(above);
        self.jimm(Cond::Sle, r, hi, below);
        self.mov_imm(r, hi as i64);
        self.bind(below);
    }

    /// `dst` = the input of `q` quoted, with `q.il`, `q.ol` and `q.count`
    /// set. `buffer`: NUL is a character to show, not the end.
    fn quote(&mut self, q: Q, buffer: bool) {
        if q.quoted {
            self.frame_addr(R1, q.dst + 8);
            self.e(Insn::st_imm(Size::B, R1, 0, b'"' as i32));
        }
        let op = i32::from(q.quoted);
        for (slot, v) in [(q.ip, 0), (q.op, op), (q.c, 0), (q.esc, -1), (q.esc_len, 0)] {
            self.e(Insn::st_imm(Size::DW, R7, slot, v));
        }
        let cb = self.cb_open(2, false);
        {
            self.ld_local(R1, q.il);
            self.jimm(Cond::Sle, R1, 0, cb.stop);
            self.decode(q);
            // r9 = the character.
            if !buffer {
                self.jimm(Cond::Eq, R9, 0, cb.stop);
            }
            self.ld_local(R1, q.ol);
            self.jimm(Cond::Sle, R1, 0, cb.stop);
            self.ld_local(R2, q.n);
            self.ld_local(R1, q.ip);
            self.e(Insn::alu64_reg(Alu::Add, R1, R2));
            self.st_local(q.ip, R1);
            self.ld_local(R1, q.il);
            self.e(Insn::alu64_reg(Alu::Sub, R1, R2));
            self.st_local(q.il, R1);
            let (escape, utf, sized) = (self.label(), self.label(), self.label());
            self.jimm(Cond::Gt, R2, 1, utf);
            self.jimm(Cond::Lt, R9, 0x20, escape);
            self.jimm(Cond::Gt, R9, 0x7e, escape);
            self.jimm(Cond::Eq, R9, b'"' as i32, escape);
            self.jimm(Cond::Eq, R9, b'\\' as i32, escape);
            // Printable: as it is.
            self.out_ptr(q, R5, 1, cb.stop);
            self.e(Insn::stx(Size::B, R5, 0, R9));
            self.e(Insn::mov64_imm(R2, 1));
            self.advance(q, R2);
            self.jmp(cb.next);
            // An escape: 2 (short), 4 (octal), 6 (\u) or 10 (\U) bytes.
            self.bind(escape);
            let short = self.label();
            for (byte, _) in SHORT_ESCAPES {
                self.jimm(Cond::Eq, R9, byte as i32, short);
            }
            self.e(Insn::mov64_imm(R2, 4));
            self.jmp(sized);
            self.bind(short);
            self.e(Insn::mov64_imm(R2, 2));
            self.jmp(sized);
            self.bind(utf);
            let bmp = self.label();
            self.e(Insn::mov64_imm(R2, 6));
            self.jimm(Cond::Le, R9, 0xffff, bmp);
            self.e(Insn::mov64_imm(R2, 10));
            self.bind(bmp);
            self.jmp(sized);
            self.bind(sized);
            self.st_local(q.num, R2);
            // Note the first escape a cut before the end marker could split.
            let noted = self.label();
            self.ld_local(R1, q.esc);
            self.jimm(Cond::Sge, R1, 0, noted);
            self.ld_local(R1, q.ol);
            self.e(Insn::alu64_imm(Alu::Sub, R1, 3));
            self.jreg(Cond::Sge, R1, R2, noted);
            self.ld_local(R1, q.op);
            self.st_local(q.esc, R1);
            self.st_local(q.esc_len, R2);
            self.bind(noted);
            self.ld_local(R1, q.ol);
            self.jreg(Cond::Slt, R1, R2, cb.stop);
            self.out_ptr(q, R5, 10, cb.stop);
            self.e(Insn::st_imm(Size::B, R5, 0, b'\\' as i32));
            self.write_escape(q);
            self.ld_local(R2, q.num);
            self.advance(q, R2);
            self.jmp(cb.next);
        }
        let f = self.cb_close(cb, "textstr");
        self.ld_local(R1, q.count);
        self.call_loop(f);
        self.close_quote(q);
    }

    /// r9 = the character at the input position, r8 its first byte; `q.n`
    /// = its length (stap's UTF-8 decoding: invalid, overlong, surrogate
    /// or cut-off sequences are single bytes).
    fn decode(&mut self, q: Q) {
        self.load_in(q, 0, R8);
        self.e(Insn::mov64_reg(R9, R8));
        self.ld_local(R4, q.il);
        let (cont, verbatim, done) = (self.label(), self.label(), self.label());
        for (mask, lead, n, bits) in [
            (0xe0, 0xc0, 2, 0x1f),
            (0xf0, 0xe0, 3, 0x0f),
            (0xf8, 0xf0, 4, 0x07),
        ] {
            let other = self.label();
            self.e(Insn::mov64_reg(R1, R8));
            self.e(Insn::alu64_imm(Alu::And, R1, mask));
            self.jimm(Cond::Ne, R1, lead, other);
            self.jimm(Cond::Slt, R4, n, other);
            self.e(Insn::alu64_imm(Alu::And, R9, bits));
            self.e(Insn::st_imm(Size::DW, R7, q.n, n));
            self.jmp(cont);
            self.bind(other);
        }
        self.jmp(verbatim);
        self.bind(cont);
        let checks = self.label();
        for k in 1..=3 {
            self.ld_local(R1, q.n);
            self.jimm(Cond::Sle, R1, k, checks);
            self.load_in(q, k, R1);
            self.e(Insn::mov64_reg(R2, R1));
            self.e(Insn::alu64_imm(Alu::And, R2, 0xc0));
            self.jimm(Cond::Ne, R2, 0x80, verbatim);
            self.e(Insn::alu64_imm(Alu::And, R1, 0x3f));
            self.e(Insn::alu64_imm(Alu::Lsh, R9, 6));
            self.e(Insn::alu64_reg(Alu::Or, R9, R1));
        }
        self.bind(checks);
        let (not_surrogate, not3) = (self.label(), self.label());
        self.jimm(Cond::Lt, R9, 0xd800, not_surrogate);
        self.jimm(Cond::Le, R9, 0xdfff, verbatim);
        self.bind(not_surrogate);
        self.jimm(Cond::Gt, R9, 0x10ffff, verbatim);
        self.jimm(Cond::Lt, R9, 0x80, verbatim);
        self.ld_local(R1, q.n);
        self.jimm(Cond::Ne, R1, 3, not3);
        self.jimm(Cond::Lt, R9, 0x800, verbatim);
        self.bind(not3);
        self.jimm(Cond::Ne, R1, 4, done);
        self.jimm(Cond::Lt, R9, 0x10000, verbatim);
        self.jmp(done);
        self.bind(verbatim);
        self.e(Insn::mov64_reg(R9, R8));
        self.e(Insn::st_imm(Size::DW, R7, q.n, 1));
        self.bind(done);
        self.st_local(q.c, R9);
    }

    /// `dst` = the input byte `k` after the input position (r2, r3
    /// clobbered; the offset masked into the slot for the verifier).
    fn load_in(&mut self, q: Q, k: i32, dst: ebpf_backend::insn::Reg) {
        self.ld_local(R2, q.ip);
        if k > 0 {
            self.e(Insn::alu64_imm(Alu::Add, R2, k));
        }
        self.e(Insn::alu64_imm(Alu::And, R2, self.o.maxstr as i32 - 1));
        self.frame_addr(R3, q.raw + 8);
        self.e(Insn::alu64_reg(Alu::Add, R3, R2));
        self.e(Insn::ldx(Size::B, dst, R3, 0));
    }

    /// `r` = where output goes, with room for `room` bytes in the slot;
    /// else (never, with the output bounded by outlen) to `stop`.
    fn out_ptr(&mut self, q: Q, r: ebpf_backend::insn::Reg, room: i32, stop: Label) {
        self.ld_local(R1, q.op);
        self.jimm(Cond::Gt, R1, self.o.maxstr as i32 - 1 - room, stop);
        self.frame_addr(r, q.dst + 8);
        self.e(Insn::alu64_reg(Alu::Add, r, R1));
    }

    /// op += r, ol -= r.
    fn advance(&mut self, q: Q, r: ebpf_backend::insn::Reg) {
        self.ld_local(R1, q.op);
        self.e(Insn::alu64_reg(Alu::Add, R1, r));
        self.st_local(q.op, R1);
        self.ld_local(R1, q.ol);
        self.e(Insn::alu64_reg(Alu::Sub, R1, r));
        self.st_local(q.ol, R1);
    }

    /// After the backslash at r5: the rest of the escape for the character
    /// in r9, `q.num` bytes in all.
    fn write_escape(&mut self, q: Q) {
        let (octal, bmp, astral, written) =
            (self.label(), self.label(), self.label(), self.label());
        self.ld_local(R2, q.num);
        self.jimm(Cond::Eq, R2, 4, octal);
        self.jimm(Cond::Eq, R2, 6, bmp);
        self.jimm(Cond::Eq, R2, 10, astral);
        for (byte, letter) in SHORT_ESCAPES {
            let other = self.label();
            self.jimm(Cond::Ne, R9, byte as i32, other);
            self.e(Insn::st_imm(Size::B, R5, 1, letter as i32));
            self.jmp(written);
            self.bind(other);
        }
        self.jmp(written);
        self.bind(octal);
        for (i, shift) in [(1, 6), (2, 3), (3, 0)] {
            self.e(Insn::mov64_reg(R1, R9));
            self.e(Insn::alu64_imm(Alu::Rsh, R1, shift));
            self.e(Insn::alu64_imm(Alu::And, R1, 7));
            self.e(Insn::alu64_imm(Alu::Add, R1, b'0' as i32));
            self.e(Insn::stx(Size::B, R5, i, R1));
        }
        self.jmp(written);
        for (label, letter, digits) in [(bmp, b'u', 4), (astral, b'U', 8)] {
            self.bind(label);
            self.e(Insn::st_imm(Size::B, R5, 1, letter as i32));
            for d in 0..digits {
                let shift = 4 * (digits - 1 - d);
                let decimal = self.label();
                self.e(Insn::mov64_reg(R1, R9));
                self.e(Insn::alu64_imm(Alu::Rsh, R1, shift));
                self.e(Insn::alu64_imm(Alu::And, R1, 0xf));
                self.jimm(Cond::Lt, R1, 10, decimal);
                self.e(Insn::alu64_imm(Alu::Add, R1, (b'A' - b'0' - 10) as i32));
                self.bind(decimal);
                self.e(Insn::alu64_imm(Alu::Add, R1, b'0' as i32));
                self.e(Insn::stx(Size::B, R5, 2 + d as i16, R1));
            }
            self.jmp(written);
        }
        self.bind(written);
    }

    /// The end: `"`, or `"...` when input is left that did not fit (cut
    /// back so it splits no escape), a NUL, and the length.
    fn close_quote(&mut self, q: Q) {
        let max = self.o.maxstr as i32;
        if !q.quoted {
            // Bare: the text ends where the output stopped.
            let room = self.label();
            self.ld_local(R1, q.op);
            self.jimm(Cond::Le, R1, max - 1, room);
            self.mov_imm(R1, (max - 1) as i64);
            self.bind(room);
            self.frame_addr(R2, q.dst + 8);
            self.e(Insn::alu64_reg(Alu::Add, R2, R1));
            self.e(Insn::st_imm(Size::B, R2, 0, 0));
            self.frame_addr(R2, q.dst);
            self.e(Insn::stx(Size::DW, R2, 0, R1));
            return;
        }
        let (plain, at, fits, end) = (self.label(), self.label(), self.label(), self.label());
        self.ld_local(R1, q.c);
        self.jimm(Cond::Eq, R1, 0, plain);
        self.ld_local(R1, q.il);
        self.jimm(Cond::Sle, R1, 0, plain);
        // r1 = the cut: 3 bytes before the end of outlen.
        self.ld_local(R1, q.op);
        self.e(Insn::alu64_imm(Alu::Sub, R1, 3));
        self.ld_local(R2, q.ol);
        self.e(Insn::alu64_reg(Alu::Add, R1, R2));
        self.ld_local(R3, q.esc);
        self.jimm(Cond::Slt, R3, 0, at);
        self.jreg(Cond::Sge, R3, R1, at);
        self.ld_local(R4, q.esc_len);
        self.e(Insn::alu64_reg(Alu::Add, R4, R3));
        self.jreg(Cond::Sge, R1, R4, at);
        self.e(Insn::mov64_reg(R1, R3));
        self.bind(at);
        // (Bounds for the verifier; the cut is always inside outlen.)
        self.jimm(Cond::Le, R1, max - 6, fits);
        self.mov_imm(R1, (max - 6) as i64);
        self.bind(fits);
        self.frame_addr(R2, q.dst + 8);
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        for (i, b) in b"\"...\0".iter().enumerate() {
            self.e(Insn::st_imm(Size::B, R2, i as i16, *b as i32));
        }
        self.e(Insn::alu64_imm(Alu::Add, R1, 4));
        self.jmp(end);
        self.bind(plain);
        let room = self.label();
        self.ld_local(R1, q.op);
        self.jimm(Cond::Le, R1, max - 3, room);
        self.mov_imm(R1, (max - 3) as i64);
        self.bind(room);
        self.frame_addr(R2, q.dst + 8);
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        self.e(Insn::st_imm(Size::B, R2, 0, b'"' as i32));
        self.e(Insn::st_imm(Size::B, R2, 1, 0));
        self.e(Insn::alu64_imm(Alu::Add, R1, 1));
        self.bind(end);
        self.frame_addr(R2, q.dst);
        self.e(Insn::stx(Size::DW, R2, 0, R1));
    }
}
