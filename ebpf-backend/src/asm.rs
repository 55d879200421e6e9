//! The assembler: functions built one at a time with labels and forward
//! jumps, symbolic calls (`call_func`), subprogram addresses for `bpf_loop`
//! callbacks (`ld_func_addr`) and map references (`ld_map_fd`,
//! `ld_map_value`), each instruction tagged with a `u32` (the script line).
//!
//! [`Assembler::link`] lays one program out as a single instruction stream:
//! the entry function first, then every function it reaches in depth-first
//! order of first reference, with calls and function addresses resolved to
//! pc-relative immediates. Map references stay symbolic in
//! [`Image::map_relocs`] until load time (fds) or ELF emission (relocations).

use std::collections::HashMap;
use std::fmt;

use crate::insn::{self, Cond, Insn, Reg};

/// A function of the [`Assembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

/// A map of the [`crate::Module`] (its index in declaration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MapId(pub u32);

/// A jump target inside one [`FuncAsm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(u32);

/// What a function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FuncKind {
    /// A program's main function (global linkage in BTF; `r1` = context).
    Entry,
    /// A subprogram: a BPF-to-BPF callee or a `bpf_loop` callback (static linkage).
    Static,
}

/// Something in a function that is resolved at link time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fixup {
    Label(Label),
    Call(FuncId),
    FuncAddr(FuncId),
    Map(MapId),
    MapValue(MapId),
}

/// The body of one function under construction.
#[derive(Clone, Debug, Default)]
pub struct FuncAsm {
    insns: Vec<Insn>,
    tags: Vec<u32>,
    tag: u32,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Fixup)>,
    errors: Vec<String>,
}

