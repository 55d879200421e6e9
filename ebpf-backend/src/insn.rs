//! BPF instructions: the 8-byte `struct bpf_insn`, constructors for every
//! instruction class the code generator needs, the byte encoding and a
//! textual listing in the kernel verifier's style (`r1 = *(u64 *)(r10 -8)`).

use std::fmt;

/// A BPF register, `r0` ..= `r10` (`r10` is the read-only frame pointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
/// The frame pointer (read only).
pub const R10: Reg = Reg(10);
/// Alias of [`R10`].
pub const FP: Reg = R10;

/// Instruction classes, sizes, modes and operations (`linux/bpf_common.h`, `linux/bpf.h`).
pub mod op {
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;

    pub const W: u8 = 0x00;
    pub const H: u8 = 0x08;
    pub const B: u8 = 0x10;
    pub const DW: u8 = 0x18;

    pub const IMM: u8 = 0x00;
    pub const MEM: u8 = 0x60;
    pub const MEMSX: u8 = 0x80;
    pub const ATOMIC: u8 = 0xc0;

    pub const K: u8 = 0x00;
    pub const X: u8 = 0x08;

    pub const CALL: u8 = 0x80;
    pub const EXIT: u8 = 0x90;
    pub const JA: u8 = 0x00;
    pub const END: u8 = 0xd0;
    /// `src` of an ALU64|END instruction: unconditional byte swap.
    pub const TO_LE: u8 = 0x00;
    pub const TO_BE: u8 = 0x08;

    /// `src` of a LD_IMM64: the imm is a map fd.
    pub const PSEUDO_MAP_FD: u8 = 1;
    /// `src` of a LD_IMM64: imm is a map fd, the second imm an offset into its value.
    pub const PSEUDO_MAP_VALUE: u8 = 2;
    /// `src` of a LD_IMM64: imm is the pc-relative index of a subprogram.
    pub const PSEUDO_FUNC: u8 = 4;
    /// `src` of a CALL: imm is the pc-relative index of a subprogram.
    pub const PSEUDO_CALL: u8 = 1;
}

/// ALU operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alu {
    Add,
    Sub,
    Mul,
    Div,
    Or,
    And,
    Lsh,
    Rsh,
    Mod,
    Xor,
    Mov,
    Arsh,
}

impl Alu {
    pub fn code(self) -> u8 {
        alu_code(self)
    }
    fn from_code(c: u8) -> Option<Alu> {
        Some(match c {
            0x00 => Alu::Add,
            0x10 => Alu::Sub,
            0x20 => Alu::Mul,
            0x30 => Alu::Div,
            0x40 => Alu::Or,
            0x50 => Alu::And,
            0x60 => Alu::Lsh,
            0x70 => Alu::Rsh,
            0x90 => Alu::Mod,
            0xa0 => Alu::Xor,
            0xb0 => Alu::Mov,
            0xc0 => Alu::Arsh,
            _ => return None,
        })
    }
    fn sym(self) -> &'static str {
        match self {
            Alu::Add => "+=",
            Alu::Sub => "-=",
            Alu::Mul => "*=",
            Alu::Div => "/=",
            Alu::Or => "|=",
            Alu::And => "&=",
            Alu::Lsh => "<<=",
            Alu::Rsh => ">>=",
            Alu::Mod => "%=",
            Alu::Xor => "^=",
            Alu::Mov => "=",
            Alu::Arsh => "s>>=",
        }
    }
}

/// Conditional jump conditions (unsigned unless prefixed with `S`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    Sgt,
    Sge,
    Lt,
    Le,
    Slt,
    Sle,
}

impl Cond {
    pub fn code(self) -> u8 {
        cond_code(self)
    }
    fn from_code(c: u8) -> Option<Cond> {
        Some(match c {
            0x10 => Cond::Eq,
            0x20 => Cond::Gt,
            0x30 => Cond::Ge,
            0x40 => Cond::Set,
            0x50 => Cond::Ne,
            0x60 => Cond::Sgt,
            0x70 => Cond::Sge,
            0xa0 => Cond::Lt,
            0xb0 => Cond::Le,
            0xc0 => Cond::Slt,
            0xd0 => Cond::Sle,
            _ => return None,
        })
    }
    /// The condition that holds exactly when `self` does not.
    pub fn negate(self) -> Option<Cond> {
        Some(match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
            Cond::Ge => Cond::Lt,
            Cond::Lt => Cond::Ge,
            Cond::Sgt => Cond::Sle,
            Cond::Sle => Cond::Sgt,
            Cond::Sge => Cond::Slt,
            Cond::Slt => Cond::Sge,
            Cond::Set => return None,
        })
    }
    fn sym(self) -> &'static str {
        match self {
            Cond::Eq => "==",
            Cond::Gt => ">",
            Cond::Ge => ">=",
            Cond::Set => "&",
            Cond::Ne => "!=",
            Cond::Sgt => "s>",
            Cond::Sge => "s>=",
            Cond::Lt => "<",
            Cond::Le => "<=",
            Cond::Slt => "s<",
            Cond::Sle => "s<=",
        }
    }
}

