//! Pass 3 for kernel probes: typed IR -> eBPF programs (one per kernel
//! probe handler) and the maps they share.
//!
//! The lowering follows the design notes: locals and temporaries in a
//! per-CPU frame (a map value, not the 512-byte stack), loops as `bpf_loop`
//! callbacks bounded by MAXACTION, script functions as BPF-to-BPF calls,
//! strings as fixed-size slots with a length, globals in maps. See
//! [`layout`] for the frame and [`emit`] for the instruction selection.
//!
//! The code generator lives next to the IR (not in `ebpf-backend`) so the
//! back end crate stays free of the front end's types; `ebpf-backend`
//! provides the assembler, maps, ELF emission and loading.

mod actions;
mod callback;
mod classkey;
pub mod dispatch;
pub mod emit;
pub mod expr;
mod filter;
mod gatecheck;
mod iterate;
mod keyclass;
mod kread;
mod kstack;
mod ksym;
pub mod layout;
mod lookup;
pub mod maps;
mod octal;
pub mod regex;
mod regfree;
mod regs;
mod sregs;
mod starfmt;
mod statget;
pub mod strings;
mod strops;
mod strreplace;
mod task;
mod textstr;
mod trycatch;
mod unwind;
mod usymdata;

use crate::ir::{self, Exec, Program};
use ebpf_backend::{MapDef, MapKind, Module, ProgKind};
use grammar::{Diagnostic, Span};
use std::collections::HashMap;

/// Limits and load-time constants the code depends on.
#[derive(Debug, Clone)]
pub struct Options {
    /// The size of a string slot: MAXSTRINGLEN rounded up to a power of
    /// two (offsets into a slot are masked with `maxstr - 1`).
    pub maxstr: u32,
    /// MAXSTRINGLEN itself: strings hold at most `strcap - 1` bytes, as in
    /// the host's probes.
    pub strcap: u32,
    pub maxaction: u32,
    pub maxmapentries: u32,
    /// `target()`.
    pub target: u32,
    /// Load bias of each module `__stapxx_module_bias` names.
    pub biases: HashMap<String, u64>,
    /// Read faults give 0 instead of an error.
    pub skip_badvars: bool,
    /// Wall clock minus boot clock, in ns (for `gettimeofday_*`).
    pub boot_to_wall_ns: i64,
    /// Number of possible CPUs (frame map entries).
    pub ncpus: u32,
    /// The target's packed symbol table, when a probe calls `usymname` or
    /// `probefunc` (None: they give hex).
    pub usyms: Option<crate::ksyms::PackedLayout>,
    /// The packed kernel symbol table, when a probe calls `symname` or
    /// `probefunc` (None: they give hex for kernel addresses).
    pub ksyms: Option<crate::ksyms::PackedLayout>,
    /// `task_struct` offsets for `ppid()` (from the kernel's BTF).
    pub task: Option<crate::kernel_btf::TaskOffsets>,
    /// `struct pt_regs` offsets for the syscall-register builtins.
    pub pt_regs: Option<crate::kernel_btf::PtRegsOffsets>,
    /// Offsets to the current task's executable, for handlers whose sites
    /// are for tasks running a given file (`process("P").begin`).
    pub exe: Option<crate::kernel_btf::ExeOffsets>,
    /// The target's packed unwind table, when a probe unwinds its user
    /// stack (None: no target, so backtraces hold the current pc only).
    pub ucfi: Option<crate::unwind::CfiLayout>,
    /// MAXBACKTRACE: frames an unwound backtrace holds at most.
    pub maxbacktrace: u32,
    /// A probe unwinds user stacks (its counters get a map).
    pub unwind: bool,
    /// Keep the probe context on the BPF stack at entry, for
    /// `bpf_get_stack` (`backtrace()`).
    pub kernel_stack: bool,
    /// The target's file mappings (start, end, path, the file's load bias)
    /// for `umodname()` and `usymdata()`.
    pub umods: Vec<(u64, u64, String, u64)>,
    /// Bytes of the ring buffer kernel probes send their output through
    /// (a power of two; `-s MB`).
    pub output_buffer: u32,
    /// `--interval`: statistics get two maps, flipped by the host.
    pub interval: bool,
    /// `-v` count, for `__stapxx_verbose()`.
    pub verbose: u8,
}

/// The output ring buffer's size without `-s`, in MiB.
pub const DEFAULT_OUTPUT_MB: u32 = 16;
/// The largest `-s`: the ring buffer is locked kernel memory.
pub const MAX_OUTPUT_MB: u32 = 1024;

/// The ring buffer size for `-s MB`: a power of two (the kernel's rule),
/// rounded up.
pub fn output_buffer_bytes(mb: u32) -> u32 {
    (mb.clamp(1, MAX_OUTPUT_MB) << 20).next_power_of_two()
}