impl FuncAsm {
    pub fn new() -> FuncAsm {
        FuncAsm::default()
    }
    /// The tag given to the instructions emitted from now on.
    pub fn set_tag(&mut self, tag: u32) {
        self.tag = tag;
    }
    pub fn tag(&self) -> u32 {
        self.tag
    }
    /// Number of instruction slots so far.
    pub fn len(&self) -> usize {
        self.insns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
    /// The instructions so far (symbolic references unresolved).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Append one instruction slot.
    pub fn emit(&mut self, i: Insn) {
        self.insns.push(i);
        self.tags.push(self.tag);
    }
    /// Append several slots (e.g. the two of a LD_IMM64).
    pub fn emit_all(&mut self, is: &[Insn]) {
        for i in is {
            self.emit(*i);
        }
    }

    /// A new unbound label.
    pub fn new_label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() as u32 - 1)
    }
    /// Bind `l` to the next instruction.
    pub fn bind(&mut self, l: Label) {
        self.drop_jumps_to_next(l);
        match self.labels.get_mut(l.0 as usize) {
            Some(slot @ None) => *slot = Some(self.insns.len()),
            Some(Some(_)) => self.errors.push(format!("label {} bound twice", l.0)),
            None => self
                .errors
                .push(format!("label {} is not from this function", l.0)),
        }
    }
    /// Before binding `l` here: drop a `goto l` just emitted (a jump to
    /// the next instruction, as an `if` without `else` leaves). The kernel
    /// removes such no-ops itself, but each removal moves the whole
    /// program and its line info (O(program) per jump), which made a
    /// noticeable part of loading a long probe. Every jump goes through a
    /// label, so moving the labels bound past the dropped slot back by one
    /// keeps all targets right.
    fn drop_jumps_to_next(&mut self, l: Label) {
        while let (Some(&(at, Fixup::Label(to))), Some(last)) =
            (self.fixups.last(), self.insns.last())
        {
            let is_ja = last.code == insn::op::JMP | insn::op::JA;
            if to != l || at + 1 != self.insns.len() || !is_ja {
                break;
            }
            self.fixups.pop();
            self.insns.pop();
            self.tags.pop();
            for p in self.labels.iter_mut().flatten() {
                if *p > at {
                    *p = at;
                }
            }
        }
    }
    fn jump(&mut self, i: Insn, l: Label) {
        self.fixups.push((self.insns.len(), Fixup::Label(l)));
        self.emit(i);
    }
    /// `goto l`.
    pub fn jmp(&mut self, l: Label) {
        self.jump(Insn::ja(0), l);
    }
    /// `if dst cond imm goto l` (64-bit).
    pub fn jmp_imm(&mut self, cond: Cond, dst: Reg, imm: i32, l: Label) {
        self.jump(Insn::jmp_imm(cond, dst, imm, 0), l);
    }
    /// `if dst cond src goto l` (64-bit).
    pub fn jmp_reg(&mut self, cond: Cond, dst: Reg, src: Reg, l: Label) {
        self.jump(Insn::jmp_reg(cond, dst, src, 0), l);
    }
    /// `if wdst cond imm goto l` (32-bit).
    pub fn jmp32_imm(&mut self, cond: Cond, dst: Reg, imm: i32, l: Label) {
        self.jump(Insn::jmp32_imm(cond, dst, imm, 0), l);
    }
    /// `if wdst cond wsrc goto l` (32-bit).
    pub fn jmp32_reg(&mut self, cond: Cond, dst: Reg, src: Reg, l: Label) {
        self.jump(Insn::jmp32_reg(cond, dst, src, 0), l);
    }
    /// Call a helper (see [`crate::helpers`]).
    pub fn call_helper(&mut self, id: u32) {
        self.emit(Insn::call_helper(id));
    }
    /// BPF-to-BPF call of `f` (arguments in r1..r5, result in r0; r6..r9 preserved).
    pub fn call_func(&mut self, f: FuncId) {
        self.fixups.push((self.insns.len(), Fixup::Call(f)));
        self.emit(Insn::call_pseudo(-1));
    }
    /// `dst = &f` (a `BPF_PSEUDO_FUNC` load: the callback of `bpf_loop`).
    pub fn ld_func_addr(&mut self, dst: Reg, f: FuncId) {
        self.fixups.push((self.insns.len(), Fixup::FuncAddr(f)));
        self.emit_all(&Insn::ld_pseudo_func(dst, 0));
    }
    /// `dst = &map` (a `BPF_PSEUDO_MAP_FD` load).
    pub fn ld_map_fd(&mut self, dst: Reg, m: MapId) {
        self.fixups.push((self.insns.len(), Fixup::Map(m)));
        self.emit_all(&Insn::ld_map_fd(dst, 0));
    }
    /// `dst = (char *)&map[0] + off` (a `BPF_PSEUDO_MAP_VALUE` load of a
    /// single-entry array, e.g. [`crate::MapDef::global_data`]).
    pub fn ld_map_value(&mut self, dst: Reg, m: MapId, off: u32) {
        self.fixups.push((self.insns.len(), Fixup::MapValue(m)));
        self.emit_all(&Insn::ld_map_value(dst, 0, off));
    }
    /// `dst = imm64`.
    pub fn ld_imm64(&mut self, dst: Reg, v: u64) {
        self.emit_all(&Insn::ld_imm64(dst, v));
    }
}

/// An assembler error (a code generator bug, reported rather than panicking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsmError(pub String);

impl fmt::Display for AsmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for AsmError {}

#[derive(Clone, Debug)]
struct Func {
    name: String,
    kind: FuncKind,
    nargs: u8,
    body: Option<FuncAsm>,
}

/// A declared function as seen from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    pub name: String,
    pub kind: FuncKind,
    pub nargs: u8,
}

/// The set of functions of a module.
#[derive(Clone, Debug, Default)]
pub struct Assembler {
    funcs: Vec<Func>,
}

