//! # ebpf-backend
//!
//! The low half of stapxx-rs's back end: BPF instructions, an assembler for
//! multi-function programs, ELF emission, and loading/attaching/reading
//! through raw `bpf(2)` and `perf_event_open(2)` calls. The code generator
//! targets this API; nothing here knows about SystemTap.
//!
//! ## Building code
//!
//! * [`insn`]: [`Insn`] (`code, dst, src, off, imm`) with constructors for
//!   every class (`alu64_imm`, `alu32_reg`, `jmp_imm`, `jmp32_reg`, `ldx`,
//!   `stx`, `st_imm`, `atomic`, `ld_imm64`, `ld_map_fd`, `ld_map_value`,
//!   `ld_pseudo_func`, `call_helper`, `call_pseudo`, `exit`), `encode`, and a
//!   verifier-style `Display` / [`insn::listing`]. Helper numbers: [`helpers`].
//! * [`asm`]: build each function in a [`FuncAsm`] (labels and forward jumps,
//!   `call_func`, `ld_func_addr` for `bpf_loop` callbacks, `ld_map_fd`,
//!   `ld_map_value`, and `set_tag(u32)` to tag the following instructions
//!   with a script line), register it in the module's [`Assembler`]
//!   (`declare` first when bodies refer to each other, then `define`).
//!   Functions are [`FuncKind::Entry`] (a program's main) or
//!   [`FuncKind::Static`] (BPF-to-BPF callees and `bpf_loop` callbacks; the
//!   kernel requires callbacks to be static in BTF, which this crate emits).
//! * [`Module`]: maps ([`MapDef`]: name, [`MapKind`], key/value size, max
//!   entries, flags, optional initial data), the assembler, and programs
//!   (name, [`ProgKind`]: `PerfEvent`, `Uprobe`, `Uretprobe`, `Tracepoint`,
//!   entry function). [`Module::link`] gives a program's [`Image`]: one
//!   instruction stream (entry first, then the subprograms it reaches,
//!   depth-first), per-slot tags, function extents; [`Image::func_at`] /
//!   [`Image::tag_at`] map an instruction index back to function and tag,
//!   and [`Image::listing`] prints it; [`Module::listing`] prints all (`-p 3`).
//!   [`Module::set_source`] gives a tag its [`SourceLine`] (file, line,
//!   text): programs then carry BTF line info, and the verifier log and
//!   `bpftool prog dump xlated` show the script line above its instructions.
//! * Global data: [`MapDef::global_data`] is a single-entry array with initial
//!   contents, frozen and read-only for programs when asked (constants,
//!   `bpf_snprintf` format strings); programs address it with
//!   [`FuncAsm::ld_map_value`] (`BPF_PSEUDO_MAP_VALUE`).
//!
//! ## ELF
//!
//! [`to_elf`] writes the module as a relocatable BPF object (program
//! sections, `.text` subprograms with call/func-address relocations,
//! BTF-defined `.maps`, global data sections, `license`, `.BTF`, `.BTF.ext`
//! func_info, line_info) for `--dump-bpf`. Both libbpf (`bpftool prog
//! loadall`) and aya 0.14 load it; the tests check both.
//!
//! ## Loading, attaching, reading
//!
//! [`Loaded::load`] loads BTF, creates the maps and loads every program with
//! `func_info`; a rejection is [`Error::Verifier`] with a [`VerifierError`]
//! holding the whole log, the complaint, the failing instruction index and
//! its function and tag. Then, on each [`Program`]:
//! `attach_cpu_clock(freq)` (`timer.profile`: a CPU-clock sampling event on
//! every online CPU), `attach_perf(&PerfEventSpec)`,
//! `attach_uprobe(path, file_offset, pid)` (uprobe or uretprobe by the
//! program's kind; through the uprobe PMU, so nothing is written to tracefs
//! `uprobe_events`), `attach_tracepoint(cat, name)`. Each returns an
//! [`Attachment`]; dropping it detaches. Dropping [`Loaded`] closes every
//! program and map fd. All kernel objects are owned fds, so they are
//! released on every path, panics included.
//!
//! [`Map`]: `lookup`, `lookup_percpu` (one value per possible CPU),
//! `read_u64_sum`, `update`, `delete`, `keys`, `entries`.
//! [`RingBufReader`]: `poll(timeout, |record| ..)` / `consume`.
//!
//! ## Why raw syscalls and not aya
//!
//! aya 0.14 does load the ELF (it handles PSEUDO_FUNC relocations; see the
//! `elf_loads_with_aya` test), but it re-links programs in its own order, so
//! a verifier error index would not map back to our instruction tags without
//! mirroring its linker; its typed
//! maps want compile-time key/value types while ours are sized at run time
//! (string keys of MAXSTRINGLEN, frames of any size); and func_info,
//! log levels and retries are exactly what we need to control. The syscall
//! surface needed is small (BTF_LOAD, MAP_CREATE, PROG_LOAD, map element
//! commands, perf_event_open + PERF_EVENT_IOC_SET_BPF), so it is done here
//! directly with `libc`, and the ELF stays as the inspectable artefact.
//!
//! ## Example
//!
//! ```no_run
//! use ebpf_backend::*;
//! use ebpf_backend::insn::*;
//!
//! let mut m = Module::new();
//! let counts = m.add_map(MapDef::new("stx_counts", MapKind::PercpuArray, 4, 8, 1));
//! let mut f = FuncAsm::new();
//! f.set_tag(1);
//! f.emit(Insn::st_imm(Size::W, R10, -4, 0));
//! f.ld_map_fd(R1, counts);
//! f.emit(Insn::mov64_reg(R2, R10));
//! f.emit(Insn::alu64_imm(Alu::Add, R2, -4));
//! f.call_helper(helpers::MAP_LOOKUP_ELEM);
//! let out = f.new_label();
//! f.jmp_imm(Cond::Eq, R0, 0, out);
//! f.emit(Insn::mov64_imm(R1, 1));
//! f.emit(Insn::atomic(Size::DW, AtomicOp::Add, R0, 0, R1));
//! f.bind(out);
//! f.emit(Insn::mov64_imm(R0, 0));
//! f.emit(Insn::exit());
//! let entry = m.asm.add("stx_tick", FuncKind::Entry, 1, f);
//! let prog = m.add_program("stx_tick", ProgKind::PerfEvent, entry);
//! let loaded = Loaded::load(&m, &LoadOptions::default())?;
//! let _att = loaded.program(prog).attach_cpu_clock(100)?;
//! std::thread::sleep(std::time::Duration::from_secs(1));
//! let n = loaded.map(counts).read_u64_sum(&0u32.to_ne_bytes(), 0)?;
//! # Ok::<(), Error>(())
//! ```

pub mod asm;
pub mod attach;
mod btf;
pub mod btf_kind;
mod elf;
pub mod error;
pub mod grace;
pub mod helpers;
pub mod insn;
pub mod load;
pub mod mapped;
pub mod maps;
pub mod module;
pub mod ringbuf;
pub mod sys;

pub use asm::{
    AsmError, Assembler, FuncAsm, FuncId, FuncKind, Image, ImageFunc, Label, MapId, MapReloc,
};
pub use attach::{Attachment, PerfEventSpec, Sample};
pub use elf::to_elf;
pub use error::{Error, VerifierError};
pub use grace::Grace;
pub use insn::Insn;
pub use load::{LoadOptions, Loaded, Map, Program};
pub use mapped::MappedValue;
pub use maps::{MapDef, MapKind};
pub use module::{Module, ProgId, ProgKind, ProgramDef, SourceLine};
pub use ringbuf::RingBufReader;