impl Options {
    pub fn new(maxstringlen: u64, maxaction: u64, maxmapentries: u64) -> Options {
        Options {
            maxstr: crate::runtime::interp::string_slot(maxstringlen),
            strcap: (maxstringlen.clamp(2, 1 << 24) as u32)
                .min(crate::runtime::interp::string_slot(maxstringlen)),
            maxaction: maxaction.clamp(1, 1 << 23) as u32,
            maxmapentries: maxmapentries.max(1) as u32,
            target: 0,
            biases: HashMap::new(),
            skip_badvars: false,
            boot_to_wall_ns: 0,
            ncpus: 1,
            usyms: None,
            ksyms: None,
            task: None,
            pt_regs: None,
            exe: None,
            ucfi: None,
            maxbacktrace: 20,
            unwind: false,
            kernel_stack: false,
            umods: Vec::new(),
            output_buffer: output_buffer_bytes(DEFAULT_OUTPUT_MB),
            interval: false,
            verbose: 0,
        }
    }
}

/// One compiled kernel probe handler.
#[derive(Debug, Clone)]
pub struct ProbeProgram {
    /// Index into `Program::probes`.
    pub probe: usize,
    pub prog: ebpf_backend::ProgId,
    pub kind: ProgKind,
    /// Run through a dispatcher's program array (or never), not attached
    /// itself (`dispatch.rs`).
    pub dispatched: bool,
}

/// Everything the runtime needs to load, attach and read back.
#[derive(Debug)]
pub struct Compiled {
    pub module: Module,
    pub probes: Vec<ProbeProgram>,
    pub maps: maps::MapLayout,
    /// Instruction tags index this: the script place each instruction is for.
    pub spans: Vec<Span>,
    /// Programs that jump to the handler of a system call's number.
    pub dispatchers: Vec<dispatch::Dispatcher>,
}

impl Compiled {
    /// The IR-annotated BPF listing of every program (`-p3`).
    pub fn listing(&self, sources: &grammar::SourceMap) -> Result<String, ebpf_backend::Error> {
        use std::fmt::Write;
        let mut out = String::new();
        let progs = self
            .probes
            .iter()
            .map(|p| (p.prog, p.kind.clone()))
            .chain(self.dispatchers.iter().map(|d| (d.prog, d.kind.clone())));
        for (prog, kind) in progs {
            let img = self.module.link(prog)?;
            let _ = writeln!(
                out,
                "# program {} ({:?}), {} instructions",
                self.module.program(prog).name,
                kind,
                img.insns.len()
            );
            let mut last = u32::MAX;
            let maps = self.module.maps();
            let listing = img.listing_with(|m| {
                maps.get(m.0 as usize)
                    .map_or_else(|| format!("#{}", m.0), |d| d.name.clone())
            });
            for line in listing.lines() {
                // Lines end in "; tag N": show the script line when it changes.
                if let Some((code, tag)) = line.rsplit_once("; tag ") {
                    let tag: u32 = tag.trim().parse().unwrap_or(u32::MAX);
                    if tag != last {
                        if let Some(span) = self.spans.get(tag as usize) {
                            let f = sources.get(span.file);
                            let (l, _) = f.line_col(span.start);
                            let _ =
                                writeln!(out, "  ; {}:{}: {}", f.name, l, f.line_text(l).trim());
                        }
                        last = tag;
                    }
                    let _ = writeln!(out, "{}", code.trim_end());
                } else {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        Ok(out)
    }
}

/// Compile every kernel probe handler of `program`.
pub fn compile(program: &Program, opts: &Options) -> Result<Compiled, Diagnostic> {
    let mut module = Module::new();
    let maps = maps::MapLayout::build(program, opts, &mut module)?;
    let mut probes = Vec::new();
    for (i, p) in program.probes.iter().enumerate() {
        if p.exec != Exec::Kernel {
            continue;
        }
        // Pass 2 gave every kernel handler sites of one program type.
        let Some(kind) = p.prog_kind() else {
            return Err(Diagnostic::error(p.span, "a kernel probe without sites"));
        };
        probes.push((i, kind));
    }
    let indexes: Vec<usize> = probes.iter().map(|(i, _)| *i).collect();
    let (entries, spans) = emit::compile_all(program, &indexes, opts, &maps, &mut module)?;
    let mut probes: Vec<ProbeProgram> = probes
        .into_iter()
        .zip(entries)
        .map(|((i, kind), entry)| {
            let prog = module.add_program(format!("stx_p{i}"), kind.clone(), entry);
            ProbeProgram {
                probe: i,
                prog,
                kind,
                dispatched: false,
            }
        })
        .collect();
    let orig_ax = opts.pt_regs.map(|o| o.orig_ax);
    let dispatchers = dispatch::build(program, &mut probes, orig_ax, &mut module);
    Ok(Compiled {
        module,
        probes,
        maps,
        spans,
        dispatchers,
    })
}

/// An error at a span for unsupported constructs.
pub(crate) fn unsupported(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(
        span,
        format!("{what} is not supported in kernel probes yet"),
    )
}

/// Is there any kernel probe?
pub fn has_kernel_probes(p: &Program) -> bool {
    p.probes.iter().any(|p| p.exec == Exec::Kernel)
}

/// The frame map: one entry per CPU.
pub(crate) fn frame_map(size: u32, ncpus: u32) -> MapDef {
    MapDef::new("stx_frame", MapKind::Array, 4, size, ncpus.max(1))
}

pub(crate) fn _assert_ir(_: &ir::Program) {}