/// A resolved function body: label jumps patched, symbolic references listed.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub insns: Vec<Insn>,
    pub tags: Vec<u32>,
    /// (slot, callee) for pseudo calls.
    pub calls: Vec<(usize, FuncId)>,
    /// (slot, function) for pseudo func loads.
    pub func_addrs: Vec<(usize, FuncId)>,
    /// (slot, map, value load?) for map loads.
    pub maps: Vec<(usize, MapId, bool)>,
}

/// A map reference in an [`Image`]: the LD_IMM64 at `insn` loads `map`
/// (a map pointer, or with `value` a pointer into its value at the offset
/// already in the second slot's imm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapReloc {
    pub insn: usize,
    pub map: MapId,
    pub value: bool,
}

/// One function inside an [`Image`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFunc {
    pub id: FuncId,
    pub name: String,
    pub kind: FuncKind,
    pub nargs: u8,
    pub start: usize,
    pub len: usize,
}

/// One program laid out: entry first, then the subprograms it reaches.
#[derive(Clone, Debug)]
pub struct Image {
    pub insns: Vec<Insn>,
    /// The tag of each instruction slot.
    pub tags: Vec<u32>,
    pub funcs: Vec<ImageFunc>,
    pub map_relocs: Vec<MapReloc>,
}

impl Image {
    /// The function containing slot `insn`.
    pub fn func_at(&self, insn: usize) -> Option<&ImageFunc> {
        self.funcs
            .iter()
            .find(|f| insn >= f.start && insn < f.start + f.len)
    }
    /// The tag of slot `insn`.
    pub fn tag_at(&self, insn: usize) -> Option<u32> {
        self.tags.get(insn).copied()
    }
    /// A listing with function headers and each slot's tag: `   12: r1 = r6   ; tag 7`.
    pub fn listing(&self) -> String {
        self.listing_with(|m| format!("#{}", m.0))
    }

    /// The listing with map references shown as `map_name` gives them
    /// (before loading, the instructions carry no file descriptor yet).
    pub fn listing_with(&self, map_name: impl Fn(MapId) -> String) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for f in &self.funcs {
            let _ = writeln!(out, "{}:", f.name);
            let mut i = f.start;
            while i < f.start + f.len {
                let ins = &self.insns[i];
                let next = if ins.is_ld_imm64() {
                    self.insns.get(i + 1)
                } else {
                    None
                };
                let mut text = String::new();
                let _ = ins.fmt_with_next(next, &mut text);
                if let Some(r) = self.map_relocs.iter().find(|r| r.insn == i) {
                    text = text.replacen(&format!("fd:{}", ins.imm), &map_name(r.map), 1);
                }
                let _ = writeln!(out, "{i:5}: {text:<44} ; tag {}", self.tags[i]);
                i += if next.is_some() { 2 } else { 1 };
            }
        }
        out
    }
}

impl Assembler {
    pub fn new() -> Assembler {
        Assembler::default()
    }

    /// Declare a function; define its body later with [`Assembler::define`]
    /// (declaring first lets bodies call each other and nest callbacks).
    /// `nargs` (0..=5) is the number of arguments it takes in r1..r5.
    pub fn declare(&mut self, name: impl Into<String>, kind: FuncKind, nargs: u8) -> FuncId {
        self.funcs.push(Func {
            name: name.into(),
            kind,
            nargs,
            body: None,
        });
        FuncId(self.funcs.len() as u32 - 1)
    }

    /// Give `f` its body.
    pub fn define(&mut self, f: FuncId, body: FuncAsm) {
        self.funcs[f.0 as usize].body = Some(body);
    }