/// Memory access sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub fn code(self) -> u8 {
        size_code(self)
    }
    /// Size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
    /// The size of a `n`-byte access (1, 2, 4 or 8).
    pub fn from_bytes(n: usize) -> Option<Size> {
        Some(match n {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            8 => Size::DW,
            _ => return None,
        })
    }
    fn from_code(c: u8) -> Size {
        match c & 0x18 {
            op::B => Size::B,
            op::H => Size::H,
            op::W => Size::W,
            _ => Size::DW,
        }
    }
    fn cty(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
}

/// Atomic read-modify-write operations (`BPF_ATOMIC` imm field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Or,
    And,
    Xor,
    /// `src = atomic_fetch_add(dst + off, src)`.
    FetchAdd,
    FetchOr,
    FetchAnd,
    FetchXor,
    /// `src = xchg(dst + off, src)`.
    Xchg,
    /// `r0 = cmpxchg(dst + off, r0, src)`.
    CmpXchg,
}

impl AtomicOp {
    pub fn imm(self) -> i32 {
        atomic_imm(self)
    }
}

/// One BPF instruction slot (`struct bpf_insn`). A 64-bit immediate load
/// takes two slots; its constructors return `[Insn; 2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

/// The size of an encoded instruction slot in bytes.
pub const INSN_SIZE: usize = 8;

