//! Minimal hand-written BTF: enough types for `func_info` of every function
//! (the kernel needs it for `bpf_loop` callbacks, which must be static
//! functions) and, in ELF objects, for BTF-defined maps in `.maps`.
//! Also the `.BTF.ext` encoding of `func_info` for ELF objects.

use std::collections::HashMap;

use crate::asm::{FuncId, FuncKind};
use crate::maps::MapDef;
use crate::module::Module;

use crate::btf_kind::{
    ARRAY as KIND_ARRAY, DATASEC as KIND_DATASEC, FUNC as KIND_FUNC, FUNC_PROTO as KIND_FUNC_PROTO,
    INT as KIND_INT, PTR as KIND_PTR, STRUCT as KIND_STRUCT, VAR as KIND_VAR,
};

pub(crate) const LINKAGE_STATIC: u32 = 0;
pub(crate) const LINKAGE_GLOBAL: u32 = 1;

/// A BTF type/string table under construction.
#[derive(Default)]
pub(crate) struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    str_map: HashMap<String, u32>,
    next_id: u32,
}

impl BtfBuilder {
    pub fn new() -> BtfBuilder {
        BtfBuilder {
            types: vec![],
            strings: vec![0],
            str_map: HashMap::new(),
            next_id: 1,
        }
    }

