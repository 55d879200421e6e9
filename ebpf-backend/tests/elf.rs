//! The ELF object (`--dump-bpf`): its layout, and that libbpf loads it
//! (`bpftool prog loadall`), relocations, BTF and func_info included.

mod common;

use std::process::Command;

use common::*;
use ebpf_backend::insn::*;
use ebpf_backend::*;
use object::{Object, ObjectSection, ObjectSymbol};

/// A module with every feature the ELF writer handles: several program
/// kinds, a bpf_loop callback making a BPF-to-BPF call, a subprogram shared
/// by two programs, ordinary maps, a ring buffer and frozen global data.
fn sample_module() -> Module {
    let mut m = Module::new();
    let frame = m.add_map(MapDef::new("stx_e_frame", MapKind::PercpuArray, 4, 16, 1));
    let hash = m.add_map(MapDef::new("stx_e_hash", MapKind::Hash, 8, 8, 128));
    let rb = m.add_map(MapDef::ringbuf("stx_e_rb", 1 << 12));
    let fmt = m.add_map(MapDef::global_data(
        "stx_e_fmt",
        b"hello %d\0".to_vec(),
        true,
    ));

    let add = m.asm.declare("stx_e_add", FuncKind::Static, 2);
    let mut f = FuncAsm::new();
    f.emit(Insn::ldx(Size::DW, R3, R1, 0));
    f.emit(Insn::alu64_reg(Alu::Add, R3, R2));
    f.emit(Insn::stx(Size::DW, R1, 0, R3));
    ret0(&mut f);
    m.asm.define(add, f);

    let cb = m.asm.declare("stx_e_cb", FuncKind::Static, 2);
    let mut f = FuncAsm::new();
    f.emit(Insn::ldx(Size::DW, R3, R2, 0));
    f.emit(Insn::mov64_reg(R2, R1));
    f.emit(Insn::mov64_reg(R1, R3));
    f.call_func(add);
    ret0(&mut f);
    m.asm.define(cb, f);

    // uprobe: bpf_loop over the frame, then count in the hash map.
    let mut f = FuncAsm::new();
    f.set_tag(3);
    let out = f.new_label();
    lookup_key(&mut f, frame, 0, out);
    f.emit(Insn::mov64_reg(R6, R0));
    f.emit(Insn::stx(Size::DW, R10, -16, R6));
    f.emit(Insn::mov64_imm(R1, 10));
    f.ld_func_addr(R2, cb);
    f.emit(Insn::mov64_reg(R3, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R3, -16));
    f.emit(Insn::mov64_imm(R4, 0));
    f.call_helper(helpers::LOOP);
    f.set_tag(4);
    f.emit(Insn::st_imm(Size::DW, R10, -24, 1));
    f.emit(Insn::stx(Size::DW, R10, -32, R0));
    f.ld_map_fd(R1, hash);
    f.emit(Insn::mov64_reg(R2, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R2, -24));
    f.emit(Insn::mov64_reg(R3, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R3, -32));
    f.emit(Insn::mov64_imm(R4, 0));
    f.call_helper(helpers::MAP_UPDATE_ELEM);
    f.bind(out);
    ret0(&mut f);
    let e = m.asm.add("stx_e_up", FuncKind::Entry, 1, f);
    m.add_program("stx_e_up", ProgKind::Uprobe, e);

    // uretprobe: shares stx_e_add directly; reads the format string.
    let mut f = FuncAsm::new();
    let out = f.new_label();
    lookup_key(&mut f, frame, 0, out);
    f.emit(Insn::mov64_reg(R1, R0));
    f.ld_map_value(R2, fmt, 6);
    f.emit(Insn::ldx(Size::B, R2, R2, 0));
    f.call_func(add);
    f.bind(out);
    ret0(&mut f);
    let e = m.asm.add("stx_e_uret", FuncKind::Entry, 1, f);
    m.add_program("stx_e_uret", ProgKind::Uretprobe, e);

    // perf_event: output to the ring buffer.
    let mut f = FuncAsm::new();
    f.emit(Insn::st_imm(Size::DW, R10, -8, 7));
    f.ld_map_fd(R1, rb);
    f.emit(Insn::mov64_reg(R2, R10));
    f.emit(Insn::alu64_imm(Alu::Add, R2, -8));
    f.emit(Insn::mov64_imm(R3, 8));
    f.emit(Insn::mov64_imm(R4, 0));
    f.call_helper(helpers::RINGBUF_OUTPUT);
    ret0(&mut f);
    let e = m.asm.add("stx_e_perf", FuncKind::Entry, 1, f);
    m.add_program("stx_e_perf", ProgKind::PerfEvent, e);

    // tracepoint
    let mut f = FuncAsm::new();
    ret0(&mut f);
    let e = m.asm.add("stx_e_tp", FuncKind::Entry, 1, f);
    for (tag, text) in [(3, "foreach (i in [1:10]) s += i"), (4, "hits[1] <<< n")] {
        m.set_source(
            tag,
            SourceLine {
                file: "sample.stp".into(),
                line: tag,
                col: 0,
                text: text.into(),
            },
        );
    }
    m.add_program(
        "stx_e_tp",
        ProgKind::Tracepoint {
            category: "sched".into(),
            name: "sched_switch".into(),
        },
        e,
    );
    m
}