impl Insn {
    pub const fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst: dst.0,
            src: src.0,
            off,
            imm,
        }
    }

    // ---- ALU ----
    /// `dst op= imm` on 64 bits.
    pub const fn alu64_imm(op: Alu, dst: Reg, imm: i32) -> Insn {
        Insn::new(op::ALU64 | alu_code(op) | op::K, dst, Reg(0), 0, imm)
    }
    /// `dst op= src` on 64 bits.
    pub const fn alu64_reg(op: Alu, dst: Reg, src: Reg) -> Insn {
        Insn::new(op::ALU64 | alu_code(op) | op::X, dst, src, 0, 0)
    }
    /// `wdst op= imm` on 32 bits (the upper half of `dst` is zeroed).
    pub const fn alu32_imm(op: Alu, dst: Reg, imm: i32) -> Insn {
        Insn::new(op::ALU | alu_code(op) | op::K, dst, Reg(0), 0, imm)
    }
    /// `wdst op= wsrc` on 32 bits (the upper half of `dst` is zeroed).
    pub const fn alu32_reg(op: Alu, dst: Reg, src: Reg) -> Insn {
        Insn::new(op::ALU | alu_code(op) | op::X, dst, src, 0, 0)
    }
    /// `dst = imm` (sign-extended to 64 bits).
    pub const fn mov64_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu64_imm(Alu::Mov, dst, imm)
    }
    /// `dst = src`.
    pub const fn mov64_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu64_reg(Alu::Mov, dst, src)
    }
    /// `wdst = imm` (zero-extended).
    pub const fn mov32_imm(dst: Reg, imm: i32) -> Insn {
        Insn::alu32_imm(Alu::Mov, dst, imm)
    }
    /// `wdst = wsrc` (zero-extends the low half of `src`).
    pub const fn mov32_reg(dst: Reg, src: Reg) -> Insn {
        Insn::alu32_reg(Alu::Mov, dst, src)
    }
    /// `dst = -dst` on 64 bits.
    pub const fn neg64(dst: Reg) -> Insn {
        Insn::new(op::ALU64 | 0x80, dst, Reg(0), 0, 0)
    }
    /// `dst = -dst` on 32 bits.
    pub const fn neg32(dst: Reg) -> Insn {
        Insn::new(op::ALU | 0x80, dst, Reg(0), 0, 0)
    }
    /// Convert the low `bits` (16, 32 or 64) of `dst` to big endian
    /// (a byte swap on x86), zero-extending.
    pub const fn to_be(dst: Reg, bits: i32) -> Insn {
        Insn::new(op::ALU | op::END | op::TO_BE, dst, Reg(0), 0, bits)
    }
    /// Unconditionally byte-swap the low `bits` (16, 32 or 64) of `dst`
    /// (`BPF_ALU64 | BPF_END`, kernel >= 6.6).
    pub const fn bswap(dst: Reg, bits: i32) -> Insn {
        Insn::new(op::ALU64 | op::END, dst, Reg(0), 0, bits)
    }
    /// Convert the low `bits` of `dst` to little endian (truncation on x86).
    pub const fn to_le(dst: Reg, bits: i32) -> Insn {
        Insn::new(op::ALU | op::END | op::TO_LE, dst, Reg(0), 0, bits)
    }

    // ---- jumps ----
    /// `goto +off`.
    pub const fn ja(off: i16) -> Insn {
        Insn::new(op::JMP | op::JA, Reg(0), Reg(0), off, 0)
    }
    /// `if dst cond imm goto +off` (64-bit compare).
    pub const fn jmp_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(op::JMP | cond_code(cond) | op::K, dst, Reg(0), off, imm)
    }
    /// `if dst cond src goto +off` (64-bit compare).
    pub const fn jmp_reg(cond: Cond, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(op::JMP | cond_code(cond) | op::X, dst, src, off, 0)
    }
    /// `if wdst cond imm goto +off` (32-bit compare).
    pub const fn jmp32_imm(cond: Cond, dst: Reg, imm: i32, off: i16) -> Insn {
        Insn::new(op::JMP32 | cond_code(cond) | op::K, dst, Reg(0), off, imm)
    }
    /// `if wdst cond wsrc goto +off` (32-bit compare).
    pub const fn jmp32_reg(cond: Cond, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(op::JMP32 | cond_code(cond) | op::X, dst, src, off, 0)
    }
    /// Call helper function number `id` (see [`crate::helpers`]).
    pub const fn call_helper(id: u32) -> Insn {
        Insn::new(op::JMP | op::CALL, Reg(0), Reg(0), 0, id as i32)
    }
    /// BPF-to-BPF call of the subprogram starting at `pc + 1 + rel`.
    pub const fn call_pseudo(rel: i32) -> Insn {
        Insn::new(op::JMP | op::CALL, Reg(0), Reg(op::PSEUDO_CALL), 0, rel)
    }
    /// Return `r0`.
    pub const fn exit() -> Insn {
        Insn::new(op::JMP | op::EXIT, Reg(0), Reg(0), 0, 0)
    }

    // ---- memory ----
    /// `dst = *(size *)(src + off)`.
    pub const fn ldx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(op::LDX | size_code(size) | op::MEM, dst, src, off, 0)
    }
    /// `dst = *(s{size} *)(src + off)`, sign-extending (kernel >= 6.6).
    pub const fn ldx_sx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(op::LDX | size_code(size) | op::MEMSX, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = src`.
    pub const fn stx(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
        Insn::new(op::STX | size_code(size) | op::MEM, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = imm`.
    pub const fn st_imm(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::new(op::ST | size_code(size) | op::MEM, dst, Reg(0), off, imm)
    }
    /// Atomic read-modify-write of `*(size *)(dst + off)` with `src`
    /// (`size` must be W or DW).
    pub const fn atomic(size: Size, aop: AtomicOp, dst: Reg, off: i16, src: Reg) -> Insn {
        Insn::new(
            op::STX | size_code(size) | op::ATOMIC,
            dst,
            src,
            off,
            atomic_imm(aop),
        )
    }

    // ---- 64-bit immediates (two slots) ----
    /// `dst = imm64`.
    pub const fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
        Insn::ld_imm64_raw(dst, 0, imm as u32 as i32, (imm >> 32) as u32 as i32)
    }
    /// A LD_IMM64 with an explicit pseudo `src` and both immediates.
    pub const fn ld_imm64_raw(dst: Reg, src: u8, lo: i32, hi: i32) -> [Insn; 2] {
        [
            Insn::new(op::LD | op::DW | op::IMM, dst, Reg(src), 0, lo),
            Insn::new(0, Reg(0), Reg(0), 0, hi),
        ]
    }
    /// `dst = map` (pointer to the map with file descriptor `fd`).
    pub const fn ld_map_fd(dst: Reg, fd: i32) -> [Insn; 2] {
        Insn::ld_imm64_raw(dst, op::PSEUDO_MAP_FD, fd, 0)
    }
    /// `dst = &map[0] + off` (pointer into the value of a single-entry array map).
    pub const fn ld_map_value(dst: Reg, fd: i32, off: u32) -> [Insn; 2] {
        Insn::ld_imm64_raw(dst, op::PSEUDO_MAP_VALUE, fd, off as i32)
    }
    /// `dst = &subprog` where the subprogram starts at `pc + 1 + rel`
    /// (the callback argument of `bpf_loop` and friends).
    pub const fn ld_pseudo_func(dst: Reg, rel: i32) -> [Insn; 2] {
        Insn::ld_imm64_raw(dst, op::PSEUDO_FUNC, rel, 0)
    }

    // ---- inspection ----
    /// Instruction class (`code & 7`).
    pub const fn class(&self) -> u8 {
        self.code & 7
    }
    /// Whether this is the first slot of a two-slot LD_IMM64.
    pub const fn is_ld_imm64(&self) -> bool {
        self.code == op::LD | op::DW | op::IMM
    }
    /// Whether this is a jump that carries a pc-relative `off` (not call/exit).
    pub const fn is_jump(&self) -> bool {
        let c = self.class();
        (c == op::JMP || c == op::JMP32)
            && (self.code & 0xf0) != op::CALL
            && (self.code & 0xf0) != op::EXIT
    }
    /// Whether this is a BPF-to-BPF call.
    pub const fn is_pseudo_call(&self) -> bool {
        self.code == op::JMP | op::CALL && self.src == op::PSEUDO_CALL
    }

    /// The 8-byte little-endian encoding.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
    /// Decode 8 bytes.
    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Format the instruction; `next` is the second slot of a LD_IMM64.
    pub fn fmt_with_next(&self, next: Option<&Insn>, f: &mut impl fmt::Write) -> fmt::Result {
        let c = self.class();
        let d = self.dst;
        let s = self.src;
        match c {
            op::ALU64 | op::ALU => {
                let p = if c == op::ALU64 { "r" } else { "w" };
                let o = self.code & 0xf0;
                if o == 0x80 {
                    return write!(f, "{p}{d} = -{p}{d}");
                }
                if o == op::END {
                    let which = if self.code & op::TO_BE != 0 {
                        "be"
                    } else {
                        "le"
                    };
                    let which = if c == op::ALU64 { "bswap" } else { which };
                    return write!(f, "r{d} = {which}{} r{d}", self.imm);
                }
                let Some(alu) = Alu::from_code(o) else {
                    return self.fmt_raw(f);
                };
                let sym = if self.off == 1 && matches!(alu, Alu::Div | Alu::Mod) {
                    if alu == Alu::Div {
                        "s/="
                    } else {
                        "s%="
                    }
                } else {
                    alu.sym()
                };
                if self.code & op::X != 0 {
                    if alu == Alu::Mov && self.off != 0 {
                        return write!(f, "{p}{d} = (s{}){p}{s}", self.off);
                    }
                    write!(f, "{p}{d} {sym} {p}{s}")
                } else {
                    write!(f, "{p}{d} {sym} {}", self.imm)
                }
            }
            op::JMP | op::JMP32 => {
                let o = self.code & 0xf0;
                let p = if c == op::JMP { "r" } else { "w" };
                match o {
                    op::JA => {
                        if c == op::JMP32 {
                            write!(f, "gotol {:+}", self.imm)
                        } else {
                            write!(f, "goto {:+}", self.off)
                        }
                    }
                    op::CALL => match s {
                        op::PSEUDO_CALL => write!(f, "call pc{:+}", self.imm),
                        2 => write!(f, "call kfunc#{}", self.imm),
                        _ => match crate::helpers::name(self.imm as u32) {
                            Some(n) => write!(f, "call {n}#{}", self.imm),
                            None => write!(f, "call #{}", self.imm),
                        },
                    },
                    op::EXIT => write!(f, "exit"),
                    _ => {
                        let Some(cond) = Cond::from_code(o) else {
                            return self.fmt_raw(f);
                        };
                        if self.code & op::X != 0 {
                            write!(f, "if {p}{d} {} {p}{s} goto {:+}", cond.sym(), self.off)
                        } else {
                            write!(
                                f,
                                "if {p}{d} {} {:#x} goto {:+}",
                                cond.sym(),
                                self.imm,
                                self.off
                            )
                        }
                    }
                }
            }
            op::LDX => {
                let sz = Size::from_code(self.code);
                let sx = if self.code & 0xe0 == op::MEMSX {
                    "s"
                } else {
                    "u"
                };
                let ty = &sz.cty()[1..];
                write!(f, "r{d} = *({sx}{ty} *)(r{s} {})", Off(self.off))
            }
            op::STX if self.code & 0xe0 == op::ATOMIC => {
                let sz = Size::from_code(self.code);
                let name = match self.imm {
                    0x00 => {
                        return write!(f, "lock *({} *)(r{d} {}) += r{s}", sz.cty(), Off(self.off))
                    }
                    0x40 => {
                        return write!(f, "lock *({} *)(r{d} {}) |= r{s}", sz.cty(), Off(self.off))
                    }
                    0x50 => {
                        return write!(f, "lock *({} *)(r{d} {}) &= r{s}", sz.cty(), Off(self.off))
                    }
                    0xa0 => {
                        return write!(f, "lock *({} *)(r{d} {}) ^= r{s}", sz.cty(), Off(self.off))
                    }
                    0x01 => "atomic_fetch_add",
                    0x41 => "atomic_fetch_or",
                    0x51 => "atomic_fetch_and",
                    0xa1 => "atomic_fetch_xor",
                    0xe1 => "xchg",
                    0xf1 => {
                        return write!(
                            f,
                            "r0 = cmpxchg(({} *)(r{d} {}), r0, r{s})",
                            sz.cty(),
                            Off(self.off)
                        )
                    }
                    _ => return self.fmt_raw(f),
                };
                write!(
                    f,
                    "r{s} = {name}(({} *)(r{d} {}), r{s})",
                    sz.cty(),
                    Off(self.off)
                )
            }
            op::STX => {
                let sz = Size::from_code(self.code);
                write!(f, "*({} *)(r{d} {}) = r{s}", sz.cty(), Off(self.off))
            }
            op::ST => {
                let sz = Size::from_code(self.code);
                write!(
                    f,
                    "*({} *)(r{d} {}) = {}",
                    sz.cty(),
                    Off(self.off),
                    self.imm
                )
            }
            op::LD if self.is_ld_imm64() => {
                let hi = next.map(|n| n.imm).unwrap_or(0);
                match s {
                    op::PSEUDO_MAP_FD => write!(f, "r{d} = map[fd:{}] ll", self.imm),
                    op::PSEUDO_MAP_VALUE => write!(f, "r{d} = map_value[fd:{}]+{hi} ll", self.imm),
                    op::PSEUDO_FUNC => write!(f, "r{d} = func pc{:+} ll", self.imm),
                    5 => write!(f, "r{d} = map[idx:{}] ll", self.imm),
                    6 => write!(f, "r{d} = map_value[idx:{}]+{hi} ll", self.imm),
                    _ => {
                        let v = (self.imm as u32 as u64) | ((hi as u32 as u64) << 32);
                        write!(f, "r{d} = {v:#x} ll")
                    }
                }
            }
            _ => self.fmt_raw(f),
        }
    }

    fn fmt_raw(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(
            f,
            "raw(code={:#04x} dst=r{} src=r{} off={} imm={})",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

struct Off(i16);
impl fmt::Display for Off {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            write!(f, "-{}", -(self.0 as i32))
        } else {
            write!(f, "+{}", self.0)
        }
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with_next(None, f)
    }
}

