//! Instruction selection: IR trees -> BPF functions.
//!
//! Conventions inside generated code:
//! * `r6` = the frame (this CPU's `stx_frame` entry), `r7` = the current
//!   function's region in it; both are callee-saved, so they survive helper
//!   calls and BPF-to-BPF calls. Every function and loop callback derives
//!   them again on entry.
//! * A long expression leaves its value in `r0`; a string expression gives
//!   the place of a string slot ([`SLoc`]).
//! * Errors store their kind in the frame and jump to the body's `unwind`
//!   label; callers check the frame after each call and unwind in turn, so
//!   a probe error aborts the handler, as in stap.

use super::layout::*;
use super::maps::*;
use super::regs::*;
use super::Options;
use crate::ir::*;
use ebpf_backend::insn::{self, Alu, AtomicOp, Cond, Reg, Size};
use ebpf_backend::{FuncAsm, FuncId as AFunc, FuncKind, Insn, Label, MapDef, MapId, Module};
use grammar::{Diagnostic, Span};
use std::collections::HashMap;

pub(super) type R<T> = Result<T, Diagnostic>;

const FP: Reg = insn::R10;

// Helper ids (include/uapi/linux/bpf.h).

/// Whose frame region: a probe handler or a script function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Owner {
    Probe(usize),
    Func(usize),
}

/// Where a string value is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SLoc {
    /// A string slot at this offset from the frame start.
    Frame(u32),
    /// A string slot in the globals map value.
    Global(u32),
}

pub(super) struct Body {
    pub(super) fa: FuncAsm,
    pub(super) unwind: Label,
    /// Loop callbacks: where `break` and `continue` go.
    pub(super) brk: Option<Label>,
    pub(super) cont: Option<Label>,
    /// After an `exit` or unconditional jump, until a label some live jump
    /// targets: the verifier refuses unreachable instructions, so none are
    /// emitted.
    pub(super) dead: bool,
    pub(super) targets: std::collections::HashSet<Label>,
}

/// Region bookkeeping of the function being generated.
#[derive(Default, Clone)]
pub(super) struct Alloc {
    long_locals: u32,
    str_locals: u32,
    long_tmp: u32,
    str_tmp: u32,
    bytes_tmp: u32,
    long_hi: u32,
    str_hi: u32,
    bytes_hi: u32,
}

pub struct Gen<'a> {
    pub(super) asm: ebpf_backend::Assembler,
    pub(super) p: &'a Program,
    pub(super) o: &'a Options,
    pub(super) m: &'a MapLayout,
    pub(super) frame_map: MapId,
    pub(super) rodata_map: MapId,
    pub(super) rodata: Vec<u8>,
    pub(super) formats: HashMap<String, u32>,
    /// Measured regions (pass 1) -> bases (pass 2).
    pub(super) bases: HashMap<Owner, u32>,
    pub(super) measured: HashMap<Owner, Alloc>,
    pub(super) callbacks: u32,
    pub(super) strslot: u32,
    // Current function state.
    pub(super) owner: Owner,
    pub(super) locals: Vec<Local>,
    pub(super) alloc: Alloc,
    pub(super) bodies: Vec<Body>,
    pub(super) ret: Option<Ty>,
    pub(super) span: Span,
    pub(super) spans: Vec<Span>,
    /// Functions being inlined, innermost last.
    pub(super) inlines: Vec<InlineFrame>,
    /// How many loop callbacks enclose the code being generated.
    pub(super) loop_depth: usize,
    /// Enclosing `try` blocks, innermost last: the frame offset of the
    /// string slot that receives the message, if the `catch` names one.
    pub(super) catches: Vec<Option<u32>>,
    /// The probe being generated (its functions are inlined into it).
    pub(super) probe_index: usize,
    /// The program uses the syscall registers: the frame has their slot
    /// (`sregs.rs`).
    pub(super) sregs_used: bool,
    /// The program reads kernel memory (`kread.rs`).
    pub(super) kernel_reads_used: bool,
}

/// A function call being inlined: where its `return` goes.
pub(super) struct InlineFrame {
    pub(super) end: Label,
    pub(super) loop_depth: usize,
}

