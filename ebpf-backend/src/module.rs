//! A module: maps, functions and the programs (entry functions with a
//! program type) that a script compiles to. It is what gets emitted as an
//! ELF object and what gets loaded.

use std::collections::HashMap;

use crate::asm::{Assembler, FuncId, FuncKind, Image, MapId};
use crate::maps::MapDef;
use crate::Error;

/// How a program is attached, which fixes its program type and ELF section.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProgKind {
    /// `BPF_PROG_TYPE_PERF_EVENT` (timer.profile, generic perf counters);
    /// context: `struct bpf_perf_event_data`.
    PerfEvent,
    /// `BPF_PROG_TYPE_KPROBE` on a uprobe; context: `struct pt_regs`.
    Uprobe,
    /// `BPF_PROG_TYPE_KPROBE` on a uretprobe; context: `struct pt_regs`.
    Uretprobe,
    /// `BPF_PROG_TYPE_TRACEPOINT`; context: the tracepoint's record.
    Tracepoint { category: String, name: String },
    /// `BPF_PROG_TYPE_RAW_TRACEPOINT`; context: the tracepoint's arguments
    /// as they were passed (`u64 args[]`, the kernel's typed values).
    RawTracepoint { name: String },
}

impl ProgKind {
    /// The kernel's `bpf_prog_type`.
    pub fn prog_type(&self) -> u32 {
        match self {
            ProgKind::PerfEvent => 7,
            ProgKind::Uprobe | ProgKind::Uretprobe => 2,
            ProgKind::Tracepoint { .. } => 5,
            ProgKind::RawTracepoint { .. } => 17,
        }
    }
    /// The ELF section name libbpf and aya recognise.
    pub fn section_name(&self) -> String {
        match self {
            ProgKind::PerfEvent => "perf_event".into(),
            ProgKind::Uprobe => "uprobe".into(),
            ProgKind::Uretprobe => "uretprobe".into(),
            ProgKind::Tracepoint { category, name } => format!("tracepoint/{category}/{name}"),
            ProgKind::RawTracepoint { name } => format!("raw_tracepoint/{name}"),
        }
    }
}

/// A program: an entry function and how it attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramDef {
    /// The program name (a C identifier; the kernel keeps 15 bytes; use `stx_`).
    pub name: String,
    pub kind: ProgKind,
    pub entry: FuncId,
}

/// A program of a [`Module`] (its index in declaration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgId(pub u32);

/// Everything one script compiles to.
#[derive(Clone, Debug)]
pub struct Module {
    /// The license string handed to the kernel. Many tracing helpers
    /// (`bpf_probe_read_user`, ...) need a GPL-compatible one.
    pub license: String,
    pub asm: Assembler,
    maps: Vec<MapDef>,
    programs: Vec<ProgramDef>,
    sources: HashMap<u32, SourceLine>,
}

/// The source of a tag, for BTF line info: the verifier log then shows
/// `; text @ file:line` above the instructions, and so does
/// `bpftool prog dump xlated`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub text: String,
}

impl Default for Module {
    fn default() -> Self {
        Module::new()
    }
}

impl Module {
    pub fn new() -> Module {
        Module {
            license: "GPL".into(),
            asm: Assembler::new(),
            maps: vec![],
            programs: vec![],
            sources: HashMap::new(),
        }
    }

    /// Say where instructions tagged `tag` come from. When any source is
    /// set, programs are loaded (and emitted) with BTF line info, one record
    /// wherever the tag changes; tags without a source get `line = tag`.
    pub fn set_source(&mut self, tag: u32, src: SourceLine) {
        self.sources.insert(tag, src);
    }
    pub fn sources(&self) -> &HashMap<u32, SourceLine> {
        &self.sources
    }

    /// Add a map.
    pub fn add_map(&mut self, def: MapDef) -> MapId {
        self.maps.push(def);
        MapId(self.maps.len() as u32 - 1)
    }
    pub fn maps(&self) -> &[MapDef] {
        &self.maps
    }
    pub fn map(&self, id: MapId) -> &MapDef {
        &self.maps[id.0 as usize]
    }

    /// Add a program whose main function is `entry` (declared [`FuncKind::Entry`]).
    pub fn add_program(
        &mut self,
        name: impl Into<String>,
        kind: ProgKind,
        entry: FuncId,
    ) -> ProgId {
        self.programs.push(ProgramDef {
            name: name.into(),
            kind,
            entry,
        });
        ProgId(self.programs.len() as u32 - 1)
    }
    pub fn programs(&self) -> &[ProgramDef] {
        &self.programs
    }
    pub fn program(&self, id: ProgId) -> &ProgramDef {
        &self.programs[id.0 as usize]
    }

    /// Link one program (see [`Assembler::link`]) and check its map references.
    pub fn link(&self, id: ProgId) -> Result<Image, Error> {
        let p = self.program(id);
        let img = self.asm.link(p.entry)?;
        self.check_map_refs(&img)?;
        Ok(img)
    }

    pub(crate) fn check_map_refs(&self, img: &Image) -> Result<(), Error> {
        for r in &img.map_relocs {
            let Some(m) = self.maps.get(r.map.0 as usize) else {
                return Err(Error::Asm(crate::AsmError(format!(
                    "insn {}: unknown map #{}",
                    r.insn, r.map.0
                ))));
            };
            if r.value && (m.kind != crate::MapKind::Array || m.max_entries != 1) {
                return Err(Error::Asm(crate::AsmError(format!(
                    "insn {}: map value load from {} which is not a single-entry array",
                    r.insn, m.name
                ))));
            }
        }
        Ok(())
    }

    /// A listing of the maps and of every program as linked (for `-p 3`).
    pub fn listing(&self) -> Result<String, Error> {
        use std::fmt::Write;
        let mut out = String::new();
        for (i, d) in self.maps.iter().enumerate() {
            let _ = writeln!(
                out,
                "map #{i} {}: {:?} key {} value {} max_entries {} flags {:#x}{}",
                d.name,
                d.kind,
                d.key_size,
                d.value_size,
                d.max_entries,
                d.flags,
                if d.data.is_some() {
                    " (initialised)"
                } else {
                    ""
                }
            );
        }
        for (i, p) in self.programs.iter().enumerate() {
            let img = self.link(ProgId(i as u32))?;
            let _ = writeln!(
                out,
                "\nprogram {} ({}), {} insns:",
                p.name,
                p.kind.section_name(),
                img.insns.len()
            );
            out.push_str(&img.listing());
        }
        Ok(out)
    }

    /// Check the module is consistent: names, entries, every program links.
    pub fn validate(&self) -> Result<(), Error> {
        for (i, p) in self.programs.iter().enumerate() {
            if !is_ident(&p.name) {
                return Err(Error::Invalid(format!(
                    "program name {:?} is not a C identifier",
                    p.name
                )));
            }
            if self.asm.info(p.entry).kind != FuncKind::Entry {
                return Err(Error::Invalid(format!(
                    "program {}: entry is not an Entry function",
                    p.name
                )));
            }
            self.link(ProgId(i as u32))?;
        }
        for m in &self.maps {
            if !is_ident(&m.name) {
                return Err(Error::Invalid(format!(
                    "map name {:?} is not a C identifier",
                    m.name
                )));
            }
        }
        Ok(())
    }
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}