const fn alu_code(a: Alu) -> u8 {
    match a {
        Alu::Add => 0x00,
        Alu::Sub => 0x10,
        Alu::Mul => 0x20,
        Alu::Div => 0x30,
        Alu::Or => 0x40,
        Alu::And => 0x50,
        Alu::Lsh => 0x60,
        Alu::Rsh => 0x70,
        Alu::Mod => 0x90,
        Alu::Xor => 0xa0,
        Alu::Mov => 0xb0,
        Alu::Arsh => 0xc0,
    }
}
const fn cond_code(c: Cond) -> u8 {
    match c {
        Cond::Eq => 0x10,
        Cond::Gt => 0x20,
        Cond::Ge => 0x30,
        Cond::Set => 0x40,
        Cond::Ne => 0x50,
        Cond::Sgt => 0x60,
        Cond::Sge => 0x70,
        Cond::Lt => 0xa0,
        Cond::Le => 0xb0,
        Cond::Slt => 0xc0,
        Cond::Sle => 0xd0,
    }
}
const fn size_code(s: Size) -> u8 {
    match s {
        Size::B => op::B,
        Size::H => op::H,
        Size::W => op::W,
        Size::DW => op::DW,
    }
}
const fn atomic_imm(a: AtomicOp) -> i32 {
    match a {
        AtomicOp::Add => 0x00,
        AtomicOp::Or => 0x40,
        AtomicOp::And => 0x50,
        AtomicOp::Xor => 0xa0,
        AtomicOp::FetchAdd => 0x01,
        AtomicOp::FetchOr => 0x41,
        AtomicOp::FetchAnd => 0x51,
        AtomicOp::FetchXor => 0xa1,
        AtomicOp::Xchg => 0xe1,
        AtomicOp::CmpXchg => 0xf1,
    }
}