/// Compile every kernel probe (and the functions they call) into `module`.
/// Returns each probe's entry function, in `probes` order.
pub fn compile_all(
    p: &Program,
    probes: &[usize],
    o: &Options,
    m: &MapLayout,
    module: &mut Module,
) -> R<(Vec<AFunc>, Vec<Span>)> {
    let frame_map = MapId(module.maps().len() as u32);
    let rodata_map = MapId(frame_map.0 + 1);
    // Pass 1 measures each region; pass 2 generates with final offsets.
    let mut scratch = Module::new();
    let mut g = Gen::new(p, o, m, frame_map, rodata_map);
    g.run(probes, &mut scratch)?;
    let measured = std::mem::take(&mut g.measured);
    let strslot = g.strslot;
    let mut next = regions_start(o) + super::sregs::slot_bytes(p);
    let mut bases = HashMap::new();
    let mut owners: Vec<_> = measured.keys().copied().collect();
    owners.sort_by_key(|o| match o {
        Owner::Probe(i) => (0, *i),
        Owner::Func(i) => (1, *i),
    });
    for ow in owners {
        let a = &measured[&ow];
        bases.insert(ow, next);
        next += (a.long_locals + a.long_hi) * 8 + (a.str_locals + a.str_hi) * strslot + a.bytes_hi;
        next = (next + 7) & !7;
    }
    let frame_size = next + o.maxstr + 64;
    let mut g = Gen::new(p, o, m, frame_map, rodata_map);
    g.bases = bases;
    g.measured = measured;
    let entries = g.run(probes, module)?;
    let fm = module.add_map(super::frame_map(frame_size, o.ncpus));
    debug_assert_eq!(fm, frame_map);
    let mut rodata = std::mem::take(&mut g.rodata);
    if rodata.is_empty() {
        rodata.push(0);
    }
    let rm = module.add_map(MapDef::global_data("stx_rodata", rodata, true));
    debug_assert_eq!(rm, rodata_map);
    Ok((entries, std::mem::take(&mut g.spans)))
}

/// The user-memory read cache (see [`Gen::user_read`]): `UC_LINES` entries
/// of `[tag: u64][UC_LINE bytes]` after the zero area; a tag is the line's
/// address with bit 0 set, 0 for an empty entry.
const UC_LINES: u32 = 16;
const UC_LINE: u32 = 64;
const UC_ENTRY: u32 = 8 + UC_LINE;

fn ucache_start(o: &Options) -> u32 {
    F_ZERO + o.maxstr
}

/// Where the functions' regions start: after the fixed fields, the zero
/// area and the read cache (`sregs.rs` puts its slot here when used, and
/// the regions after it).
pub(super) fn regions_start(o: &Options) -> u32 {
    ucache_start(o) + UC_LINES * UC_ENTRY
}