    /// Declare and define in one step.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        kind: FuncKind,
        nargs: u8,
        body: FuncAsm,
    ) -> FuncId {
        let id = self.declare(name, kind, nargs);
        self.define(id, body);
        id
    }

    /// All functions, by id.
    pub fn funcs(&self) -> impl Iterator<Item = (FuncId, FuncInfo)> + '_ {
        self.funcs.iter().enumerate().map(|(i, f)| {
            (
                FuncId(i as u32),
                FuncInfo {
                    name: f.name.clone(),
                    kind: f.kind,
                    nargs: f.nargs,
                },
            )
        })
    }

    pub fn info(&self, f: FuncId) -> FuncInfo {
        let f = &self.funcs[f.0 as usize];
        FuncInfo {
            name: f.name.clone(),
            kind: f.kind,
            nargs: f.nargs,
        }
    }

    /// Resolve a function's labels and collect its symbolic references.
    pub(crate) fn resolve(&self, id: FuncId) -> Result<Resolved, AsmError> {
        let f = self
            .funcs
            .get(id.0 as usize)
            .ok_or_else(|| AsmError(format!("unknown function #{}", id.0)))?;
        let body = f
            .body
            .as_ref()
            .ok_or_else(|| AsmError(format!("function {} declared but not defined", f.name)))?;
        if let Some(e) = body.errors.first() {
            return Err(AsmError(format!("{}: {e}", f.name)));
        }
        if body.insns.is_empty() {
            return Err(AsmError(format!("function {} is empty", f.name)));
        }
        let relaxed = relax_far_conditionals(body);
        let (labels, fixups) = (&relaxed.labels, &relaxed.fixups);
        let mut r = Resolved {
            insns: relaxed.insns.clone(),
            tags: relaxed.tags.clone(),
            calls: vec![],
            func_addrs: vec![],
            maps: vec![],
        };
        for &(at, fx) in fixups {
            match fx {
                Fixup::Label(l) => {
                    let target = labels[l.0 as usize].ok_or_else(|| {
                        AsmError(format!("{}: jump to unbound label {}", f.name, l.0))
                    })?;
                    let rel = target as i64 - at as i64 - 1;
                    // An unconditional jump further than 16 bits becomes
                    // `gotol` (cpu v4: the offset in imm), as the handlers
                    // of very long probes need to reach their exit path.
                    let far_ja = r.insns[at].code == insn::op::JMP | insn::op::JA;
                    if far_ja && i16::try_from(rel).is_err() {
                        let imm = i32::try_from(rel).map_err(|_| {
                            AsmError(format!(
                                "{}: jump at {at} to {target} is out of range",
                                f.name
                            ))
                        })?;
                        r.insns[at] = Insn {
                            code: insn::op::JMP32 | insn::op::JA,
                            off: 0,
                            imm,
                            ..r.insns[at]
                        };
                        continue;
                    }
                    let off = i16::try_from(rel).map_err(|_| {
                        AsmError(format!(
                            "{}: jump at {at} to {target} is out of 16-bit range",
                            f.name
                        ))
                    })?;
                    r.insns[at].off = off;
                }
                Fixup::Call(c) | Fixup::FuncAddr(c) => {
                    let callee = self.funcs.get(c.0 as usize).ok_or_else(|| {
                        AsmError(format!("{}: unknown function #{}", f.name, c.0))
                    })?;
                    if callee.kind != FuncKind::Static {
                        return Err(AsmError(format!(
                            "{}: {} is a program entry and cannot be called",
                            f.name, callee.name
                        )));
                    }
                    if matches!(fx, Fixup::Call(_)) {
                        r.calls.push((at, c));
                    } else {
                        r.func_addrs.push((at, c));
                    }
                }
                Fixup::Map(m) => r.maps.push((at, m, false)),
                Fixup::MapValue(m) => r.maps.push((at, m, true)),
            }
        }
        if let Some(last) = r.insns.last() {
            let is_exit_or_ja = last.code == insn::op::JMP | insn::op::EXIT
                || last.code == insn::op::JMP | insn::op::JA;
            if !is_exit_or_ja {
                return Err(AsmError(format!(
                    "function {} does not end with exit or goto",
                    f.name
                )));
            }
        }
        Ok(r)
    }

    /// Lay out the program whose main function is `entry`.
    pub fn link(&self, entry: FuncId) -> Result<Image, AsmError> {
        let mut order: Vec<FuncId> = vec![];
        let mut resolved: HashMap<FuncId, Resolved> = HashMap::new();
        // Depth-first pre-order over first references.
        fn visit(
            a: &Assembler,
            f: FuncId,
            order: &mut Vec<FuncId>,
            resolved: &mut HashMap<FuncId, Resolved>,
        ) -> Result<(), AsmError> {
            if resolved.contains_key(&f) {
                return Ok(());
            }
            let r = a.resolve(f)?;
            let mut refs: Vec<(usize, FuncId)> =
                r.calls.iter().chain(&r.func_addrs).copied().collect();
            refs.sort();
            order.push(f);
            resolved.insert(f, r);
            for (_, c) in refs {
                visit(a, c, order, resolved)?;
            }
            Ok(())
        }
        if self.funcs.get(entry.0 as usize).map(|f| f.kind) != Some(FuncKind::Entry) {
            return Err(AsmError(format!("#{} is not an entry function", entry.0)));
        }
        visit(self, entry, &mut order, &mut resolved)?;
        let mut start = HashMap::new();
        let mut n = 0usize;
        for f in &order {
            start.insert(*f, n);
            n += resolved[f].insns.len();
        }
        let mut img = Image {
            insns: Vec::with_capacity(n),
            tags: Vec::with_capacity(n),
            funcs: vec![],
            map_relocs: vec![],
        };
        for f in &order {
            let r = &resolved[f];
            let base = start[f];
            let info = &self.funcs[f.0 as usize];
            img.funcs.push(ImageFunc {
                id: *f,
                name: info.name.clone(),
                kind: info.kind,
                nargs: info.nargs,
                start: base,
                len: r.insns.len(),
            });
            let mut insns = r.insns.clone();
            for &(at, c) in r.calls.iter().chain(&r.func_addrs) {
                insns[at].imm = (start[&c] as i64 - (base + at) as i64 - 1) as i32;
            }
            for &(at, m, value) in &r.maps {
                img.map_relocs.push(MapReloc {
                    insn: base + at,
                    map: m,
                    value,
                });
            }
            img.insns.extend(insns);
            img.tags.extend(&r.tags);
        }
        Ok(img)
    }
}