/// Encode a sequence of instruction slots.
pub fn encode_all(insns: &[Insn]) -> Vec<u8> {
    let mut v = Vec::with_capacity(insns.len() * INSN_SIZE);
    for i in insns {
        v.extend_from_slice(&i.encode());
    }
    v
}

/// Decode a byte buffer (its length must be a multiple of 8).
pub fn decode_all(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| Insn::decode(c.try_into().unwrap()))
        .collect()
}

/// A listing of `insns`, one slot per line as `N: text` (the second slot of
/// a LD_IMM64 is folded into the first, as the verifier prints it).
pub fn listing(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < insns.len() {
        use fmt::Write;
        let _ = write!(out, "{i:5}: ");
        let next = if insns[i].is_ld_imm64() {
            insns.get(i + 1)
        } else {
            None
        };
        let _ = insns[i].fmt_with_next(next, &mut out);
        out.push('\n');
        i += if next.is_some() { 2 } else { 1 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_kernel_abi() {
        // r1 = *(u64 *)(r10 - 8)  => 79 a1 f8 ff 00 00 00 00
        assert_eq!(
            Insn::ldx(Size::DW, R1, R10, -8).encode(),
            [0x79, 0xa1, 0xf8, 0xff, 0, 0, 0, 0]
        );
        // r0 = 0 => b7 00 00 00 00 00 00 00
        assert_eq!(Insn::mov64_imm(R0, 0).encode(), [0xb7, 0, 0, 0, 0, 0, 0, 0]);
        // exit => 95
        assert_eq!(Insn::exit().encode(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        // call 14 => 85 00 00 00 0e 00 00 00
        assert_eq!(Insn::call_helper(14).encode(), [0x85, 0, 0, 0, 14, 0, 0, 0]);
        // *(u32 *)(r10 - 4) = r1 => 63 1a fc ff
        assert_eq!(
            Insn::stx(Size::W, R10, -4, R1).encode(),
            [0x63, 0x1a, 0xfc, 0xff, 0, 0, 0, 0]
        );
        // lock *(u64 *)(r1 + 0) += r2 => db 21 00 00 00 00 00 00
        assert_eq!(
            Insn::atomic(Size::DW, AtomicOp::Add, R1, 0, R2).encode(),
            [0xdb, 0x21, 0, 0, 0, 0, 0, 0]
        );
        // r1 = map[fd:5] => 18 11 .. 05
        let m = Insn::ld_map_fd(R1, 5);
        assert_eq!(m[0].encode(), [0x18, 0x11, 0, 0, 5, 0, 0, 0]);
        assert_eq!(m[1].encode(), [0; 8]);
        // if r1 != 0 goto +3 => 55 01 03 00 00 00 00 00
        assert_eq!(
            Insn::jmp_imm(Cond::Ne, R1, 0, 3).encode(),
            [0x55, 0x01, 3, 0, 0, 0, 0, 0]
        );
        let i = Insn::alu32_reg(Alu::Add, R3, R4);
        assert_eq!(Insn::decode(i.encode()), i);
    }

    #[test]
    fn listing_reads_like_the_verifier() {
        let mut v = vec![Insn::ldx(Size::DW, R1, R10, -8)];
        v.extend(Insn::ld_imm64(R2, 0x1_0000_0002));
        v.push(Insn::alu64_imm(Alu::Add, R1, 3));
        v.push(Insn::jmp_reg(Cond::Sgt, R1, R2, -4));
        v.push(Insn::call_helper(181));
        v.push(Insn::stx(Size::B, R10, -1, R3));
        v.push(Insn::exit());
        let l = listing(&v);
        assert_eq!(
            l,
            "    0: r1 = *(u64 *)(r10 -8)\n    1: r2 = 0x100000002 ll\n    3: r1 += 3\n    4: if r1 s> r2 goto -4\n    5: call bpf_loop#181\n    6: *(u8 *)(r10 -1) = r3\n    7: exit\n"
        );
    }
}
