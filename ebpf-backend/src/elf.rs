//! ELF emission (`--dump-bpf FILE.o`): the module as a relocatable BPF
//! object in the layout clang produces and libbpf / aya load:
//!
//! * one section per program kind (`perf_event`, `uprobe`, `uretprobe`,
//!   `tracepoint/CAT/NAME`), each program a global FUNC symbol in it;
//! * `.text` with every subprogram as a local FUNC symbol; calls are
//!   `R_BPF_64_32` relocations against the callee's symbol (imm = -1),
//!   `bpf_loop` callback addresses `R_BPF_64_64` relocations against the
//!   `.text` section symbol (imm = byte offset, src = `BPF_PSEUDO_FUNC`);
//! * BTF-defined maps in `.maps` (`__uint(type, ..)` style structs) with
//!   `R_BPF_64_64` relocations of the LD_IMM64s that load them;
//! * global-data maps ([`crate::MapDef::global_data`]) as `.rodata.NAME` /
//!   `.data.NAME` sections;
//! * `license`, `.BTF` and `.BTF.ext` (func_info for every function).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use object::write::{Object, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    elf, Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags,
    SymbolKind, SymbolScope,
};

use crate::asm::{FuncId, FuncKind};
use crate::btf::{self, map_struct_fields};
use crate::error::Error;
use crate::insn::{encode_all, INSN_SIZE};
use crate::module::{Module, ProgId};

fn elf_err(e: object::write::Error) -> Error {
    Error::Elf(e.to_string())
}

fn sym(
    obj: &mut Object<'_>,
    name: &str,
    section: SectionId,
    value: u64,
    size: u64,
    kind: SymbolKind,
    global: bool,
) -> SymbolId {
    let ty = match kind {
        SymbolKind::Text => elf::STT_FUNC,
        _ => elf::STT_OBJECT,
    };
    let bind = if global {
        elf::STB_GLOBAL
    } else {
        elf::STB_LOCAL
    };
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size,
        kind,
        scope: if global {
            SymbolScope::Dynamic
        } else {
            SymbolScope::Compilation
        },
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::Elf {
            st_info: (bind << 4) | ty,
            st_other: elf::STV_DEFAULT,
        },
    })
}