impl<'a> Gen<'a> {
    pub(super) fn new(
        p: &'a Program,
        o: &'a Options,
        m: &'a MapLayout,
        frame_map: MapId,
        rodata_map: MapId,
    ) -> Gen<'a> {
        Gen {
            asm: ebpf_backend::Assembler::new(),
            p,
            o,
            m,
            frame_map,
            rodata_map,
            rodata: Vec::new(),
            formats: HashMap::new(),
            bases: HashMap::new(),
            measured: HashMap::new(),
            callbacks: 0,
            strslot: 8 + o.maxstr,
            owner: Owner::Probe(0),
            locals: Vec::new(),
            alloc: Alloc::default(),
            bodies: Vec::new(),
            ret: None,
            span: Span::default(),
            spans: Vec::new(),
            inlines: Vec::new(),
            loop_depth: 0,
            catches: Vec::new(),
            probe_index: 0,
            sregs_used: super::sregs::used(p),
            kernel_reads_used: super::kread::used(p),
        }
    }

    pub(super) fn run(&mut self, probes: &[usize], module: &mut Module) -> R<Vec<AFunc>> {
        self.asm = std::mem::take(&mut module.asm);
        let r = self.run_inner(probes);
        module.asm = std::mem::take(&mut self.asm);
        r
    }

    pub(super) fn run_inner(&mut self, probes: &[usize]) -> R<Vec<AFunc>> {
        // Script functions are inlined at each call (see `inline_call`): BPF
        // allows only 8 nested frames and every bpf_loop callback is one.
        let mut entries = Vec::new();
        for &pi in probes {
            entries.push(self.probe(pi)?);
        }
        Ok(entries)
    }

    // ------------------------------------------------------------ regions

    pub(super) fn begin_owner(&mut self, owner: Owner, locals: &[Local], ret: Option<Ty>) {
        self.owner = owner;
        self.locals = locals.to_vec();
        self.ret = ret;
        let mut a = Alloc::default();
        for l in locals {
            if l.ty == Ty::Str {
                a.str_locals += 1;
            } else {
                a.long_locals += 1;
            }
        }
        // The return slot is one more local of the return type.
        match ret {
            Some(Ty::Str) => a.str_locals += 1,
            Some(_) => a.long_locals += 1,
            None => {}
        }
        self.alloc = a;
    }

    pub(super) fn end_owner(&mut self) {
        let prev = self.measured.get(&self.owner).cloned().unwrap_or_default();
        let mut a = self.alloc.clone();
        a.long_hi = a.long_hi.max(prev.long_hi);
        a.str_hi = a.str_hi.max(prev.str_hi);
        a.bytes_hi = a.bytes_hi.max(prev.bytes_hi);
        self.measured.insert(self.owner, a);
    }

    pub(super) fn base(&self) -> u32 {
        self.bases
            .get(&self.owner)
            .copied()
            .unwrap_or(regions_start(self.o))
    }

    pub(super) fn measured_of(&self, ow: Owner) -> Alloc {
        self.measured.get(&ow).cloned().unwrap_or_default()
    }

    /// Offset from r7 of long local `i` (its index among long locals).
    pub(super) fn long_local_off(&self, l: LocalId) -> i16 {
        let idx = self.locals[..l.0 as usize]
            .iter()
            .filter(|x| x.ty != Ty::Str)
            .count();
        (idx * 8) as i16
    }

    /// Absolute frame offset of string local `l`.
    pub(super) fn str_local_abs(&self, l: LocalId) -> u32 {
        let idx = self.locals[..l.0 as usize]
            .iter()
            .filter(|x| x.ty == Ty::Str)
            .count() as u32;
        self.str_base(self.owner) + idx * self.strslot
    }

    pub(super) fn str_base(&self, ow: Owner) -> u32 {
        let a = self.measured_of(ow);
        let base = self
            .bases
            .get(&ow)
            .copied()
            .unwrap_or(regions_start(self.o));
        base + (a.long_locals + a.long_hi) * 8
    }

    /// The return slot: after the other locals.
    pub(super) fn ret_long_abs(&self, ow: Owner, locals: &[Local]) -> u32 {
        let n = locals.iter().filter(|x| x.ty != Ty::Str).count() as u32;
        self.bases.get(&ow).copied().unwrap_or(0) + n * 8
    }

    pub(super) fn ret_str_abs(&self, ow: Owner, locals: &[Local]) -> u32 {
        let n = locals.iter().filter(|x| x.ty == Ty::Str).count() as u32;
        self.str_base(ow) + n * self.strslot
    }

    pub(super) fn tmp_long(&mut self) -> i16 {
        let off = (self.alloc.long_locals + self.alloc.long_tmp) * 8;
        self.alloc.long_tmp += 1;
        self.alloc.long_hi = self.alloc.long_hi.max(self.alloc.long_tmp);
        off as i16
    }

    pub(super) fn tmp_str(&mut self) -> u32 {
        let a = self.measured_of(self.owner);
        let idx = self.alloc.str_locals + self.alloc.str_tmp;
        self.alloc.str_tmp += 1;
        self.alloc.str_hi = self.alloc.str_hi.max(self.alloc.str_tmp);
        let base = self.base() + (a.long_locals.max(self.alloc.long_locals) + a.long_hi) * 8;
        base + idx * self.strslot
    }

    pub(super) fn tmp_bytes(&mut self, n: u32) -> u32 {
        let a = self.measured_of(self.owner);
        let n = (n + 7) & !7;
        let off = self.alloc.bytes_tmp;
        self.alloc.bytes_tmp += n;
        self.alloc.bytes_hi = self.alloc.bytes_hi.max(self.alloc.bytes_tmp);
        self.base()
            + (a.long_locals.max(self.alloc.long_locals) + a.long_hi) * 8
            + (a.str_locals.max(self.alloc.str_locals) + a.str_hi) * self.strslot
            + off
    }

    pub(super) fn mark(&self) -> (u32, u32, u32) {
        (
            self.alloc.long_tmp,
            self.alloc.str_tmp,
            self.alloc.bytes_tmp,
        )
    }

    pub(super) fn release(&mut self, m: (u32, u32, u32)) {
        self.alloc.long_tmp = m.0;
        self.alloc.str_tmp = m.1;
        self.alloc.bytes_tmp = m.2;
    }

    // ------------------------------------------------------------ emission

    pub(super) fn cur(&mut self) -> &mut Body {
        self.bodies.last_mut().expect("a body is open")
    }

    pub(super) fn e(&mut self, i: Insn) {
        if self.cur().dead {
            return;
        }
        let tag = self.span_tag();
        let b = self.cur();
        b.fa.set_tag(tag);
        b.fa.emit(i);
        // `exit` and `goto` (not calls, not conditional jumps) end the flow.
        let code = i.code;
        let class = code & 0x07;
        if class == 0x05 && (code & 0xf0 == 0x90 || code & 0xf0 == 0x00) {
            self.cur().dead = true;
        }
    }

    fn live(&mut self) -> bool {
        if self.cur().dead {
            return false;
        }
        let tag = self.span_tag();
        self.cur().fa.set_tag(tag);
        true
    }

    pub(super) fn ld_map_fd(&mut self, r: Reg, m: MapId) {
        // `--interval`: a statistic's map is the one of the current
        // generation. Only `r` is used, so every caller stays as it is;
        // the verifier checks both arms (same key and value sizes).
        if let (Some(alt), Some(gen)) = (self.m.alt_of(m), self.m.gen_offset) {
            let (second, done) = (self.label(), self.label());
            let gm = self.m.globals_map;
            self.ld_map_value(r, gm, gen);
            self.e(Insn::ldx(Size::DW, r, r, 0));
            self.jimm(Cond::Ne, r, 0, second);
            self.ld_one_map_fd(r, m);
            self.jmp(done);
            self.bind(second);
            self.ld_one_map_fd(r, alt);
            self.bind(done);
            return;
        }
        self.ld_one_map_fd(r, m);
    }

    fn ld_one_map_fd(&mut self, r: Reg, m: MapId) {
        if self.live() {
            self.cur().fa.ld_map_fd(r, m);
        }
    }

    pub(super) fn ld_map_value(&mut self, r: Reg, m: MapId, off: u32) {
        if self.live() {
            self.cur().fa.ld_map_value(r, m, off);
        }
    }

    pub(super) fn ld_func_addr(&mut self, r: Reg, f: AFunc) {
        if self.live() {
            self.cur().fa.ld_func_addr(r, f);
        }
    }

    /// Instructions are tagged with an index into `spans`, so a verifier
    /// complaint at an instruction maps back to the script.
    pub(super) fn span_tag(&mut self) -> u32 {
        if self.spans.last() != Some(&self.span) {
            self.spans.push(self.span);
        }
        (self.spans.len() - 1) as u32
    }

    pub(super) fn e2(&mut self, is: [Insn; 2]) {
        self.e(is[0]);
        self.e(is[1]);
    }

    pub(super) fn label(&mut self) -> Label {
        self.cur().fa.new_label()
    }

    pub(super) fn bind(&mut self, l: Label) {
        let b = self.cur();
        b.fa.bind(l);
        if b.targets.contains(&l) {
            b.dead = false;
        }
    }

    pub(super) fn jmp(&mut self, l: Label) {
        if self.live() {
            let b = self.cur();
            b.targets.insert(l);
            b.fa.jmp(l);
            b.dead = true;
        }
    }

    pub(super) fn jimm(&mut self, c: Cond, r: Reg, imm: i32, l: Label) {
        if self.live() {
            let b = self.cur();
            b.targets.insert(l);
            b.fa.jmp_imm(c, r, imm, l);
        }
    }

    pub(super) fn jreg(&mut self, c: Cond, a: Reg, b: Reg, l: Label) {
        if self.live() {
            let body = self.cur();
            body.targets.insert(l);
            body.fa.jmp_reg(c, a, b, l);
        }
    }

    pub(super) fn call(&mut self, h: u32) {
        if self.live() {
            self.cur().fa.call_helper(h);
        }
    }

    pub(super) fn mov_imm(&mut self, r: Reg, v: i64) {
        if v >= i32::MIN as i64 && v <= i32::MAX as i64 {
            self.e(Insn::mov64_imm(r, v as i32));
        } else {
            self.e2(Insn::ld_imm64(r, v as u64));
        }
    }

    /// `r = r6 + abs` (an address in the frame).
    pub(super) fn frame_addr(&mut self, r: Reg, abs: u32) {
        self.e(Insn::mov64_reg(r, R6));
        self.e(Insn::alu64_imm(Alu::Add, r, abs as i32));
    }

    pub(super) fn sloc_addr(&mut self, r: Reg, s: SLoc) {
        match s {
            SLoc::Frame(off) => self.frame_addr(r, off),
            SLoc::Global(off) => {
                let gm = self.m.globals_map;
                self.ld_map_value(r, gm, off)
            }
        }
    }

    /// `r = r7 + off` for a long slot.
    pub(super) fn ld_local(&mut self, r: Reg, off: i16) {
        self.e(Insn::ldx(Size::DW, r, R7, off));
    }

    pub(super) fn st_local(&mut self, off: i16, r: Reg) {
        self.e(Insn::stx(Size::DW, R7, off, r));
    }

    /// r6 = this CPU's frame, r7 = this function's region; exits with 0 when
    /// the lookup fails (it cannot for an array of all CPUs).
    pub(super) fn load_frame(&mut self) {
        self.call(H_CPU);
        self.e(Insn::stx(Size::W, FP, -4, R0));
        let fm = self.frame_map;
        self.ld_map_fd(R1, fm);
        self.e(Insn::mov64_reg(R2, FP));
        self.e(Insn::alu64_imm(Alu::Add, R2, -4));
        self.call(H_LOOKUP);
        let ok = self.label();
        self.jimm(Cond::Ne, R0, 0, ok);
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(ok);
        self.e(Insn::mov64_reg(R6, R0));
        self.e(Insn::mov64_reg(R7, R6));
        let base = self.base();
        self.e(Insn::alu64_imm(Alu::Add, R7, base as i32));
    }

    /// `r1` = the read cache entry for the user address in `r0` (a bounded
    /// offset into the frame, as the verifier needs).
    fn ucache_entry(&mut self) {
        self.e(Insn::mov64_reg(R1, R0));
        self.e(Insn::alu64_imm(
            Alu::Rsh,
            R1,
            UC_LINE.trailing_zeros() as i32,
        ));
        self.e(Insn::alu64_imm(Alu::And, R1, (UC_LINES - 1) as i32));
        self.e(Insn::alu64_imm(Alu::Mul, R1, UC_ENTRY as i32));
        self.e(Insn::alu64_reg(Alu::Add, R1, R6));
        self.e(Insn::alu64_imm(Alu::Add, R1, ucache_start(self.o) as i32));
    }

    /// `r0` = the `size`-byte value at user address `r0` (sign-extended when
    /// `signed`); a fault sets BadRead and unwinds (0 with --skip-badvars).
    ///
    /// One `bpf_probe_read_user` costs about 30 ns, and a handler walking a
    /// data structure reads the same lines again and again (neighbouring
    /// fields, the slots of adjacent stack frames, one object reached from
    /// many places). So reads go through a direct-mapped cache of
    /// `UC_LINES` 64-byte lines in the frame: a miss reads the whole aligned
    /// line (never more than its page, so it faults only where the value's
    /// own read would), a hit costs a few instructions. The cache lives for
    /// one run of a handler: it is emptied at the handler's start, so every
    /// run sees the memory as it is then, as with a read each time; within
    /// one run a value another thread changes after its line was read shows
    /// the earlier contents. A read that straddles two lines, or a line that
    /// does not read whole, goes straight to memory.
    pub(super) fn user_read(&mut self, size: Size, signed: bool, fault: Fault) {
        let n = size.bytes() as i32;
        let addr = self.tmp_long();
        let val = self.tmp_long();
        self.st_local(addr, R0);
        let direct = self.label();
        let hit = self.label();
        let end = self.label();
        self.e(Insn::mov64_reg(R2, R0));
        self.e(Insn::alu64_imm(Alu::And, R2, (UC_LINE - 1) as i32));
        self.jimm(Cond::Gt, R2, UC_LINE as i32 - n, direct);
        self.ucache_entry();
        self.e(Insn::mov64_reg(R3, R0));
        self.e(Insn::alu64_imm(Alu::And, R3, -(UC_LINE as i32)));
        self.e(Insn::ldx(Size::DW, R4, R1, 0));
        self.e(Insn::alu64_imm(Alu::Or, R3, 1));
        self.jreg(Cond::Eq, R4, R3, hit);
        // Miss: fill the entry with the line, then tag it.
        self.e(Insn::alu64_imm(Alu::Xor, R3, 1));
        self.e(Insn::alu64_imm(Alu::Add, R1, 8));
        self.mov_imm(R2, UC_LINE as i64);
        self.call(H_READ_USER);
        self.jimm(Cond::Ne, R0, 0, direct);
        self.ld_local(R0, addr);
        self.ucache_entry();
        self.e(Insn::mov64_reg(R3, R0));
        self.e(Insn::alu64_imm(Alu::And, R3, -(UC_LINE as i32)));
        self.e(Insn::alu64_imm(Alu::Or, R3, 1));
        self.e(Insn::stx(Size::DW, R1, 0, R3));
        // r1 = the entry: the value is at 8 + (addr % UC_LINE).
        self.bind(hit);
        self.ld_local(R2, addr);
        self.e(Insn::alu64_imm(Alu::And, R2, (UC_LINE - 1) as i32));
        self.e(Insn::alu64_reg(Alu::Add, R1, R2));
        if signed {
            self.e(Insn::ldx_sx(size, R0, R1, 8));
        } else {
            self.e(Insn::ldx(size, R0, R1, 8));
        }
        self.jmp(end);
        self.bind(direct);
        self.ld_local(R3, addr);
        self.e(Insn::st_imm(Size::DW, R7, val, 0));
        self.e(Insn::mov64_reg(R1, R7));
        self.e(Insn::alu64_imm(Alu::Add, R1, val as i32));
        self.e(Insn::mov64_imm(R2, n));
        self.call(H_READ_USER);
        let ok = self.label();
        self.jimm(Cond::Eq, R0, 0, ok);
        // (The helper zeroes the value when it fails.)
        match fault {
            Fault::Error if !self.o.skip_badvars => self.fail(ErrKind::BadRead),
            Fault::Error => self.count_error_const(ErrKind::SkippedRead),
            Fault::Warn => self.warn_bad_read(addr, size.bytes() as u32),
            _ => {}
        }
        self.bind(ok);
        if signed {
            self.e(Insn::ldx_sx(size, R0, R7, val));
        } else {
            self.e(Insn::ldx(size, R0, R7, val));
        }
        self.bind(end);
    }

    /// `user_<type>_warn` could not read: warn, as stap does, with the
    /// address (in long temp `addr`).
    fn warn_bad_read(&mut self, addr: i16, bytes: u32) {
        let ty = match bytes {
            1 => "char",
            2 => "short",
            4 => "int",
            _ => "long",
        };
        let t = self.tmp_str();
        self.set_lit(SLoc::Frame(t), &format!("user {ty} copy fault "));
        self.ld_local(R0, addr);
        self.append_snprintf(SLoc::Frame(t), "0x%llx");
        self.append_lit(SLoc::Frame(t), " [man error::fault]");
        self.output(REC_WARN, t);
    }

    /// Set the frame's error (its kind, and above [`ERR_KIND_BITS`] the
    /// script place it comes from) and unwind.
    pub(super) fn fail(&mut self, kind: ErrKind) {
        let at = self.span_tag() as i32;
        self.e(Insn::st_imm(
            Size::DW,
            R6,
            F_ERR,
            kind as i32 | (at << ERR_KIND_BITS),
        ));
        let u = self.cur().unwind;
        self.jmp(u);
    }

    /// After a call: unwind on an error or `next`.
    pub(super) fn check_after_call(&mut self) {
        let u = self.cur().unwind;
        self.e(Insn::ldx(Size::DW, R1, R6, F_ERR));
        self.jimm(Cond::Ne, R1, 0, u);
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.jimm(Cond::Set, R1, FLAG_NEXT, u);
    }

    // ------------------------------------------------------------ bodies

    pub(super) fn probe(&mut self, pi: usize) -> R<AFunc> {
        let probe = &self.p.probes[pi];
        self.span = probe.span;
        self.begin_owner(Owner::Probe(pi), &probe.locals, None);
        let mut fa = FuncAsm::new();
        let unwind = fa.new_label();
        self.bodies.push(Body {
            fa,
            unwind,
            brk: None,
            cont: None,
            dead: false,
            targets: Default::default(),
        });
        self.e(Insn::mov64_reg(R9, R1));
        if self.o.kernel_stack {
            // The context, for `bpf_get_stack` later in the body (a spilled
            // pointer keeps its type; r9 is not kept everywhere).
            self.e(Insn::stx(
                Size::DW,
                ebpf_backend::insn::R10,
                super::kstack::CTX_SLOT,
                R1,
            ));
        }
        // A handler for one system call leaves first thing on the others.
        self.syscall_gate_check(pi);
        self.load_frame();
        // A probe nested on this CPU (an NMI during another handler) is skipped.
        let go = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_BUSY));
        self.jimm(Cond::Eq, R1, 0, go);
        self.count_error_const(ErrKind::Skipped);
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(go);
        // Not running (begin probes still going, or stopping): do nothing.
        let gm = self.m.globals_map;
        self.ld_map_value(R1, gm, RUNNING_OFFSET);
        self.e(Insn::ldx(Size::DW, R1, R1, 0));
        let running = self.label();
        self.jimm(Cond::Ne, R1, 0, running);
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(running);
        self.e(Insn::st_imm(Size::DW, R6, F_BUSY, 1));
        self.e(Insn::st_imm(Size::DW, R6, F_ERR, 0));
        self.e(Insn::st_imm(Size::DW, R6, F_FLAGS, 0));
        self.e(Insn::st_imm(Size::DW, R6, F_ACTIONS, 0));
        self.e(Insn::st_imm(Size::DW, R6, F_PROBE, pi as i32));
        self.e(Insn::stx(Size::DW, R6, F_CTX, R9));
        self.probe_index = pi;
        self.reset_sregs();
        // Sites on events of every task test theirs first (pass 2's filter).
        if let Some(f) = self.p.probes[pi].sites.first().and_then(|s| s.filter()) {
            let f = f.clone();
            self.task_filter(&f, self.p.probes[pi].span)?;
        }
        // A handler that reads no register and no user memory skips both
        // (`regfree.rs`): most of an empty sampler's cost.
        if !super::regfree::context_free(self.p, &self.p.probes[pi].body) {
            self.context_prologue(pi);
        }
        self.zero_locals();
        let body = probe.body.clone();
        self.charged(&body)?;
        let u = self.cur().unwind;
        self.bind(u);
        // Count the error, if any (kind masked so the verifier sees a bound).
        let done = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_ERR));
        self.jimm(Cond::Eq, R1, 0, done);
        // The last error, for the message when it ends the session.
        let em = self.m.errors_map;
        self.ld_map_value(R2, em, (ERR_KINDS * 8) as u32);
        self.e(Insn::stx(Size::DW, R2, 0, R1));
        self.e(Insn::alu64_imm(Alu::And, R1, (ERR_KINDS - 1) as i32));
        self.e(Insn::alu64_imm(Alu::Lsh, R1, 3));
        self.ld_map_value(R2, em, 0);
        self.e(Insn::alu64_reg(Alu::Add, R2, R1));
        self.e(Insn::mov64_imm(R3, 1));
        self.e(Insn::atomic(Size::DW, AtomicOp::Add, R2, 0, R3));
        self.bind(done);
        self.e(Insn::st_imm(Size::DW, R6, F_BUSY, 0));
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        let b = self.bodies.pop().expect("probe body");
        self.end_owner();
        Ok(self.asm.add(format!("stx_p{pi}"), FuncKind::Entry, 1, b.fa))
    }

    /// What a handler that reads its context needs at entry: an empty
    /// user-memory read cache, the registers copied into the frame (a
    /// context pointer cannot be kept there; direct context loads, which
    /// the verifier rewrites to the interrupted registers for perf-event
    /// programs; tracepoint contexts have none), and a kernel sample's user
    /// registers.
    fn context_prologue(&mut self, pi: usize) {
        self.frame_addr(R1, ucache_start(self.o));
        for i in 0..UC_LINES {
            self.e(Insn::st_imm(Size::DW, R1, (i * UC_ENTRY) as i16, 0));
        }
        let context = self.p.probes[pi].context();
        let has_regs = context.regs;
        for i in 0..(PT_REGS_SIZE / 8) as i16 {
            if has_regs {
                self.e(Insn::ldx(Size::DW, R1, R9, i * 8));
            } else {
                self.e(Insn::mov64_imm(R1, 0));
            }
            self.e(Insn::stx(Size::DW, R6, F_REGS + i * 8, R1));
        }
        if context.kernel_samples {
            self.user_regs_of_kernel_samples();
        }
    }

    /// A sample that interrupted kernel mode (a system call, a page fault)
    /// still belongs to a task with user registers: keep the kernel address
    /// in `F_KIP`, mark the frame, and put the task's saved user registers
    /// (`task_pt_regs`) where the probe's registers were.
    fn user_regs_of_kernel_samples(&mut self) {
        let user = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_REGS + PT_CS_OFF));
        self.e(Insn::alu64_imm(Alu::And, R1, 3));
        self.jimm(Cond::Eq, R1, 3, user);
        self.e(Insn::ldx(Size::DW, R1, R6, F_REGS + PT_IP_OFF));
        self.e(Insn::stx(Size::DW, R6, F_KIP, R1));
        self.e(Insn::st_imm(Size::DW, R6, F_FLAGS, FLAG_KERNEL));
        self.task_user_regs();
        self.bind(user);
    }

    /// `F_REGS` = the current task's saved user registers (`task_pt_regs`).
    pub(super) fn task_user_regs(&mut self) {
        self.call(H_TASK_BTF);
        self.e(Insn::mov64_reg(R1, R0));
        self.call(H_TASK_PT_REGS);
        self.e(Insn::mov64_reg(R3, R0));
        self.frame_addr(R1, F_REGS as u32);
        self.mov_imm(R2, PT_REGS_SIZE as i64);
        self.call(H_READ_KERNEL);
    }

    /// Locals start at 0 / "" on every run, as in stap.
    pub(super) fn zero_locals(&mut self) {
        for i in 0..self.locals.len() {
            let l = LocalId(i as u32);
            if self.locals[i].ty == Ty::Str {
                let abs = self.str_local_abs(l);
                self.frame_addr(R1, abs);
                self.e(Insn::st_imm(Size::DW, R1, 0, 0));
                self.e(Insn::st_imm(Size::B, R1, 8, 0));
            } else {
                let off = self.long_local_off(l);
                self.e(Insn::st_imm(Size::DW, R7, off, 0));
            }
        }
    }

    pub(super) fn count_error_const(&mut self, k: ErrKind) {
        let em = self.m.errors_map;
        self.ld_map_value(R2, em, (k as u32) * 8);
        self.e(Insn::mov64_imm(R3, 1));
        self.e(Insn::atomic(Size::DW, AtomicOp::Add, R2, 0, R3));
    }

    // ------------------------------------------------------------ statements

    pub(super) fn stmts(&mut self, ss: &[Stmt]) -> R<()> {
        for s in ss {
            self.stmt(s)?;
        }
        Ok(())
    }

    pub(super) fn stmt(&mut self, s: &Stmt) -> R<()> {
        self.span = s.span;
        let m = self.mark();
        match &s.kind {
            StmtKind::Expr(e) => self.effect(e)?,
            StmtKind::Block(b) => self.stmts(b)?,
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let els = self.label();
                let end = self.label();
                self.long(cond)?;
                self.release(m);
                self.jimm(Cond::Eq, R0, 0, els);
                self.charged(then)?;
                self.jmp(end);
                self.bind(els);
                self.charged(otherwise)?;
                self.bind(end);
            }
            StmtKind::Loop { cond, body, step } => {
                self.lp(cond.as_ref(), body, step.as_ref(), s.span)?
            }
            StmtKind::Foreach(f) => self.foreach(f, s.span)?,
            StmtKind::Delete(place) => self.delete(place, s.span)?,
            StmtKind::DeleteArray(g) => self.delete_array(*g, s.span)?,
            StmtKind::Next => {
                self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
                self.e(Insn::alu64_imm(Alu::Or, R1, FLAG_NEXT));
                self.e(Insn::stx(Size::DW, R6, F_FLAGS, R1));
                let u = self.cur().unwind;
                self.jmp(u);
            }
            StmtKind::Break | StmtKind::Continue => {
                let target = if matches!(s.kind, StmtKind::Break) {
                    self.cur().brk
                } else {
                    self.cur().cont
                };
                let Some(t) = target else {
                    return Err(Diagnostic::error(
                        s.span,
                        "'break'/'continue' outside a loop",
                    ));
                };
                self.jmp(t);
            }
            StmtKind::Return(v) => self.ret_stmt(v.as_ref(), s.span)?,
            StmtKind::Try { body, var, handler } => self.try_catch(body, *var, handler)?,
        }
        self.release(m);
        Ok(())
    }

    pub(super) fn ret_stmt(&mut self, v: Option<&Expr>, span: Span) -> R<()> {
        let Owner::Func(f) = self.owner else {
            return Err(Diagnostic::error(span, "'return' outside a function"));
        };
        let locals = self.p.functions[f].locals.clone();
        if let Some(v) = v {
            match self.ret {
                Some(Ty::Str) => {
                    let s = self.string(v)?;
                    let abs = self.ret_str_abs(self.owner, &locals);
                    self.copy_str(SLoc::Frame(abs), s);
                }
                _ => {
                    self.long(v)?;
                    let abs = self.ret_long_abs(self.owner, &locals);
                    self.frame_addr(R1, abs);
                    self.e(Insn::stx(Size::DW, R1, 0, R0));
                }
            }
        }
        let Some(top) = self.inlines.last() else {
            return Err(Diagnostic::error(
                span,
                "internal: return outside an inlined function",
            ));
        };
        if self.loop_depth == top.loop_depth {
            let end = top.end;
            self.jmp(end);
        } else {
            // Inside one of this function's loops: stop the loop; the code
            // after bpf_loop sees FLAG_RETURN and finishes the return.
            self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
            self.e(Insn::alu64_imm(Alu::Or, R1, FLAG_RETURN));
            self.e(Insn::stx(Size::DW, R6, F_FLAGS, R1));
            self.e(Insn::mov64_imm(R0, 1));
            self.e(Insn::exit());
        }
        Ok(())
    }

    /// A loop: the body becomes a `bpf_loop` callback.
    pub(super) fn lp(
        &mut self,
        cond: Option<&Expr>,
        body: &[Stmt],
        step: Option<&Expr>,
        span: Span,
    ) -> R<()> {
        self.callbacks += 1;
        let name = format!("stx_cb{}", self.callbacks);
        // The callback shares this function's region; its temporaries must
        // not overlap ours, so it allocates after the current marks.
        let mut fa = FuncAsm::new();
        let unwind = fa.new_label();
        let brk = fa.new_label();
        let cont = fa.new_label();
        self.bodies.push(Body {
            fa,
            unwind,
            brk: Some(brk),
            cont: Some(cont),
            dead: false,
            targets: Default::default(),
        });
        self.loop_depth += 1;
        self.load_frame();
        if let Some(c) = cond {
            let m = self.mark();
            self.long(c)?;
            self.release(m);
            self.jimm(Cond::Eq, R0, 0, brk);
        }
        self.iteration(body)?;
        self.bind(cont);
        if let Some(st) = step {
            let m = self.mark();
            self.effect(st)?;
            self.release(m);
        }
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.e(Insn::alu64_imm(Alu::And, R1, !FLAG_LOOP_DONE));
        self.e(Insn::stx(Size::DW, R6, F_FLAGS, R1));
        self.e(Insn::mov64_imm(R0, 0));
        self.e(Insn::exit());
        self.bind(brk);
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.e(Insn::alu64_imm(Alu::Or, R1, FLAG_LOOP_DONE));
        self.e(Insn::stx(Size::DW, R6, F_FLAGS, R1));
        self.e(Insn::mov64_imm(R0, 1));
        self.e(Insn::exit());
        self.bind(unwind);
        self.e(Insn::mov64_imm(R0, 1));
        self.e(Insn::exit());
        self.loop_depth -= 1;
        let b = self.bodies.pop().expect("callback body");
        // Declared into the real assembler by the caller of run(): we keep
        // callbacks in a side list through the module passed to run().
        let cb = self.asm.add(name, FuncKind::Static, 2, b.fa);
        self.span = span;
        // The call.
        self.mov_imm(R1, self.o.maxaction as i64);
        self.call_loop(cb);
        self.after_user_callback();
        // The loop ran out of iterations: MAXACTION.
        let ok = self.label();
        self.e(Insn::ldx(Size::DW, R1, R6, F_FLAGS));
        self.jimm(Cond::Set, R1, FLAG_LOOP_DONE, ok);
        self.fail(ErrKind::MaxAction);
        self.bind(ok);
        Ok(())
    }
}
