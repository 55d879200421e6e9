//! `s =~ "re"` and `s !~ "re"` in kernel probes: the regular expression
//! becomes a DFA at compile time (the same engine and syntax options as the
//! host interpreter's `compile_regex`), its transitions a table in the
//! read-only data map, and the probe walks the subject's bytes through it in
//! a `bpf_loop`: one table load per byte.
//!
//! Table layout: one row per state of `STRIDE` u32 entries (256 bytes, then
//! end of input); an entry is the next state's row number with the
//! [`MATCH`] or [`DEAD`] flag. As in stap, the match is unanchored and only
//! its existence counts.

use super::emit::{Gen, SLoc, R};
use super::regs::*;
use crate::ir::*;
use ebpf_backend::insn::{Alu, Cond, Size};
use ebpf_backend::Insn;
use grammar::{Diagnostic, Span};
use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::{primitives::StateID, start};
use regex_automata::Anchored;
use std::collections::HashMap;

/// Entries per state row: every byte, then end of input.
pub const STRIDE: usize = 257;
/// The transition reaches a match (the regex matched before this byte).
pub const MATCH: u32 = 1 << 31;
/// No match can follow.
pub const DEAD: u32 = 1 << 30;
/// States at most (a table of 1 MiB).
const MAX_STATES: usize = 1024;

/// A regular expression's transition table.
#[derive(Debug, Clone, PartialEq)]
pub struct DfaTable {
    /// `states * STRIDE` entries, row 0 is the start.
    pub entries: Vec<u32>,
    /// The empty prefix already matches (e.g. `""` or `a*`).
    pub start_matches: bool,
}

impl DfaTable {
    pub fn build(pattern: &str) -> Result<DfaTable, String> {
        let dfa = dense::Builder::new()
            .syntax(
                regex_automata::util::syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .dot_matches_new_line(true),
            )
            .configure(dense::Config::new().start_kind(StartKind::Unanchored))
            .build(&crate::runtime::interp::byte_pattern(pattern))
            .map_err(|e| format!("bad regular expression \"{pattern}\": {e}"))?;
        let begin = dfa
            .start_state(&start::Config::new().anchored(Anchored::No))
            .map_err(|e| format!("regular expression \"{pattern}\": {e}"))?;
        // Number the states reachable from the start, breadth first.
        let mut rows: HashMap<StateID, u32> = HashMap::new();
        let mut order = vec![begin];
        rows.insert(begin, 0);
        let mut entries = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let sid = order[i];
            i += 1;
            for b in 0..STRIDE {
                let next = if b < 256 {
                    dfa.next_state(sid, b as u8)
                } else {
                    dfa.next_eoi_state(sid)
                };
                if dfa.is_quit_state(next) {
                    return Err(format!(
                        "regular expression \"{pattern}\" is not supported in kernel probes"
                    ));
                }
                let row = match rows.get(&next) {
                    Some(&r) => r,
                    None => {
                        let r = order.len() as u32;
                        if order.len() >= MAX_STATES {
                            return Err(format!(
                                "regular expression \"{pattern}\" needs more than {MAX_STATES} DFA states"
                            ));
                        }
                        rows.insert(next, r);
                        order.push(next);
                        r
                    }
                };
                let mut e = row;
                if dfa.is_match_state(next) {
                    e |= MATCH;
                }
                if dfa.is_dead_state(next) {
                    e |= DEAD;
                }
                entries.push(e);
            }
        }
        Ok(DfaTable {
            entries,
            start_matches: dfa.is_match_state(begin),
        })
    }

    /// What the generated code computes (for tests): does `s` match?
    pub fn matches(&self, s: &[u8]) -> bool {
        if self.start_matches {
            return true;
        }
        let mut row = 0usize;
        for &b in s {
            let e = self.entries[row * STRIDE + b as usize];
            if e & MATCH != 0 {
                return true;
            }
            if e & DEAD != 0 {
                return false;
            }
            row = (e & 0xffff) as usize;
        }
        self.entries[row * STRIDE + 256] & MATCH != 0
    }

    /// Entries padded to a power of two, little-endian bytes.
    fn bytes(&self) -> (Vec<u8>, u32) {
        let cap = self.entries.len().next_power_of_two();
        let mut out = Vec::with_capacity(cap * 4);
        for i in 0..cap {
            let e = self.entries.get(i).copied().unwrap_or(DEAD);
            out.extend_from_slice(&e.to_le_bytes());
        }
        (out, cap as u32)
    }
}

impl<'a> Gen<'a> {
    /// Place a table in the read-only data (8-byte aligned); returns its offset.
    fn rodata_table(&mut self, bytes: &[u8]) -> u32 {
        while !self.rodata.len().is_multiple_of(8) {
            self.rodata.push(0);
        }
        let o = self.rodata.len() as u32;
        self.rodata.extend_from_slice(bytes);
        o
    }