/// The module as an ELF relocatable object.
pub fn to_elf(m: &Module) -> Result<Vec<u8>, Error> {
    m.validate()?;
    // Every function some program reaches, and its program sections.
    let mut reachable: BTreeSet<FuncId> = BTreeSet::new();
    for i in 0..m.programs().len() {
        let img = m.link(ProgId(i as u32))?;
        reachable.extend(
            img.funcs
                .iter()
                .filter(|f| f.kind == FuncKind::Static)
                .map(|f| f.id),
        );
    }

    // .maps layout for ordinary maps; data maps get their own sections.
    let mut map_offsets = vec![None; m.maps().len()];
    let mut maps_size = 0u32;
    for (i, d) in m.maps().iter().enumerate() {
        if d.data.is_none() {
            map_offsets[i] = Some(maps_size);
            maps_size += (map_struct_fields(d).len() * 8) as u32;
        }
    }
    let mut mb = btf::module_btf(m, Some(&map_offsets));

    let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);

    // Code: group programs by section name, subprograms into .text.
    struct Placed {
        section: SectionId,
        offset: u64,
        insns: Vec<crate::insn::Insn>,
        resolved: crate::asm::Resolved,
    }
    let mut sections: BTreeMap<String, SectionId> = BTreeMap::new();
    let mut section_code: HashMap<SectionId, Vec<u8>> = HashMap::new();
    let mut placed: BTreeMap<FuncId, Placed> = BTreeMap::new();
    let mut order: Vec<(FuncId, String, bool)> = vec![];
    for p in m.programs() {
        order.push((p.entry, p.kind.section_name(), true));
    }
    for f in &reachable {
        order.push((*f, ".text".to_string(), false));
    }
    for (f, secname, _) in &order {
        if placed.contains_key(f) {
            return Err(Error::Invalid(format!(
                "function {} is the entry of two programs",
                m.asm.info(*f).name
            )));
        }
        let sid = *sections.entry(secname.clone()).or_insert_with(|| {
            obj.add_section(vec![], secname.as_bytes().to_vec(), SectionKind::Text)
        });
        let r = m.asm.resolve(*f)?;
        let code = section_code.entry(sid).or_default();
        let offset = code.len() as u64;
        code.extend(std::iter::repeat_n(0u8, r.insns.len() * INSN_SIZE));
        placed.insert(
            *f,
            Placed {
                section: sid,
                offset,
                insns: r.insns.clone(),
                resolved: r,
            },
        );
    }
    let text = sections.get(".text").copied();

    // Patch immediates as the relocations expect them.
    let offsets: HashMap<FuncId, u64> = placed.iter().map(|(f, p)| (*f, p.offset)).collect();
    for p in placed.values_mut() {
        for &(at, _) in &p.resolved.calls {
            p.insns[at].imm = -1;
        }
        for &(at, c) in &p.resolved.func_addrs {
            p.insns[at].imm = offsets[&c] as i32;
            p.insns[at].src = crate::insn::op::PSEUDO_FUNC;
        }
        for &(at, _, value) in &p.resolved.maps {
            p.insns[at].src = 0;
            if value {
                p.insns[at].imm = p.insns[at + 1].imm;
                p.insns[at + 1].imm = 0;
            } else {
                p.insns[at].imm = 0;
            }
        }
    }
    for p in placed.values() {
        let code = section_code.get_mut(&p.section).unwrap();
        let bytes = encode_all(&p.insns);
        code[p.offset as usize..p.offset as usize + bytes.len()].copy_from_slice(&bytes);
    }
    for (sid, code) in &section_code {
        obj.set_section_data(*sid, code.clone(), 8);
    }

    // Function symbols.
    let mut func_syms: HashMap<FuncId, SymbolId> = HashMap::new();
    for (f, _, global) in &order {
        let p = &placed[f];
        let name = if *global {
            m.programs()
                .iter()
                .find(|pr| pr.entry == *f)
                .map(|pr| pr.name.clone())
                .unwrap()
        } else {
            m.asm.info(*f).name
        };
        let s = sym(
            &mut obj,
            &name,
            p.section,
            p.offset,
            (p.insns.len() * INSN_SIZE) as u64,
            SymbolKind::Text,
            *global,
        );
        func_syms.insert(*f, s);
    }

    // Maps.
    let mut map_syms: Vec<Option<(SymbolId, bool)>> = vec![None; m.maps().len()];
    if maps_size > 0 {
        let sid = obj.add_section(vec![], b".maps".to_vec(), SectionKind::Data);
        obj.set_section_data(sid, vec![0u8; maps_size as usize], 8);
        for (i, d) in m.maps().iter().enumerate() {
            if let Some(off) = map_offsets[i] {
                let size = (map_struct_fields(d).len() * 8) as u64;
                let s = sym(
                    &mut obj,
                    &d.name,
                    sid,
                    off as u64,
                    size,
                    SymbolKind::Data,
                    true,
                );
                map_syms[i] = Some((s, false));
            }
        }
    }
    for (i, d) in m.maps().iter().enumerate() {
        if let Some(data) = &d.data {
            let (name, kind) = if d.frozen {
                (format!(".rodata.{}", d.name), SectionKind::ReadOnlyData)
            } else {
                (format!(".data.{}", d.name), SectionKind::Data)
            };
            let sid = obj.add_section(vec![], name.into_bytes(), kind);
            let mut bytes = data.clone();
            bytes.resize(d.value_size as usize, 0);
            let len = bytes.len() as u64;
            obj.set_section_data(sid, bytes, 8);
            sym(&mut obj, &d.name, sid, 0, len, SymbolKind::Data, false);
            map_syms[i] = Some((obj.section_symbol(sid), true));
        }
    }

    // Relocations.
    let r64 = RelocationFlags::Elf {
        r_type: elf::R_BPF_64_64,
    };
    let r32 = RelocationFlags::Elf {
        r_type: elf::R_BPF_64_32,
    };
    let text_sym = text.map(|t| obj.section_symbol(t));
    for p in placed.values() {
        let at_off = |at: usize| p.offset + (at * INSN_SIZE) as u64;
        for &(at, c) in &p.resolved.calls {
            obj.add_relocation(
                p.section,
                Relocation {
                    offset: at_off(at),
                    symbol: func_syms[&c],
                    addend: 0,
                    flags: r32,
                },
            )
            .map_err(elf_err)?;
        }
        for &(at, _) in &p.resolved.func_addrs {
            obj.add_relocation(
                p.section,
                Relocation {
                    offset: at_off(at),
                    symbol: text_sym.expect("callee in .text"),
                    addend: 0,
                    flags: r64,
                },
            )
            .map_err(elf_err)?;
        }
        for &(at, map, value) in &p.resolved.maps {
            let (s, is_data) = map_syms[map.0 as usize].expect("map symbol");
            if value && !is_data {
                return Err(Error::Elf(format!(
                    "map value load of {} needs it to be global data to be expressed in ELF",
                    m.map(map).name
                )));
            }
            obj.add_relocation(
                p.section,
                Relocation {
                    offset: at_off(at),
                    symbol: s,
                    addend: 0,
                    flags: r64,
                },
            )
            .map_err(elf_err)?;
        }
    }

    // license
    let lic = obj.add_section(vec![], b"license".to_vec(), SectionKind::Data);
    let mut l = m.license.clone().into_bytes();
    l.push(0);
    obj.set_section_data(lic, l, 1);

    // BTF.ext func_info per code section (records sorted by offset).
    let mut ext: Vec<(u32, Vec<(u32, u32)>)> = vec![];
    let mut lines: Vec<(u32, Vec<btf::LineRec>)> = vec![];
    for (name, sid) in &sections {
        let mut recs: Vec<(u32, u32)> = placed
            .iter()
            .filter(|(_, p)| p.section == *sid)
            .map(|(f, p)| (p.offset as u32, mb.funcs[f]))
            .collect();
        recs.sort();
        let name_off = mb.builder.str(name);
        ext.push((name_off, recs));
        if !m.sources().is_empty() {
            let mut recs: Vec<btf::LineRec> = vec![];
            let mut in_sec: Vec<(&FuncId, &Placed)> =
                placed.iter().filter(|(_, p)| p.section == *sid).collect();
            in_sec.sort_by_key(|(_, p)| p.offset);
            for (_, p) in in_sec {
                let base = p.offset as usize;
                let r = btf::line_records(
                    &mut mb.builder,
                    m,
                    &[(0, p.insns.len())],
                    &p.insns,
                    &p.resolved.tags,
                );
                recs.extend(
                    r.into_iter()
                        .map(|(at, f, t, lc)| (base + at * INSN_SIZE, f, t, lc)),
                );
            }
            lines.push((name_off, recs));
        }
    }
    let btf_bytes = mb.builder.finish();
    let btf_sec = obj.add_section(vec![], b".BTF".to_vec(), SectionKind::Metadata);
    obj.set_section_data(btf_sec, btf_bytes, 4);
    let ext_sec = obj.add_section(vec![], b".BTF.ext".to_vec(), SectionKind::Metadata);
    obj.set_section_data(ext_sec, btf::btf_ext(&ext, &lines), 4);

    obj.write().map_err(elf_err)
}