/// A function body with its far conditional jumps relaxed.
struct Relaxed {
    insns: Vec<Insn>,
    tags: Vec<u32>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Fixup)>,
}

/// eBPF's conditional jumps reach 16 bits; a very long probe (many tapset
/// formatters inlined) can need more. Each conditional jump to a label
/// too far away becomes `if cond goto +1; goto +1; goto target`, the last
/// a `gotol` once linked. Inserting moves what follows, which can push
/// other jumps out of range: repeated until none is.
fn relax_far_conditionals(body: &FuncAsm) -> Relaxed {
    let is_cond = |i: &Insn| {
        let class = i.code & 0x07;
        let op = i.code & 0xf0;
        (class == insn::op::JMP || class == insn::op::JMP32)
            && op != insn::op::JA
            && op != insn::op::CALL
            && op != insn::op::EXIT
    };
    let label_jumps: Vec<(usize, usize)> = body
        .fixups
        .iter()
        .filter_map(|&(at, fx)| match fx {
            Fixup::Label(l) if is_cond(&body.insns[at]) => {
                body.labels[l.0 as usize].map(|t| (at, t))
            }
            _ => None,
        })
        .collect();
    let mut far: Vec<usize> = Vec::new();
    loop {
        // Where instruction (or label position) i ends up.
        let newpos = |i: usize, far: &[usize]| i + 2 * far.iter().filter(|&&j| j < i).count();
        let mut grew = false;
        for &(at, target) in &label_jumps {
            if far.contains(&at) {
                continue;
            }
            let rel = newpos(target, &far) as i64 - newpos(at, &far) as i64 - 1;
            if i16::try_from(rel).is_err() {
                far.push(at);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    if far.is_empty() {
        return Relaxed {
            insns: body.insns.clone(),
            tags: body.tags.clone(),
            labels: body.labels.clone(),
            fixups: body.fixups.clone(),
        };
    }
    far.sort_unstable();
    let newpos = |i: usize| i + 2 * far.partition_point(|&j| j < i);
    let mut insns = Vec::with_capacity(body.insns.len() + 2 * far.len());
    let mut tags = Vec::with_capacity(insns.capacity());
    let mut fixups = Vec::with_capacity(body.fixups.len());
    for (i, ins) in body.insns.iter().enumerate() {
        let tag = body.tags.get(i).copied().unwrap_or(u32::MAX);
        if far.binary_search(&i).is_ok() {
            insns.push(Insn { off: 1, ..*ins });
            insns.push(Insn::ja(1));
            insns.push(Insn::ja(0));
            tags.extend([tag, tag, tag]);
        } else {
            insns.push(*ins);
            tags.push(tag);
        }
    }
    for &(at, fx) in &body.fixups {
        match fx {
            // The far jump's target is now the `goto` two after it.
            Fixup::Label(l) if far.binary_search(&at).is_ok() => {
                fixups.push((newpos(at) + 2, Fixup::Label(l)))
            }
            _ => fixups.push((newpos(at), fx)),
        }
    }
    let labels = body.labels.iter().map(|l| l.map(newpos)).collect();
    Relaxed {
        insns,
        tags,
        labels,
        fixups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::*;

    #[test]
    fn labels_calls_and_func_addrs_resolve() {
        let mut a = Assembler::new();
        let main = a.declare("stx_main", FuncKind::Entry, 1);
        let cb = a.declare("cb", FuncKind::Static, 2);
        let helper = a.declare("helper", FuncKind::Static, 1);

        let mut h = FuncAsm::new();
        h.set_tag(30);
        h.emit(Insn::mov64_reg(R0, R1));
        h.emit(Insn::exit());
        a.define(helper, h);

        let mut c = FuncAsm::new();
        c.set_tag(20);
        c.call_func(helper);
        c.emit(Insn::mov64_imm(R0, 0));
        c.emit(Insn::exit());
        a.define(cb, c);

        let mut m = FuncAsm::new();
        m.set_tag(10);
        let done = m.new_label();
        m.emit(Insn::mov64_imm(R1, 10));
        m.jmp_imm(Cond::Eq, R1, 0, done);
        m.ld_func_addr(R2, cb);
        m.emit(Insn::mov64_imm(R3, 0));
        m.emit(Insn::mov64_imm(R4, 0));
        m.call_helper(crate::helpers::LOOP);
        m.bind(done);
        m.emit(Insn::mov64_imm(R0, 0));
        m.emit(Insn::exit());
        a.define(main, m);

        let img = a.link(main).unwrap();
        let names: Vec<_> = img.funcs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["stx_main", "cb", "helper"]);
        assert_eq!(img.insns[1].off, 5); // jump to `done` at slot 7
        assert_eq!(img.insns[2].src, op::PSEUDO_FUNC);
        assert_eq!(2 + 1 + img.insns[2].imm as usize, 9); // cb starts at 9
        assert!(img.insns[9].is_pseudo_call());
        assert_eq!(9 + 1 + img.insns[9].imm as usize, 12); // helper at 12
        assert_eq!(img.func_at(12).unwrap().name, "helper");
        assert_eq!(img.tag_at(10), Some(20));
        assert!(img.listing().contains("call pc+2"));
    }

    #[test]
    fn far_unconditional_jumps_become_gotol() {
        let mut a = Assembler::new();
        let main = a.declare("stx_main", FuncKind::Entry, 1);
        let mut m = FuncAsm::new();
        let end = m.new_label();
        m.jmp(end);
        for _ in 0..40_000 {
            m.emit(Insn::mov64_imm(R0, 1));
        }
        m.bind(end);
        m.emit(Insn::exit());
        a.define(main, m);
        let img = a.link(main).unwrap();
        let j = img.insns[0];
        assert_eq!(j.code, insn::op::JMP32 | insn::op::JA);
        assert_eq!((j.off, j.imm), (0, 40_000));
    }

    #[test]
    fn far_conditional_jumps_go_through_gotol() {
        let mut a = Assembler::new();
        let main = a.declare("stx_main", FuncKind::Entry, 1);
        let mut m = FuncAsm::new();
        let end = m.new_label();
        m.emit(Insn::mov64_imm(R0, 0));
        m.jmp_imm(Cond::Eq, R1, 7, end);
        for _ in 0..40_000 {
            m.emit(Insn::mov64_imm(R0, 1));
        }
        m.bind(end);
        m.emit(Insn::exit());
        a.define(main, m);
        let img = a.link(main).unwrap();
        // if r1 == 7 goto +1; goto +1; gotol end; ...
        assert_eq!((img.insns[1].off, img.insns[1].imm), (1, 7));
        assert_eq!(img.insns[2].code, insn::op::JMP | insn::op::JA);
        assert_eq!(img.insns[2].off, 1);
        let g = img.insns[3];
        assert_eq!(g.code, insn::op::JMP32 | insn::op::JA);
        assert_eq!(3 + 1 + g.imm as usize, 4 + 40_000);
        assert_eq!(img.insns[4 + 40_000].code, insn::op::JMP | insn::op::EXIT);
    }

    #[test]
    fn jumps_to_the_next_instruction_are_dropped() {
        let mut a = Assembler::new();
        let main = a.declare("stx_main", FuncKind::Entry, 1);
        let mut m = FuncAsm::new();
        let (other, at_goto, next, end) =
            (m.new_label(), m.new_label(), m.new_label(), m.new_label());
        m.jmp_imm(Cond::Eq, R1, 0, at_goto);
        m.jmp_imm(Cond::Eq, R1, 1, next);
        m.jmp_imm(Cond::Eq, R1, 2, end);
        m.emit(Insn::mov64_imm(R0, 1));
        m.bind(at_goto);
        m.jmp(next);
        m.jmp(next);
        m.bind(other);
        m.bind(next);
        m.emit(Insn::mov64_imm(R0, 2));
        // A conditional jump to the next instruction stays.
        m.jmp_imm(Cond::Eq, R1, 3, end);
        m.bind(end);
        m.emit(Insn::exit());
        a.define(main, m);
        let img = a.link(main).unwrap();
        // Both gotos are gone; what jumped to them or past them lands on
        // `r0 = 2` at slot 4.
        assert_eq!(img.insns.len(), 7);
        assert_eq!(img.tags.len(), 7);
        assert_eq!(img.insns[0].off, 3);
        assert_eq!(img.insns[1].off, 2);
        assert_eq!(img.insns[2].off, 3);
        assert_eq!(img.insns[4], Insn::mov64_imm(R0, 2));
        assert_eq!((img.insns[5].off, img.insns[5].imm), (0, 3));
        assert_eq!(img.insns[6].code, insn::op::JMP | insn::op::EXIT);
    }

    #[test]
    fn errors_are_reported() {
        let mut a = Assembler::new();
        let main = a.declare("stx_main", FuncKind::Entry, 1);
        let mut m = FuncAsm::new();
        let l = m.new_label();
        m.jmp(l);
        a.define(main, m);
        assert!(a.link(main).unwrap_err().0.contains("unbound label"));
        let undefined = a.declare("nope", FuncKind::Static, 0);
        let mut m = FuncAsm::new();
        m.call_func(undefined);
        m.emit(Insn::exit());
        a.define(main, m);
        assert!(a.link(main).unwrap_err().0.contains("not defined"));
    }
}