    /// `r0` = whether `subject` matches `pattern` (negated for `!~`).
    pub(super) fn regex_match(
        &mut self,
        subject: &Expr,
        pattern: &str,
        negate: bool,
        span: Span,
    ) -> R<()> {
        let table = DfaTable::build(pattern).map_err(|m| Diagnostic::error(span, m))?;
        let (bytes, cap) = table.bytes();
        let at = self.rodata_table(&bytes);
        let s = self.string(subject)?;
        let t = self.tmp_str();
        self.copy_str(SLoc::Frame(t), s);
        let (res, row) = (self.tmp_long(), self.tmp_long());
        self.e(Insn::st_imm(Size::DW, R7, res, table.start_matches as i32));
        self.e(Insn::st_imm(Size::DW, R7, row, 0));
        let end = self.label();
        if !table.start_matches {
            let rm = self.rodata_map;
            let cb = self.cb_open(2, false);
            {
                // entry = table[row * STRIDE + s[i]]
                self.cb_arg(R1, 0);
                self.e(Insn::alu64_imm(Alu::And, R1, (self.o.maxstr - 1) as i32));
                self.frame_addr(R2, t + 8);
                self.e(Insn::alu64_reg(Alu::Add, R2, R1));
                self.e(Insn::ldx(Size::B, R2, R2, 0));
                self.ld_local(R1, row);
                self.e(Insn::alu64_imm(Alu::Mul, R1, STRIDE as i32));
                self.e(Insn::alu64_reg(Alu::Add, R1, R2));
                self.table_entry(R1, rm, at, cap);
                self.jimm(Cond::Set, R0, DEAD as i32, cb.stop);
                let no = self.label();
                self.e(Insn::mov64_reg(R1, R0));
                self.e(Insn::alu64_imm(Alu::Rsh, R1, 31));
                self.jimm(Cond::Eq, R1, 0, no);
                self.e(Insn::st_imm(Size::DW, R7, res, 1));
                self.jmp(cb.stop);
                self.bind(no);
                self.e(Insn::alu64_imm(Alu::And, R0, 0xffff));
                self.st_local(row, R0);
                self.jmp(cb.next);
            }
            let f = self.cb_close(cb, "regex");
            self.frame_addr(R1, t);
            self.e(Insn::ldx(Size::DW, R1, R1, 0));
            self.call_loop(f);
            // Not decided by the bytes: the end of input may complete it.
            self.ld_local(R1, res);
            self.jimm(Cond::Ne, R1, 0, end);
            self.e(Insn::ldx(Size::DW, R1, R6, super::layout::F_FLAGS));
            self.jimm(Cond::Set, R1, super::layout::FLAG_LOOP_DONE, end);
            self.ld_local(R1, row);
            self.e(Insn::alu64_imm(Alu::Mul, R1, STRIDE as i32));
            self.e(Insn::alu64_imm(Alu::Add, R1, 256));
            self.table_entry(R1, rm, at, cap);
            self.e(Insn::alu64_imm(Alu::Rsh, R0, 31));
            self.st_local(res, R0);
        }
        self.bind(end);
        self.ld_local(R0, res);
        if negate {
            self.e(Insn::alu64_imm(Alu::Xor, R0, 1));
        }
        Ok(())
    }

    /// `r0` = the u32 entry `r1` of a table at rodata offset `at` (`cap`
    /// entries, a power of two: the mask keeps the load inside).
    fn table_entry(
        &mut self,
        idx: ebpf_backend::insn::Reg,
        rm: ebpf_backend::MapId,
        at: u32,
        cap: u32,
    ) {
        self.e(Insn::alu64_imm(Alu::And, idx, (cap - 1) as i32));
        self.e(Insn::alu64_imm(Alu::Lsh, idx, 2));
        self.ld_map_value(R0, rm, at);
        self.e(Insn::alu64_reg(Alu::Add, R0, idx));
        self.e(Insn::ldx(Size::W, R0, R0, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table gives the host interpreter's answer on every sample.
    #[test]
    fn table_agrees_with_the_regex_crate() {
        let subjects: &[&[u8]] = &[
            b"",
            b"a",
            b"abc",
            b"xxabcxx",
            b"ab",
            b"aaab",
            b"nginx: worker",
            b"ngx_http_lua",
            b"foo.lua:12",
            b"123",
            b"a\nb",
            b"ABC",
            b"end",
        ];
        for pat in [
            "abc",
            "^abc",
            "abc$",
            "^$",
            "a*",
            "a+b",
            "^(ab|cd)+$",
            "[0-9]+",
            "^[[:alpha:]]+$",
            "worker|master",
            "\\.lua:[0-9]+$",
            "a.b",
            "^.{3}$",
            "(x|y)?z",
            "",
        ] {
            let t = DfaTable::build(pat).unwrap();
            let re = crate::runtime::interp::compile_regex(pat).unwrap();
            for s in subjects {
                assert_eq!(
                    t.matches(s),
                    re.is_match(s),
                    "pattern {pat:?} on {:?}",
                    String::from_utf8_lossy(s)
                );
            }
        }
    }

    #[test]
    fn bad_patterns_are_reported() {
        let e = DfaTable::build("a(").unwrap_err();
        assert!(e.starts_with("bad regular expression \"a(\""), "{e}");
    }
}
