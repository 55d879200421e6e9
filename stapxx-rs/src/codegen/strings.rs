//! Strings: literals, copies, appends (concatenation, `.=`, sprintf), user
//! memory strings, symbol names. A string slot is `[len: u64][bytes]`.

use super::emit::{Gen, SLoc, R};
use super::expr::Temp;
use super::layout::*;
use super::regs::*;
use super::unsupported;
use super::usymdata::{Space, SymStyle};
use crate::ir::types::{parse_format, Conversion, FormatPiece};
use crate::ir::*;
use ebpf_backend::insn::{Alu, Cond, Reg, Size};
use ebpf_backend::Insn;
use grammar::{Diagnostic, Span};

impl Gen<'_> {
    /// A string expression's value.
    pub(super) fn string(&mut self, e: &Expr) -> R<SLoc> {
        self.span = e.span;
        Ok(match &e.kind {
            ExprKind::Str(s) => {
                let t = self.tmp_str();
                self.set_lit(SLoc::Frame(t), s);
                SLoc::Frame(t)
            }
            ExprKind::Read(place) => match place {
                Place::Local(_) | Place::Global(_) => self.place_sloc(place, e.span)?,
                Place::Elem(g, keys) => {
                    let t = self.tmp_str();
                    self.read_elem_str(*g, keys, t, e.span)?;
                    SLoc::Frame(t)
                }
            },
            ExprKind::Call(f, args) => {
                self.call_fn(f.0 as usize, args, e.span)?;
                let ow = super::emit::Owner::Func(f.0 as usize);
                let locals = self.p.functions[f.0 as usize].locals.clone();
                let abs = self.ret_str_abs(ow, &locals);
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), SLoc::Frame(abs));
                SLoc::Frame(t)
            }
            ExprKind::Concat(a, b) => {
                let t = self.tmp_str();
                let sa = self.string(a)?;
                self.copy_str(SLoc::Frame(t), sa);
                let sb = self.string(b)?;
                self.append_str(SLoc::Frame(t), sb);
                SLoc::Frame(t)
            }
            ExprKind::Format { fmt, args } => {
                let t = self.tmp_str();
                self.format(t, fmt, args, e.span)?;
                SLoc::Frame(t)
            }
            ExprKind::Cond(c, a, b) => {
                let t = self.tmp_str();
                let els = self.label();
                let end = self.label();
                self.long(c)?;
                self.jimm(Cond::Eq, R0, 0, els);
                let sa = self.string(a)?;
                self.copy_str(SLoc::Frame(t), sa);
                self.jmp(end);
                self.bind(els);
                let sb = self.string(b)?;
                self.copy_str(SLoc::Frame(t), sb);
                self.bind(end);
                SLoc::Frame(t)
            }
            ExprKind::Assign(place, v) => {
                let s = self.string(v)?;
                self.write_str(place, s, e.span)?
            }
            ExprKind::AppendStr(place, v) if self.appends_element(place, v) => {
                // `s .= a[k]`: straight from the element's value, with no
                // copy of it in between (a backtrace walk does this per frame).
                let ExprKind::Read(Place::Elem(g, keys)) = &v.kind else {
                    unreachable!("appends_element")
                };
                let d = self.place_sloc(place, e.span)?;
                self.keyed(*g, keys, e.span, &mut |s, _, c, key| {
                    s.lookup(c, key);
                    let none = s.label();
                    s.jimm(Cond::Eq, R0, 0, none);
                    s.e(Insn::mov64_reg(R3, R0));
                    s.append_at_r3(d);
                    s.bind(none);
                    Ok(())
                })?;
                d
            }
            ExprKind::AppendStr(place, v) => {
                let s = self.string(v)?;
                match place {
                    Place::Elem(g, keys) => {
                        let t = self.tmp_str();
                        self.read_elem_str(*g, keys, t, e.span)?;
                        self.append_str(SLoc::Frame(t), s);
                        self.write_str(place, SLoc::Frame(t), e.span)?
                    }
                    _ => {
                        let d = self.place_sloc(place, e.span)?;
                        self.append_str(d, s);
                        d
                    }
                }
            }
            ExprKind::Builtin(b, args) => self.str_builtin(*b, args, e.span)?,
            _ => {
                return Err(Diagnostic::error(
                    e.span,
                    "internal: not a string expression",
                ))
            }
        })
    }

    pub(super) fn place_sloc(&mut self, place: &Place, span: Span) -> R<SLoc> {
        match place {
            Place::Local(l) => Ok(SLoc::Frame(self.str_local_abs(*l))),
            Place::Global(g) => {
                let s = self
                    .m
                    .scalar(*g)
                    .ok_or_else(|| Diagnostic::error(span, "internal: no slot for global"))?;
                Ok(SLoc::Global(s.offset))
            }
            Place::Elem(..) => Err(Diagnostic::error(
                span,
                "internal: element has no fixed slot",
            )),
        }
    }

    fn write_str(&mut self, place: &Place, s: SLoc, span: Span) -> R<SLoc> {
        match place {
            Place::Elem(g, keys) => {
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                self.keyed(*g, keys, span, &mut |s, a, c, key| {
                    s.update_elem(a, c, key, super::classkey::ValAt::Frame(t));
                    Ok(())
                })?;
                Ok(SLoc::Frame(t))
            }
            _ => {
                let d = self.place_sloc(place, span)?;
                self.copy_str(d, s);
                Ok(d)
            }
        }
    }

    fn read_elem_str(&mut self, g: GlobalId, keys: &[Expr], t: u32, span: Span) -> R<()> {
        self.keyed(g, keys, span, &mut |s, _, c, key| {
            s.lookup(c, key);
            s.set_empty(SLoc::Frame(t));
            let end = s.label();
            s.jimm(Cond::Eq, R0, 0, end);
            // The value is a slot too: copied by its length.
            let len = s.tmp_long();
            s.e(Insn::mov64_reg(R3, R0));
            s.slot_len(R2, R3);
            s.st_local(len, R2);
            s.e(Insn::alu64_imm(Alu::Add, R3, 8));
            s.frame_addr(R1, t + 8);
            s.call(H_READ_KERNEL);
            s.ld_local(R2, len);
            s.frame_addr(R1, t);
            s.set_len_and_nul(R1, R2);
            s.bind(end);
            Ok(())
        })
    }

    // ------------------------------------------------------------ primitives

    pub(super) fn set_empty(&mut self, s: SLoc) {
        self.sloc_addr(R1, s);
        self.e(Insn::st_imm(Size::DW, R1, 0, 0));
        self.e(Insn::st_imm(Size::B, R1, 8, 0));
    }

    /// Write a literal (truncated to MAXSTRINGLEN-1 bytes).
    pub(super) fn set_lit(&mut self, s: SLoc, text: &str) {
        let max = (self.o.strcap - 1) as usize;
        let mut bytes: Vec<u8> = grammar::bytes::literal_bytes(text)
            .into_iter()
            .take(max)
            .collect();
        let len = bytes.len();
        bytes.push(0);
        while !bytes.len().is_multiple_of(8) {
            bytes.push(0);
        }
        self.sloc_addr(R1, s);
        self.e(Insn::st_imm(Size::DW, R1, 0, len as i32));
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.e2(Insn::ld_imm64(R2, v));
            self.e(Insn::stx(Size::DW, R1, (8 + i * 8) as i16, R2));
        }
    }

    /// len(s) = clamp(r0 - 1 + base_len_reg, ...) where r0 is a helper's
    /// "bytes written including NUL" (or negative on failure).
    pub(super) fn store_len_from_r0(&mut self, s: SLoc, _base: i32) {
        let ok = self.label();
        let end = self.label();
        self.jimm(Cond::Sgt, R0, 0, ok);
        self.e(Insn::mov64_imm(R0, 1));
        self.bind(ok);
        self.e(Insn::alu64_imm(Alu::Sub, R0, 1));
        self.sloc_addr(R1, s);
        self.e(Insn::stx(Size::DW, R1, 0, R0));
        self.bind(end);
    }

    /// dst = src.
    ///
    /// Slot to slot, a string is copied by its length, not up to its NUL:
    /// `bpf_probe_read_kernel_str` copies a byte at a time (about 0.35 ns a
    /// byte here: 0.5 µs for a 1.5 KB Lua backtrace), `bpf_probe_read_kernel`
    /// eight (measured in BENCHMARKS.md). A slot's length is its text's: every
    /// writer stores the count its helper copied, with the NUL there.
    pub(super) fn copy_str(&mut self, dst: SLoc, src: SLoc) {
        let len = self.tmp_long();
        self.sloc_addr(R3, src);
        self.slot_len(R2, R3);
        self.st_local(len, R2);
        self.e(Insn::alu64_imm(Alu::Add, R3, 8));
        self.sloc_addr(R1, dst);
        self.e(Insn::alu64_imm(Alu::Add, R1, 8));
        self.call(H_READ_KERNEL);
        self.ld_local(R2, len);
        self.sloc_addr(R1, dst);
        self.set_len_and_nul(R1, R2);
    }

    /// `r` = the length of the slot at `slot`, bounded for the verifier
    /// (below the slot size, and below MAXSTRINGLEN).
    pub(super) fn slot_len(&mut self, r: Reg, slot: Reg) {
        self.e(Insn::ldx(Size::DW, r, slot, 0));
        self.e(Insn::alu64_imm(Alu::And, r, (self.o.maxstr - 1) as i32));
        if self.o.strcap != self.o.maxstr {
            let fits = self.label();
            let last = (self.o.strcap - 1) as i32;
            self.jimm(Cond::Le, r, last, fits);
            self.mov_imm(r, last as i64);
            self.bind(fits);
        }
    }

    /// The slot at `slot` has length `len`: store it, and the NUL after the
    /// text (clobbers `slot`).
    fn set_len_and_nul(&mut self, slot: Reg, len: Reg) {
        // (Below the slot size already: the mask is for the verifier, which
        // does not follow a value through the frame.)
        self.e(Insn::alu64_imm(Alu::And, len, (self.o.maxstr - 1) as i32));
        self.e(Insn::stx(Size::DW, slot, 0, len));
        self.e(Insn::alu64_reg(Alu::Add, slot, len));
        self.e(Insn::st_imm(Size::B, slot, 8, 0));
    }

    /// r1 = dst data + len, r2 = MAXSTRINGLEN - len (room for the rest and
    /// the NUL); the current length is saved in the returned long temp. The
    /// length is masked and clamped so the verifier sees both in bounds.
    pub(super) fn append_point(&mut self, dst: SLoc) -> i16 {
        let t = self.tmp_long();
        let last = (self.o.strcap - 1) as i32;
        self.sloc_addr(R1, dst);
        self.e(Insn::ldx(Size::DW, R4, R1, 0));
        self.e(Insn::alu64_imm(Alu::And, R4, (self.o.maxstr - 1) as i32));
        // The mask bounds it already when MAXSTRINGLEN is the slot size
        // (the default): no clamp in the hot path then.
        if self.o.strcap != self.o.maxstr {
            let fits = self.label();
            self.jimm(Cond::Le, R4, last, fits);
            self.mov_imm(R4, last as i64);
            self.bind(fits);
        }
        self.st_local(t, R4);
        self.e(Insn::alu64_imm(Alu::Add, R1, 8));
        self.e(Insn::alu64_reg(Alu::Add, R1, R4));
        self.mov_imm(R2, self.o.strcap as i64);
        self.e(Insn::alu64_reg(Alu::Sub, R2, R4));
        t
    }

    /// After a helper wrote at the append point: len = old + (r0 - 1),
    /// capped at MAXSTRINGLEN - 1 (bpf_snprintf returns the untruncated
    /// length).
    pub(super) fn finish_append(&mut self, dst: SLoc, old: i16) {
        let ok = self.label();
        self.jimm(Cond::Sgt, R0, 0, ok);
        self.e(Insn::mov64_imm(R0, 1));
        self.bind(ok);
        self.e(Insn::alu64_imm(Alu::Sub, R0, 1));
        self.ld_local(R1, old);
        self.e(Insn::alu64_reg(Alu::Add, R0, R1));
        let fits = self.label();
        self.jimm(Cond::Sle, R0, (self.o.strcap - 1) as i32, fits);
        self.mov_imm(R0, (self.o.strcap - 1) as i64);
        self.bind(fits);
        self.sloc_addr(R1, dst);
        self.e(Insn::stx(Size::DW, R1, 0, R0));
    }

    /// dst .= src
    pub(super) fn append_str(&mut self, dst: SLoc, src: SLoc) {
        // (`s .= s` copies s's text to after itself: no overlap.)
        self.sloc_addr(R3, src);
        self.append_at_r3(dst);
    }

    /// Whether `place .= v` appends a string array's element to a local
    /// or global (see `string`).
    fn appends_element(&self, place: &Place, v: &Expr) -> bool {
        matches!(place, Place::Local(_) | Place::Global(_))
            && matches!(&v.kind, ExprKind::Read(Place::Elem(g, _))
                if self.p.globals[g.0 as usize].ty == Ty::Str)
    }

    /// dst .= the string slot r3 points to (a frame or global slot, or a
    /// string array's value).
    fn append_at_r3(&mut self, dst: SLoc) {
        // By length, as `copy_str`: what fits of src after dst's text.
        let (old, n) = (self.tmp_long(), self.tmp_long());
        self.sloc_addr(R1, dst);
        self.slot_len(R4, R1);
        self.st_local(old, R4);
        self.slot_len(R2, R3);
        self.mov_imm(R5, (self.o.strcap - 1) as i64);
        self.e(Insn::alu64_reg(Alu::Sub, R5, R4));
        let fits = self.label();
        self.jreg(Cond::Le, R2, R5, fits);
        self.e(Insn::mov64_reg(R2, R5));
        self.bind(fits);
        self.st_local(n, R2);
        self.e(Insn::alu64_imm(Alu::Add, R3, 8));
        self.e(Insn::alu64_imm(Alu::Add, R1, 8));
        self.e(Insn::alu64_reg(Alu::Add, R1, R4));
        self.call(H_READ_KERNEL);
        self.ld_local(R2, old);
        self.ld_local(R3, n);
        self.e(Insn::alu64_reg(Alu::Add, R2, R3));
        self.sloc_addr(R1, dst);
        self.set_len_and_nul(R1, R2);
    }

    pub(super) fn append_lit(&mut self, dst: SLoc, text: &str) {
        let t = self.tmp_str();
        self.set_lit(SLoc::Frame(t), text);
        self.append_str(dst, SLoc::Frame(t));
    }

    /// Append one formatted value with `bpf_snprintf` (fmt in rodata, the
    /// value in the frame's argument area).
    pub(super) fn append_snprintf(&mut self, dst: SLoc, fmt: &str) {
        let off = self.rodata_str(fmt);
        self.e(Insn::stx(Size::DW, R6, F_ARGS, R0));
        let old = self.append_point(dst);
        let rm = self.rodata_map;
        self.ld_map_value(R3, rm, off);
        self.frame_addr(R4, F_ARGS as u32);
        self.e(Insn::mov64_imm(R5, 8));
        self.call(H_SNPRINTF);
        self.finish_append(dst, old);
    }

    /// A NUL-terminated string in the read-only data map.
    pub(super) fn rodata_str(&mut self, s: &str) -> u32 {
        if let Some(&o) = self.formats.get(s) {
            return o;
        }
        let o = self.rodata.len() as u32;
        self.rodata
            .extend_from_slice(&grammar::bytes::literal_bytes(s));
        self.rodata.push(0);
        while !self.rodata.len().is_multiple_of(8) {
            self.rodata.push(0);
        }
        self.formats.insert(s.to_string(), o);
        o
    }

    /// A new temp holding the long `e` formatted with `fmt`.
    pub(super) fn format_long_to_new(&mut self, e: &Expr, fmt: &str) -> R<SLoc> {
        self.long(e)?;
        let t = self.tmp_str();
        let v = self.tmp_long();
        self.st_local(v, R0);
        self.set_empty(SLoc::Frame(t));
        self.ld_local(R0, v);
        self.append_snprintf(SLoc::Frame(t), fmt);
        Ok(SLoc::Frame(t))
    }

    /// sprintf into slot t.
    fn format(&mut self, t: u32, fmt: &str, args: &[Expr], span: Span) -> R<()> {
        let pieces = parse_format(fmt).map_err(|m| Diagnostic::error(span, m))?;
        // Evaluate the arguments first (they may call functions that print).
        let vals = self.eval_to_temps(args)?;
        let dst = SLoc::Frame(t);
        self.set_empty(dst);
        let mut vals = vals.into_iter();
        for piece in pieces {
            match piece {
                FormatPiece::Text(text) => self.append_lit(dst, &text),
                FormatPiece::Conv(c) => {
                    // `*`: the width and precision are longs before the value.
                    let width = if c.width_arg { vals.next() } else { None };
                    let prec = if c.precision_arg { vals.next() } else { None };
                    let Some(v) = vals.next() else {
                        return Err(Diagnostic::error(span, "too few arguments for the format"));
                    };
                    match (width, prec) {
                        (None, None) => self.append_conv(dst, &c, v, span)?,
                        (w, p) => self.append_star_conv(dst, &c, v, w, p, span)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Append one conversion of a value.
    pub(super) fn append_conv(&mut self, dst: SLoc, c: &Conversion, v: Temp, span: Span) -> R<()> {
        let c = c.clone();
        match v {
            Temp::Str(s) => {
                if c.width.is_none() && c.precision.is_none() {
                    self.append_str(dst, s);
                } else {
                    // bpf_snprintf takes no precision: cut the string
                    // to it first, then pad to the width.
                    let src = match c.precision {
                        Some(p) => {
                            let t = self.tmp_str();
                            self.frame_addr(R1, t + 8);
                            self.mov_imm(R2, (p as u32).min(self.o.strcap - 1) as i64 + 1);
                            self.sloc_addr(R3, s);
                            self.e(Insn::alu64_imm(Alu::Add, R3, 8));
                            self.call(H_READ_KERNEL_STR);
                            self.store_len_from_r0(SLoc::Frame(t), 0);
                            SLoc::Frame(t)
                        }
                        None => s,
                    };
                    if c.width.is_some() {
                        // Pointer argument: bpf_snprintf copies the string.
                        self.sloc_addr(R0, src);
                        self.e(Insn::alu64_imm(Alu::Add, R0, 8));
                        let c2 = Conversion {
                            precision: None,
                            ..c.clone()
                        };
                        let spec = spec(&c2, "s");
                        self.append_snprintf(dst, &spec);
                    } else {
                        self.append_str(dst, src);
                    }
                }
            }
            Temp::Long(l) if c.kind == 'o' && c.width.is_none() && c.precision.is_none() => {
                self.append_octal(dst, l, c.flags.contains('#'));
            }
            Temp::Long(l) if c.kind == 'c' && c.flags.contains('#') => {
                if c.width.is_some() || c.flags.contains('-') {
                    return Err(unsupported(span, "a width with %#c"));
                }
                self.append_escaped_char(dst, l);
            }
            Temp::Long(l) => {
                self.ld_local(R0, l);
                let conv = match c.kind {
                    'd' | 'i' => "lld",
                    'u' => "llu",
                    'x' => "llx",
                    'X' => "llX",
                    'c' => "c",
                    'p' => "p",
                    other => return Err(unsupported(span, &format!("the conversion %{other}"))),
                };
                // bpf_snprintf has no `#` flag: write the 0x prefix
                // ourselves (stap's runtime writes it for 0 too, unlike C).
                let alt = c.flags.contains('#') && matches!(c.kind, 'x' | 'X');
                if let (Some(p), true) =
                    (c.precision, matches!(c.kind, 'd' | 'i' | 'u' | 'x' | 'X'))
                {
                    return self.append_int_precision(dst, l, &c, conv, p, alt, span);
                }
                // Since stap 1.3, %p is %#x (and 0 prints as 0x0).
                let (spec, prefix) = if conv == "p" {
                    let c2 = Conversion {
                        flags: c.flags.replace('#', ""),
                        width: c.width.map(|w| w.saturating_sub(2)),
                        ..c.clone()
                    };
                    (spec(&c2, "llx"), Some("0x"))
                } else if alt {
                    let c2 = Conversion {
                        flags: c.flags.replace('#', ""),
                        width: c.width.map(|w| w.saturating_sub(2)),
                        ..c.clone()
                    };
                    (
                        spec(&c2, conv),
                        Some(if c.kind == 'X' { "0X" } else { "0x" }),
                    )
                } else {
                    (spec(&c, conv), None)
                };
                if let Some(pfx) = prefix {
                    self.append_lit(dst, pfx);
                    self.ld_local(R0, l);
                }
                self.append_snprintf(dst, &spec);
            }
        }
        Ok(())
    }

    /// `%#c`: the byte in the long `l` as stap escapes a character (the
    /// host's `runtime/format.rs` rules): `\n` and the other C letters,
    /// `\'` and `\\`, three octal digits for any other byte outside the
    /// printable ASCII range, else the byte itself. (bpf_snprintf has no
    /// `#` flag for `%c`.)
    fn append_escaped_char(&mut self, dst: SLoc, l: i16) {
        const LETTERS: [(i32, &str); 9] = [
            (0x07, "\\a"),
            (0x08, "\\b"),
            (0x0c, "\\f"),
            (0x0a, "\\n"),
            (0x0d, "\\r"),
            (0x09, "\\t"),
            (0x0b, "\\v"),
            (0x27, "\\'"),
            (0x5c, "\\\\"),
        ];
        let c = self.tmp_long();
        self.ld_local(R0, l);
        self.e(Insn::alu64_imm(Alu::And, R0, 0xff));
        self.st_local(c, R0);
        let end = self.label();
        for (byte, text) in LETTERS {
            let next = self.label();
            self.ld_local(R0, c);
            self.jimm(Cond::Ne, R0, byte, next);
            self.append_lit(dst, text);
            self.jmp(end);
            self.bind(next);
        }
        let octal = self.label();
        self.ld_local(R0, c);
        self.jimm(Cond::Lt, R0, 0x20, octal);
        self.jimm(Cond::Gt, R0, 0x7e, octal);
        self.append_snprintf(dst, "%c");
        self.jmp(end);
        self.bind(octal);
        self.append_lit(dst, "\\");
        for shift in [6, 3, 0] {
            self.ld_local(R0, c);
            self.e(Insn::alu64_imm(Alu::Rsh, R0, shift));
            self.e(Insn::alu64_imm(Alu::And, R0, 7));
            self.e(Insn::alu64_imm(Alu::Add, R0, b'0' as i32));
            self.append_snprintf(dst, "%c");
        }
        self.bind(end);
    }

    /// `%.Nd` and friends: C's precision of an integer is its least number
    /// of digits, which bpf_snprintf refuses; zero padding to a width of
    /// N digits (and the sign, where there is one) writes the same.
    #[allow(clippy::too_many_arguments)]
    fn append_int_precision(
        &mut self,
        dst: SLoc,
        l: i16,
        c: &Conversion,
        conv: &str,
        p: usize,
        alt: bool,
        span: Span,
    ) -> R<()> {
        if c.width.is_some() || alt || c.flags.contains('-') {
            return Err(unsupported(
                span,
                "an integer conversion with both a precision and a width, `-` or `#` flag",
            ));
        }
        let flags: String = c.flags.chars().filter(|f| *f != '0').collect();
        let signed = matches!(c.kind, 'd' | 'i');
        // A sign a positive number shows too (`+`, ` `) takes a place.
        let plus = signed && (flags.contains('+') || flags.contains(' '));
        let fmt = |w: usize| format!("%{flags}0{w}{conv}");
        if !signed {
            self.append_snprintf(dst, &fmt(p));
            return Ok(());
        }
        let (neg, end) = (self.label(), self.label());
        self.ld_local(R0, l);
        self.jimm(Cond::Slt, R0, 0, neg);
        self.append_snprintf(dst, &fmt(p + usize::from(plus)));
        self.jmp(end);
        self.bind(neg);
        self.ld_local(R0, l);
        self.append_snprintf(dst, &fmt(p + 1));
        self.bind(end);
        Ok(())
    }

    /// Compare two strings (only against a literal, with `bpf_strncmp`).
    pub(super) fn str_cmp(&mut self, op: CmpOp, a: &Expr, b: &Expr) -> R<()> {
        let (var, lit, swapped) = match (&a.kind, &b.kind) {
            (_, ExprKind::Str(s)) => (a, s.clone(), false),
            (ExprKind::Str(s), _) => (b, s.clone(), true),
            _ => return self.str_cmp_general(op, a, b),
        };
        let s = self.string(var)?;
        if lit.is_empty() && matches!(op, CmpOp::Eq | CmpOp::Ne) {
            // Its length compares with 0 as the string with "".
            self.sloc_addr(R1, s);
            self.e(Insn::ldx(Size::DW, R0, R1, 0));
            self.bool_of_cmp(op);
            return Ok(());
        }
        let off = self.rodata_str(&lit);
        self.sloc_addr(R1, s);
        self.e(Insn::alu64_imm(Alu::Add, R1, 8));
        self.mov_imm(R2, self.o.maxstr as i64);
        let rm = self.rodata_map;
        self.ld_map_value(R3, rm, off);
        self.call(H_STRNCMP);
        if swapped {
            self.e(Insn::neg64(R0));
        }
        self.bool_of_cmp(op);
        Ok(())
    }

    fn str_builtin(&mut self, b: Builtin, args: &[Expr], span: Span) -> R<SLoc> {
        use Builtin::*;
        let t = self.tmp_str();
        let dst = SLoc::Frame(t);
        match b {
            Execname => {
                self.frame_addr(R1, t + 8);
                self.e(Insn::mov64_imm(R2, 16));
                self.call(H_COMM);
                self.frame_addr(R1, t + 8);
                self.e(Insn::mov64_imm(R2, 16.min(self.o.strcap as i32)));
                self.frame_addr(R3, t + 8);
                self.call(H_READ_KERNEL_STR);
                self.store_len_from_r0(dst, 0);
            }
            StringOf => {
                let s = self.format_long_to_new(&args[0], "%lld")?;
                return Ok(s);
            }
            UserString | UserStringWarn | UserStringN | UserStringNWarn | KernelString
            | KernelStringN => {
                let with_n = matches!(b, UserStringN | UserStringNWarn | KernelStringN);
                let kernel = matches!(b, KernelString | KernelStringN);
                let lt = self.tmp_long();
                self.long(&args[0])?;
                self.st_local(lt, R0);
                let size = self.tmp_long();
                if with_n {
                    self.long(&args[1])?;
                    let lo = self.label();
                    let hi = self.label();
                    self.jimm(Cond::Sge, R0, 0, lo);
                    self.e(Insn::mov64_imm(R0, 0));
                    self.bind(lo);
                    self.jimm(Cond::Sle, R0, (self.o.strcap - 1) as i32, hi);
                    self.mov_imm(R0, (self.o.strcap - 1) as i64);
                    self.bind(hi);
                    self.e(Insn::alu64_imm(Alu::Add, R0, 1));
                } else {
                    self.mov_imm(R0, self.o.strcap as i64);
                }
                self.st_local(size, R0);
                self.frame_addr(R1, t + 8);
                self.ld_local(R2, size);
                // Keep the verifier's view of the size bounded.
                self.e(Insn::alu64_imm(
                    Alu::And,
                    R2,
                    (2 * self.o.maxstr - 1) as i32,
                ));
                let nz = self.label();
                self.jimm(Cond::Ne, R2, 0, nz);
                self.e(Insn::mov64_imm(R2, 1));
                self.bind(nz);
                let cap = self.label();
                self.jimm(Cond::Le, R2, self.o.strcap as i32, cap);
                self.mov_imm(R2, self.o.strcap as i64);
                self.bind(cap);
                self.ld_local(R3, lt);
                self.call(if kernel {
                    H_READ_KERNEL_STR
                } else {
                    H_READ_USER_STR
                });
                let ok = self.label();
                let end = self.label();
                self.jimm(Cond::Sgt, R0, 0, ok);
                let err_arg = if with_n { args.get(2) } else { args.get(1) };
                if let Some(alt) = err_arg {
                    let s = self.string(alt)?;
                    self.copy_str(dst, s);
                } else if matches!(b, UserStringWarn | UserStringNWarn) {
                    self.set_lit(dst, "<unknown>");
                } else if self.o.skip_badvars {
                    self.count_error_const(ErrKind::SkippedRead);
                    self.set_empty(dst);
                } else {
                    self.fail(if kernel {
                        ErrKind::KernelRead
                    } else {
                        ErrKind::BadRead
                    });
                }
                self.jmp(end);
                self.bind(ok);
                self.store_len_from_r0(dst, 0);
                self.bind(end);
            }
            Usymname => {
                self.long(&args[0])?;
                self.usymname(dst);
            }
            Ubacktrace => self.ubacktrace(dst, super::unwind::Frames::All, None, None)?,
            UbacktraceFrom => self.ubacktrace(dst, super::unwind::Frames::All, None, Some(args))?,
            Ucallers => {
                self.ubacktrace(dst, super::unwind::Frames::Callers, Some(&args[0]), None)?
            }
            Backtrace => self.backtrace(dst, span)?,
            Tokenize => {
                return Err(Diagnostic::error(
                    span,
                    "tokenize() keeps its place between calls: it runs in begin, end and timer probes only, not in kernel probes",
                ))
            }
            SprintLoadavg => return Err(loadavg_in_kernel(span)),
            Usymdata | Symdata => {
                self.long(&args[0])?;
                let a = self.tmp_long();
                self.st_local(a, R0);
                self.sym_text(dst, a, SymStyle::Data, Space::of(b));
            }
            SprintStack | SprintUstack => {
                let s = self.string(&args[0])?;
                let t = self.tmp_str();
                self.copy_str(SLoc::Frame(t), s);
                self.sym_lines(dst, SLoc::Frame(t), SymStyle::Usyms, Space::of(b))?;
            }
            SprintBacktrace => {
                let t = self.tmp_str();
                self.backtrace(SLoc::Frame(t), span)?;
                self.sym_lines(dst, SLoc::Frame(t), SymStyle::Simple, Space::Kernel)?;
            }
            SprintUbacktrace => {
                let t = self.tmp_str();
                self.ubacktrace(SLoc::Frame(t), super::unwind::Frames::All, None, None)?;
                self.sym_lines(dst, SLoc::Frame(t), SymStyle::Simple, Space::User)?;
            }
            Symname => {
                self.long(&args[0])?;
                self.symname(dst);
            }
            Umodname => {
                self.long(&args[0])?;
                self.umodname(dst);
            }
            UserStringQuoted | KernelStringQuoted => {
                self.long(&args[0])?;
                if b == KernelStringQuoted {
                    self.kernel_string_quoted(t);
                } else {
                    self.user_string_quoted(t);
                }
            }
            UserBufferQuoted(error) => self.user_buffer_quoted(args, error, t)?,
            StringQuoted => {
                // The quoting reads its input as a kernel string: the
                // slot's text, in the frame.
                let s = self.string(&args[0])?;
                self.sloc_addr(R0, s);
                self.e(Insn::alu64_imm(Alu::Add, R0, 8));
                self.kernel_string_quoted(t);
            }
            TextStr => {
                let s = self.string(&args[0])?;
                self.sloc_addr(R0, s);
                self.e(Insn::alu64_imm(Alu::Add, R0, 8));
                self.escaped_string(t, None, false);
            }
            TextStrn => {
                let s = self.string(&args[0])?;
                let (len, quoted) = (self.tmp_long(), self.tmp_long());
                self.long(&args[1])?;
                self.st_local(len, R0);
                // `quoted` is mostly a constant: one escaping then.
                let fixed = match &args[2].kind {
                    crate::ir::ExprKind::Long(n) => Some(*n != 0),
                    _ => None,
                };
                if fixed.is_none() {
                    self.long(&args[2])?;
                    self.st_local(quoted, R0);
                }
                let forms: &[bool] = match fixed {
                    Some(q) => if q { &[true] } else { &[false] },
                    None => &[true, false],
                };
                let end = self.label();
                for &q in forms {
                    let other = self.label();
                    if fixed.is_none() {
                        self.ld_local(R1, quoted);
                        self.jimm(if q { Cond::Eq } else { Cond::Ne }, R1, 0, other);
                    }
                    self.sloc_addr(R0, s);
                    self.e(Insn::alu64_imm(Alu::Add, R0, 8));
                    self.escaped_string(t, Some(len), q);
                    self.jmp(end);
                    self.bind(other);
                }
                self.bind(end);
            }
            Probefunc => {
                // user_mode() ? usymname(uaddr()) : symname(addr())
                self.user_mode();
                let user = self.label();
                let end = self.label();
                self.jimm(Cond::Ne, R0, 0, user);
                self.e(Insn::ldx(Size::DW, R0, R6, F_KIP));
                self.symname(dst);
                self.jmp(end);
                self.bind(user);
                self.frame_addr(R1, F_REGS as u32);
                self.e(Insn::ldx(Size::DW, R0, R1, 16 * 8));
                self.usymname(dst);
                self.bind(end);
            }
            StrReplace => self.str_replace(dst, args)?,
            Substr => {
                // substr(s, start, len): bytes [start, start+len) of s.
                let src = self.string(&args[0])?;
                let c = self.tmp_str();
                self.copy_str(SLoc::Frame(c), src);
                let st = self.tmp_long();
                let ln = self.tmp_long();
                self.long(&args[1])?;
                self.st_local(st, R0);
                self.long(&args[2])?;
                self.st_local(ln, R0);
                self.set_empty(dst);
                let end = self.label();
                // start outside the string (or negative): empty.
                self.ld_local(R1, st);
                self.jimm(Cond::Slt, R1, 0, end);
                self.frame_addr(R2, c);
                self.e(Insn::ldx(Size::DW, R2, R2, 0));
                self.jreg(Cond::Sge, R1, R2, end);
                self.ld_local(R2, ln);
                self.jimm(Cond::Sle, R2, 0, end);
                // size = min(len, MAXSTRINGLEN - 1) + 1, start masked for
                // the verifier.
                let fits = self.label();
                self.jimm(Cond::Sle, R2, (self.o.strcap - 1) as i32, fits);
                self.mov_imm(R2, (self.o.strcap - 1) as i64);
                self.bind(fits);
                self.e(Insn::alu64_imm(Alu::Add, R2, 1));
                self.e(Insn::alu64_imm(Alu::And, R1, (self.o.maxstr - 1) as i32));
                self.frame_addr(R3, c + 8);
                self.e(Insn::alu64_reg(Alu::Add, R3, R1));
                self.frame_addr(R1, t + 8);
                self.call(H_READ_KERNEL_STR);
                self.store_len_from_r0(dst, 0);
                self.bind(end);
            }
            Pp => {
                let text = self.pp_text();
                self.set_lit(dst, &text);
            }
            Ppfunc => {
                let text = self.pp_text();
                self.set_lit(dst, crate::ir::builtins::ppfunc_of(&text));
            }
            TzName => self.set_lit(dst, &crate::runtime::host::timezone().1),
            Pn => {
                let text = self.p.probes.get(self.probe_index).map(|p| p.pn());
                self.set_lit(dst, &text.unwrap_or_default());
            }
            // Only host probes read /proc: task.stp calls this after
            // `__stapxx_on_host()`, which is 0 here.
            ProcComm => self.set_empty(dst),
            ErrnoStr | LookupStr | LookupOrStr => return self.lookup_string(b, args, span),
            _ => return Err(unsupported(span, &format!("the builtin {b:?}"))),
        }
        Ok(dst)
    }

    /// The point of the probe being generated, also inside the functions
    /// inlined into it.
    fn pp_text(&self) -> String {
        self.p
            .probes
            .get(self.probe_index)
            .map(|p| p.pp.clone())
            .unwrap_or_default()
    }
}

/// `%[flags][width][.prec]conv` for bpf_snprintf.
fn spec(c: &Conversion, conv: &str) -> String {
    let mut s = String::from("%");
    s.push_str(&c.flags);
    if let Some(w) = c.width {
        s.push_str(&w.to_string());
    }
    if let Some(p) = c.precision {
        s.push_str(&format!(".{p}"));
    }
    s.push_str(conv);
    s
}

/// The load averages are the kernel's `avenrun`, a variable BPF cannot
/// reach here (no kernel variables in BTF or kallsyms); the host reads
/// them from `/proc/loadavg`.
pub(super) fn loadavg_in_kernel(span: Span) -> Diagnostic {
    Diagnostic::error(
        span,
        "the load averages are the kernel's avenrun, which kernel probes cannot read here (no kernel variables): sprint_loadavg() and get_loadavg_index() run in begin, end and timer probes (that read no task)",
    )
}