#[test]
fn elf_layout() {
    let m = sample_module();
    let bytes = to_elf(&m).unwrap();
    let obj = object::File::parse(&*bytes).unwrap();
    assert_eq!(obj.architecture(), object::Architecture::Bpf);
    let names: Vec<&str> = obj.sections().filter_map(|s| s.name().ok()).collect();
    for want in [
        "uprobe",
        "uretprobe",
        "perf_event",
        "tracepoint/sched/sched_switch",
        ".text",
        ".maps",
        ".rodata.stx_e_fmt",
        "license",
        ".BTF",
        ".BTF.ext",
    ] {
        assert!(names.contains(&want), "missing section {want} in {names:?}");
    }
    let syms: Vec<(String, bool)> = obj
        .symbols()
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.is_global())))
        .collect();
    for (name, global) in [
        ("stx_e_up", true),
        ("stx_e_perf", true),
        ("stx_e_cb", false),
        ("stx_e_add", false),
        ("stx_e_hash", true),
    ] {
        assert!(
            syms.contains(&(name.to_string(), global)),
            "symbol {name} (global {global}) missing: {syms:?}"
        );
    }
    // The callback address load in `uprobe` is relocated against .text.
    let up = obj.section_by_name("uprobe").unwrap();
    assert_eq!(up.relocations().count(), 3);
    // Every program links on its own as well.
    m.validate().unwrap();
}

/// libbpf (through bpftool) loads every program of the object: sections,
/// relocations (calls, callbacks, maps, global data), BTF and func_info.
#[test]
fn elf_loads_with_libbpf() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let dir = Scratch::new("elf");
    let file = dir.path("sample.o");
    std::fs::write(&file, to_elf(&sample_module()).unwrap()).unwrap();
    let pins = std::path::PathBuf::from(format!("/sys/fs/bpf/stx_elf_test_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pins);
    let out = Command::new("bpftool")
        .args(["prog", "loadall"])
        .arg(&file)
        .arg(&pins)
        .output()
        .expect("bpftool runs");
    let loaded = bpftool_lists();
    let xlated = Command::new("bpftool")
        .args(["prog", "dump", "xlated", "pinned"])
        .arg(pins.join("stx_e_up"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&pins);
    assert!(
        out.status.success(),
        "bpftool prog loadall failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for p in ["stx_e_up", "stx_e_uret", "stx_e_perf", "stx_e_tp"] {
        assert!(loaded.contains(p), "{p} not loaded:\n{loaded}");
    }
    assert!(
        xlated.contains("hits[1] <<< n"),
        "line info missing from the loaded program:\n{xlated}"
    );
    assert_nothing_left(
        &[
            "stx_e_up",
            "stx_e_uret",
            "stx_e_perf",
            "stx_e_tp",
            "stx_e_hash",
        ],
        &[],
        &[],
        &[],
    );
}

/// aya 0.14 parses, relocates and loads every program of the object too.
#[test]
fn elf_loads_with_aya() {
    let _g = lock();
    if !bpf_ready() {
        return;
    }
    let bytes = to_elf(&sample_module()).unwrap();
    {
        let mut bpf = match aya::Ebpf::load(&bytes) {
            Ok(b) => b,
            Err(e) => panic!("aya cannot load the object: {e:?}"),
        };
        for name in ["stx_e_up", "stx_e_uret"] {
            let p: &mut aya::programs::UProbe = bpf.program_mut(name).unwrap().try_into().unwrap();
            p.load()
                .unwrap_or_else(|e| panic!("aya load of {name}: {e:?}"));
        }
        let p: &mut aya::programs::PerfEvent =
            bpf.program_mut("stx_e_perf").unwrap().try_into().unwrap();
        p.load().unwrap();
        let p: &mut aya::programs::TracePoint =
            bpf.program_mut("stx_e_tp").unwrap().try_into().unwrap();
        p.load().unwrap();
        let loaded = bpftool_lists();
        for p in ["stx_e_up", "stx_e_uret", "stx_e_perf", "stx_e_tp"] {
            assert!(loaded.contains(p), "{p} not loaded:\n{loaded}");
        }
    }
    assert_nothing_left(
        &[
            "stx_e_up",
            "stx_e_uret",
            "stx_e_perf",
            "stx_e_tp",
            "stx_e_hash",
        ],
        &[],
        &[],
        &[],
    );
}
