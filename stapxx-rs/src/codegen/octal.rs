//! `%o` / `%#o` in kernel probes. `bpf_snprintf` has no octal conversion,
//! but octal digits are 3-bit groups: spread each group into a 4-bit
//! nibble and the hex conversion prints the octal digits. A u64 has 22
//! octal digits, more than 16 nibbles fit in a long, so the top 16 bits
//! (6 digits) and the low 48 bits (16 digits) are spread apart and the
//! low part zero-padded when the top one is printed. SystemTap's tapsets
//! print modes this way (`%#o` in `return_str`, `openat`'s mode).

use super::emit::{Gen, SLoc};
use super::regs::*;
use ebpf_backend::insn::{Alu, Cond};
use ebpf_backend::Insn;

impl Gen<'_> {
    /// Appends the long in local `l` in octal (`alt`: `#`, a leading 0).
    pub(super) fn append_octal(&mut self, dst: SLoc, l: i16, alt: bool) {
        let hi = self.tmp_long();
        let lo = self.tmp_long();
        self.ld_local(R1, l);
        self.e(Insn::alu64_imm(Alu::Rsh, R1, 48));
        self.spread(R1, 6);
        self.st_local(hi, R0);
        self.ld_local(R1, l);
        self.e(Insn::alu64_imm(Alu::Lsh, R1, 16));
        self.e(Insn::alu64_imm(Alu::Rsh, R1, 16));
        self.spread(R1, 16);
        self.st_local(lo, R0);
        if alt {
            // stap's runtime writes the prefix for 0 too (`00`), unlike C.
            let t = SLoc::Frame(self.tmp_str());
            self.set_lit(t, "0");
            self.append_str(dst, t);
        }
        let short = self.label();
        let end = self.label();
        self.ld_local(R0, hi);
        self.jimm(Cond::Eq, R0, 0, short);
        self.append_snprintf(dst, "%llx");
        self.ld_local(R0, lo);
        self.append_snprintf(dst, "%016llx");
        self.jmp(end);
        self.bind(short);
        self.ld_local(R0, lo);
        self.append_snprintf(dst, "%llx");
        self.bind(end);
    }

    /// r0 = the low `digits` 3-bit groups of r1, one per nibble (r2 used).
    fn spread(&mut self, r: ebpf_backend::insn::Reg, digits: i32) {
        self.e(Insn::mov64_imm(R0, 0));
        for i in 0..digits {
            self.e(Insn::mov64_reg(R2, r));
            if i > 0 {
                self.e(Insn::alu64_imm(Alu::Rsh, R2, 3 * i));
            }
            self.e(Insn::alu64_imm(Alu::And, R2, 7));
            if i > 0 {
                self.e(Insn::alu64_imm(Alu::Lsh, R2, 4 * i));
            }
            self.e(Insn::alu64_reg(Alu::Or, R0, R2));
        }
    }
}