    pub fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(&o) = self.str_map.get(s) {
            return o;
        }
        let o = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.str_map.insert(s.to_string(), o);
        o
    }

    fn u32(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_le_bytes());
    }

    fn head(&mut self, name: &str, kind: u32, vlen: u32, size_or_type: u32) -> u32 {
        let n = self.str(name);
        self.u32(n);
        self.u32((kind << 24) | (vlen & 0xffff));
        self.u32(size_or_type);
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let id = self.head(name, KIND_INT, 0, size);
        self.u32(((signed as u32) << 24) | (size * 8));
        id
    }
    pub fn ptr(&mut self, ty: u32) -> u32 {
        self.head("", KIND_PTR, 0, ty)
    }
    pub fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        let id = self.head("", KIND_ARRAY, 0, 0);
        self.u32(elem);
        self.u32(index);
        self.u32(n);
        id
    }
    /// Members are (name, type, bit offset).
    pub fn struct_(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let id = self.head(name, KIND_STRUCT, members.len() as u32, size);
        for &(n, t, off) in members {
            let n = self.str(n);
            self.u32(n);
            self.u32(t);
            self.u32(off);
        }
        id
    }
    pub fn func_proto(&mut self, ret: u32, params: &[(&str, u32)]) -> u32 {
        let id = self.head("", KIND_FUNC_PROTO, params.len() as u32, ret);
        for &(n, t) in params {
            let n = self.str(n);
            self.u32(n);
            self.u32(t);
        }
        id
    }
    pub fn func(&mut self, name: &str, proto: u32, linkage: u32) -> u32 {
        self.head(name, KIND_FUNC, linkage, proto)
    }
    pub fn var(&mut self, name: &str, ty: u32, linkage: u32) -> u32 {
        let id = self.head(name, KIND_VAR, 0, ty);
        self.u32(linkage);
        id
    }
    /// Entries are (var type, offset, size).
    pub fn datasec(&mut self, name: &str, size: u32, vars: &[(u32, u32, u32)]) -> u32 {
        let id = self.head(name, KIND_DATASEC, vars.len() as u32, size);
        for &(t, o, s) in vars {
            self.u32(t);
            self.u32(o);
            self.u32(s);
        }
        id
    }

    /// The `.BTF` blob: header, types, strings.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.types.len() + self.strings.len());
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        out.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
        out.extend_from_slice(&0u32.to_le_bytes()); // type_off
        out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.types.len() as u32).to_le_bytes()); // str_off
        out.extend_from_slice(&(self.strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// The BTF of a module: type ids of its functions and (optionally) its maps.
pub(crate) struct ModuleBtf {
    pub builder: BtfBuilder,
    pub funcs: HashMap<FuncId, u32>,
}

/// The size of a BTF-defined map struct for `def` in `.maps`.
pub(crate) fn map_struct_fields(def: &MapDef) -> Vec<(&'static str, u32)> {
    let mut v = vec![("type", def.kind.type_id())];
    if def.key_size != 0 {
        v.push(("key_size", def.key_size));
    }
    if def.value_size != 0 {
        v.push(("value_size", def.value_size));
    }
    v.push(("max_entries", def.max_entries));
    if def.flags != 0 {
        v.push(("map_flags", def.flags));
    }
    v
}

/// Build the BTF for `m`. With `maps`, BTF-defined map types and a `.maps`
/// DATASEC are included (for ELF objects; `map_offsets[i]` is map i's offset
/// in `.maps`, `None` for maps not in `.maps`).
pub(crate) fn module_btf(m: &Module, map_offsets: Option<&[Option<u32>]>) -> ModuleBtf {
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, true);
    let long = b.int("long", 8, true);
    let mut protos: HashMap<(FuncKind, u8), u32> = HashMap::new();
    let mut funcs = HashMap::new();
    const ARGS: [&str; 5] = ["a1", "a2", "a3", "a4", "a5"];
    for (id, info) in m.asm.funcs() {
        let key = (info.kind, info.nargs.min(5));
        let proto = *protos.entry(key).or_insert_with(|| match info.kind {
            FuncKind::Entry => b.func_proto(int, &[("ctx", long)]),
            FuncKind::Static => {
                let params: Vec<(&str, u32)> =
                    ARGS[..key.1 as usize].iter().map(|n| (*n, long)).collect();
                b.func_proto(long, &params)
            }
        });
        let linkage = match info.kind {
            FuncKind::Entry => LINKAGE_GLOBAL,
            FuncKind::Static => LINKAGE_STATIC,
        };
        let f = b.func(&info.name, proto, linkage);
        funcs.insert(id, f);
    }
    if let Some(offsets) = map_offsets {
        let index = b.int("__ARRAY_SIZE_TYPE__", 4, false);
        let mut secinfo = vec![];
        let mut end = 0;
        for (def, off) in m.maps().iter().zip(offsets) {
            let Some(off) = *off else { continue };
            let fields = map_struct_fields(def);
            let mut members = vec![];
            for (k, (name, val)) in fields.iter().enumerate() {
                let arr = b.array(int, index, *val);
                let p = b.ptr(arr);
                members.push((*name, p, (k * 64) as u32));
            }
            let size = (fields.len() * 8) as u32;
            let st = b.struct_("", size, &members);
            let var = b.var(&def.name, st, LINKAGE_GLOBAL);
            secinfo.push((var, off, size));
            end = end.max(off + size);
        }
        if !secinfo.is_empty() {
            b.datasec(".maps", end, &secinfo);
        }
    }
    ModuleBtf { builder: b, funcs }
}

/// One `bpf_line_info` record: (insn index, file name offset, line text
/// offset, line << 10 | col).
pub(crate) type LineRec = (usize, u32, u32, u32);

/// Line info for one laid-out program (or one ELF section): a record at each
/// function start and wherever the tag changes, never on the second slot of
/// a LD_IMM64. `funcs` are (start, len).
pub(crate) fn line_records(
    b: &mut BtfBuilder,
    m: &Module,
    funcs: &[(usize, usize)],
    insns: &[crate::insn::Insn],
    tags: &[u32],
) -> Vec<LineRec> {
    let mut out: Vec<LineRec> = vec![];
    let mut rec = |b: &mut BtfBuilder, at: usize, tag: u32| {
        let (file, text, line, col) = match m.sources().get(&tag) {
            Some(s) => (b.str(&s.file), b.str(&s.text), s.line, s.col),
            None => (0, 0, tag, 0),
        };
        out.push((at, file, text, (line << 10) | (col & 0x3ff)));
    };
    let mut funcs = funcs.to_vec();
    funcs.sort();
    for (start, len) in funcs {
        rec(b, start, tags[start]);
        let mut last = tags[start];
        let mut i = start + 1;
        while i < start + len {
            if insns[i - 1].is_ld_imm64() {
                i += 1;
                continue;
            }
            if tags[i] != last {
                rec(b, i, tags[i]);
                last = tags[i];
            }
            i += 1;
        }
    }
    out
}

/// `.BTF.ext` with func_info and line_info. `sections` are (section name offset in
/// the BTF strings, records of (byte offset in section, FUNC type id)).
/// `lines` are (section name offset, records with byte offsets).
pub(crate) fn btf_ext(
    sections: &[(u32, Vec<(u32, u32)>)],
    lines: &[(u32, Vec<LineRec>)],
) -> Vec<u8> {
    let mut fi = vec![];
    fi.extend_from_slice(&8u32.to_le_bytes()); // rec_size
    for (name, recs) in sections {
        fi.extend_from_slice(&name.to_le_bytes());
        fi.extend_from_slice(&(recs.len() as u32).to_le_bytes());
        for (off, ty) in recs {
            fi.extend_from_slice(&off.to_le_bytes());
            fi.extend_from_slice(&ty.to_le_bytes());
        }
    }
    let mut li = vec![];
    if lines.iter().any(|(_, r)| !r.is_empty()) {
        li.extend_from_slice(&16u32.to_le_bytes()); // rec_size
        for (name, recs) in lines.iter().filter(|(_, r)| !r.is_empty()) {
            li.extend_from_slice(&name.to_le_bytes());
            li.extend_from_slice(&(recs.len() as u32).to_le_bytes());
            for &(off, file, text, lc) in recs {
                for v in [off as u32, file, text, lc] {
                    li.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    let mut out = vec![];
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.push(1);
    out.push(0);
    out.extend_from_slice(&32u32.to_le_bytes()); // hdr_len
    out.extend_from_slice(&0u32.to_le_bytes()); // func_info_off
    out.extend_from_slice(&(fi.len() as u32).to_le_bytes());
    out.extend_from_slice(&(fi.len() as u32).to_le_bytes()); // line_info_off
    out.extend_from_slice(&(li.len() as u32).to_le_bytes());
    out.extend_from_slice(&((fi.len() + li.len()) as u32).to_le_bytes()); // core_relo_off
    out.extend_from_slice(&0u32.to_le_bytes()); // core_relo_len
    out.extend_from_slice(&fi);
    out.extend_from_slice(&li);
    out
}
