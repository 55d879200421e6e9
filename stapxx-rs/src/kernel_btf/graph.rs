//! BTF as a type graph ([`TypeGraph`]): the same description of C types
//! that DWARF gives, so `@cast(p, "T", "kernel")` is resolved by the one
//! resolver user-space `@cast`s use (`debuginfo/layout.rs`), member
//! offsets, bitfields, arrays, anonymous members and nearest-name errors
//! included. A node's [`DieId`] carries the BTF type id in `offset`.

use super::{Types, KIND_STRUCT, KIND_UNION};
use crate::debuginfo::dwarf::{canonical_base, DieId, MemberDesc, TypeDesc, TypeTag};
use crate::debuginfo::graph::TypeGraph;
use crate::debuginfo::{DebugError, Resolver, Result, Step};
use ebpf_backend::btf_kind::{
    ARRAY, CONST, ENUM, ENUM64, FLOAT, FUNC, FUNC_PROTO, FWD, INT, PTR, RESTRICT, TYPEDEF,
    TYPE_TAG, VOLATILE,
};
use gimli::constants as dw;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A BTF blob's types with a name index built on first lookup.
pub struct BtfGraph<'b> {
    pub(super) types: Types<'b>,
    origin: PathBuf,
    index: OnceLock<NameIndex<'b>>,
}

#[derive(Default)]
struct NameIndex<'b> {
    /// Complete definitions by name (BTF spells no `struct ` prefix).
    types: HashMap<&'b str, Vec<(TypeTag, u32)>>,
    /// Base types under a canonical spelling (`unsigned long` finds
    /// `long unsigned int`).
    base_canon: HashMap<String, u32>,
    /// Names that only have a forward declaration.
    declared: HashSet<&'b str>,
}

/// The node for BTF type `id`.
pub(crate) fn node(id: u32) -> DieId {
    DieId {
        file: 0,
        offset: id as usize,
    }
}

impl<'b> BtfGraph<'b> {
    pub fn new(types: Types<'b>, origin: impl Into<PathBuf>) -> BtfGraph<'b> {
        BtfGraph {
            types,
            origin: origin.into(),
            index: OnceLock::new(),
        }
    }

    /// (kind, vlen, kflag, name, size/type, record position) of type `id`.
    fn rec(&self, id: u32) -> Option<(u32, usize, bool, &'b str, u32, usize)> {
        let at = *self.types.at.get((id as usize).checked_sub(1)?)?;
        let (kind, vlen, kflag, name, next) = self.types.head(at)?;
        let name = std::str::from_utf8(self.types.str_at(name)?).ok()?;
        Some((kind, vlen, kflag, name, next, at))
    }

    fn id_of(&self, n: DieId) -> Result<u32> {
        u32::try_from(n.offset).map_err(|_| self.bad(n, "not a BTF type id"))
    }

    fn bad(&self, n: DieId, what: &str) -> DebugError {
        DebugError::BadAccess {
            ty: format!("BTF type {}", n.offset),
            what: format!("{what} (in {})", self.origin.display()),
        }
    }

    /// `id` with type tags (`__user`, `__rcu` where the kernel's BTF keeps
    /// them) taken off: they say nothing about layout.
    fn untagged(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.rec(id) {
                Some((TYPE_TAG, _, _, _, next, _)) => id = next,
                _ => break,
            }
        }
        id
    }

    fn index(&self) -> &NameIndex<'b> {
        self.index.get_or_init(|| {
            let mut ix = NameIndex::default();
            for id in 1..=self.types.at.len() as u32 {
                let Some((kind, vlen, _, name, _, _)) = self.rec(id) else {
                    continue;
                };
                if name.is_empty() {
                    continue;
                }
                let tag = match kind {
                    KIND_STRUCT => TypeTag::Struct,
                    KIND_UNION => TypeTag::Union,
                    // An enum without values is a forward declaration.
                    ENUM | ENUM64 if vlen == 0 => {
                        ix.declared.insert(name);
                        continue;
                    }
                    ENUM | ENUM64 => TypeTag::Enum,
                    TYPEDEF => TypeTag::Typedef,
                    INT | FLOAT => {
                        ix.base_canon.entry(canonical_base(name)).or_insert(id);
                        TypeTag::Base
                    }
                    FWD => {
                        ix.declared.insert(name);
                        continue;
                    }
                    _ => continue,
                };
                ix.types.entry(name).or_default().push((tag, id));
            }
            ix
        })
    }
}

impl BtfGraph<'_> {
    /// The byte offset of `member` in `struct name` (anonymous members
    /// looked into), as the one chain resolver finds it.
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let r = Resolver::new(self, 8);
        let ty = r.find_type(&format!("struct {name}")).ok()?;
        let chain = r
            .resolve(&ty, true, &[Step::Member(member.to_string())], true)
            .ok()?;
        u32::try_from(chain.constant_offset()?).ok()
    }

    /// A graph of a BTF blob (not the running kernel's), for offsets.
    pub fn from_btf(btf: &[u8]) -> Option<BtfGraph<'_>> {
        Some(BtfGraph::new(Types::parse(btf)?, "<BTF blob>"))
    }
}

impl TypeGraph for BtfGraph<'_> {
    fn origin(&self) -> &Path {
        &self.origin
    }

    fn little_endian(&self) -> bool {
        // `Types::parse` takes little-endian BTF only.
        true
    }

    fn type_desc(&self, n: DieId) -> Result<TypeDesc> {
        let id = self.untagged(self.id_of(n)?);
        if id == 0 {
            return Ok(TypeDesc::Void);
        }
        let (kind, vlen, kflag, name, next, at) =
            self.rec(id).ok_or_else(|| self.bad(n, "no such type"))?;
        let named = (!name.is_empty()).then(|| name.to_string());
        let target = (next != 0).then(|| node(next));
        Ok(match kind {
            INT => {
                let mut enc = self.types.u32_at(at + 12).unwrap_or(0) >> 24;
                // pahole sets no CHAR bit, but the kernel's character types
                // keep their C names: they are characters, as in DWARF.
                if next == 1 && matches!(name, "char" | "signed char" | "unsigned char") {
                    enc |= 2;
                }
                let encoding = match (enc & 4 != 0, enc & 2 != 0, enc & 1 != 0) {
                    (true, _, _) => dw::DW_ATE_boolean,
                    (_, true, true) => dw::DW_ATE_signed_char,
                    (_, true, false) => dw::DW_ATE_unsigned_char,
                    (_, false, true) => dw::DW_ATE_signed,
                    _ => dw::DW_ATE_unsigned,
                };
                TypeDesc::Base {
                    name: name.to_string(),
                    size: u64::from(next),
                    encoding,
                }
            }
            FLOAT => TypeDesc::Base {
                name: name.to_string(),
                size: u64::from(next),
                encoding: dw::DW_ATE_float,
            },
            PTR => TypeDesc::Pointer { size: 8, target },
            ARRAY => {
                // BTF nests `int a[3][4]` as arrays of arrays; DWARF (and
                // the resolver) list the bounds outermost first.
                let mut dims = Vec::new();
                let mut elem = id;
                while let Some((ARRAY, _, _, _, _, a)) = self.rec(elem) {
                    dims.push(self.types.u32_at(a + 20).map(u64::from));
                    elem = self.untagged(self.types.u32_at(a + 12).unwrap_or(0));
                }
                TypeDesc::Array {
                    elem: node(elem),
                    dims,
                }
            }
            KIND_STRUCT | KIND_UNION => TypeDesc::Aggregate {
                tag: if kind == KIND_UNION {
                    TypeTag::Union
                } else {
                    TypeTag::Struct
                },
                name: named,
                size: Some(u64::from(next)),
                decl: false,
            },
            FWD => TypeDesc::Aggregate {
                tag: if kflag {
                    TypeTag::Union
                } else {
                    TypeTag::Struct
                },
                name: named,
                size: None,
                decl: true,
            },
            ENUM | ENUM64 => TypeDesc::Enum {
                name: named,
                size: u64::from(next),
                signed: kflag,
                decl: vlen == 0,
            },
            TYPEDEF => TypeDesc::Typedef {
                name: name.to_string(),
                target,
            },
            CONST | VOLATILE | RESTRICT => TypeDesc::Qualified {
                qual: match kind {
                    CONST => "const",
                    VOLATILE => "volatile",
                    _ => "restrict",
                },
                target,
            },
            FUNC | FUNC_PROTO => TypeDesc::Function,
            other => TypeDesc::Other {
                tag: format!("BTF kind {other}"),
            },
        })
    }

    fn members(&self, n: DieId) -> Result<Vec<MemberDesc>> {
        let id = self.untagged(self.id_of(n)?);
        let (kind, vlen, kflag, _, _, at) =
            self.rec(id).ok_or_else(|| self.bad(n, "no such type"))?;
        if kind != KIND_STRUCT && kind != KIND_UNION {
            return Err(self.bad(n, "not a struct or union"));
        }
        let mut out = Vec::with_capacity(vlen);
        for i in 0..vlen {
            let m = at + 12 + i * 12;
            let (Some(name), Some(ty), Some(off)) = (
                self.types.u32_at(m),
                self.types.u32_at(m + 4),
                self.types.u32_at(m + 8),
            ) else {
                return Err(self.bad(n, "truncated member list"));
            };
            let name = self
                .types
                .str_at(name)
                .and_then(|s| std::str::from_utf8(s).ok())
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let (bit, mut width) = if kflag {
                (u64::from(off & 0xff_ffff), u64::from(off >> 24))
            } else {
                (u64::from(off), 0)
            };
            let mut pos = bit;
            if !kflag {
                // Without kflag a bitfield is told by its integer type:
                // fewer bits than its size, or an offset of its own.
                if let Some((INT, _, _, _, size, a)) = self.rec(self.untagged(ty)) {
                    let enc = self.types.u32_at(a + 12).unwrap_or(0);
                    let (bits, shift) = (u64::from(enc & 0xff), u64::from((enc >> 16) & 0xff));
                    if shift != 0 || (bits != 0 && bits < u64::from(size) * 8) {
                        pos += shift;
                        width = bits;
                    }
                }
            }
            out.push(MemberDesc {
                name,
                ty: node(ty),
                offset: pos / 8,
                bits: (width > 0).then_some((pos, width)),
            });
        }
        Ok(out)
    }

    fn lookup_type(&self, name: &str, tags: &[TypeTag]) -> Option<DieId> {
        const ORDER: [TypeTag; 5] = [
            TypeTag::Typedef,
            TypeTag::Struct,
            TypeTag::Union,
            TypeTag::Enum,
            TypeTag::Base,
        ];
        let ix = self.index();
        let order: &[TypeTag] = if tags.is_empty() { &ORDER } else { tags };
        if let Some(entries) = ix.types.get(name) {
            for tag in order {
                if let Some((_, id)) = entries.iter().find(|e| e.0 == *tag) {
                    return Some(node(*id));
                }
            }
        }
        if order.contains(&TypeTag::Base) {
            return ix.base_canon.get(&canonical_base(name)).map(|&id| node(id));
        }
        None
    }

    fn has_declaration(&self, name: &str) -> bool {
        self.index().declared.contains(name)
    }

    fn type_names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.index().types.keys().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debuginfo::{Access, Bitfield, Fetch, Index, ValueKind};

    /// A BTF blob built type by type: each `ty` call appends one record
    /// (ids count from 1), names go to the string table.
    #[derive(Default)]
    struct Blob {
        strings: Vec<u8>,
        types: Vec<u8>,
    }

    impl Blob {
        fn name(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            if self.strings.is_empty() {
                self.strings.push(0);
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            at
        }

        fn w(&mut self, x: u32) {
            self.types.extend_from_slice(&x.to_le_bytes());
        }

        fn ty(&mut self, name: &str, kind: u32, vlen: u32, kflag: bool, size_or_type: u32) {
            let n = self.name(name);
            self.w(n);
            self.w((u32::from(kflag) << 31) | (kind << 24) | vlen);
            self.w(size_or_type);
        }

        fn int(&mut self, name: &str, size: u32, enc: u32) {
            self.ty(name, INT, 0, false, size);
            self.w((enc << 24) | (size * 8));
        }

        fn array(&mut self, elem: u32, n: u32) {
            self.ty("", ARRAY, 0, false, 0);
            self.w(elem);
            self.w(1);
            self.w(n);
        }

        /// A struct or union; members (name, type, bit offset, bitfield
        /// size) with kflag set.
        fn aggregate(
            &mut self,
            kind: u32,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32, u32)],
        ) {
            self.ty(name, kind, members.len() as u32, true, size);
            for &(m, ty, bit, bits) in members {
                let n = self.name(m);
                self.w(n);
                self.w(ty);
                self.w((bits << 24) | bit);
            }
        }

        fn bytes(mut self) -> Vec<u8> {
            if self.strings.is_empty() {
                self.strings.push(0);
            }
            let mut out = vec![0x9f, 0xeb, 1, 0];
            let hdr = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
            hdr(&mut out, 24);
            hdr(&mut out, 0);
            hdr(&mut out, self.types.len() as u32);
            hdr(&mut out, self.types.len() as u32);
            hdr(&mut out, self.strings.len() as u32);
            out.append(&mut self.types);
            out.append(&mut self.strings);
            out
        }
    }

    /// `struct node` with a bitfield pair, an anonymous union, a string, a
    /// two-dimensional array, a self pointer, a `__user`-tagged pointer and
    /// an enum; a typedef of it and a declared-only `struct opaque`.
    fn sample() -> Vec<u8> {
        let mut b = Blob::default();
        b.int("int", 4, 1); // 1
        b.int("long unsigned int", 8, 0); // 2
        b.int("char", 1, 3); // 3: signed char
        b.array(3, 16); // 4: char[16]
        b.array(6, 2); // 5: int[2][3]
        b.array(1, 3); // 6: int[3]
        b.ty("", PTR, 0, false, 8); // 7: struct node *
        b.aggregate(
            KIND_STRUCT,
            "node",
            80,
            &[
                ("id", 1, 0, 0),
                ("a", 10, 32, 3),
                ("b", 1, 35, 5),
                ("", 9, 64, 0),
                ("name", 4, 128, 0),
                ("grid", 5, 256, 0),
                ("next", 7, 448, 0),
                ("tagged", 15, 512, 0),
                ("color", 12, 576, 0),
            ],
        ); // 8
        b.aggregate(KIND_UNION, "", 8, &[("wide", 2, 0, 0), ("i", 1, 0, 0)]); // 9
        b.int("unsigned int", 4, 0); // 10
        b.ty("node_t", TYPEDEF, 0, false, 8); // 11
        b.ty("color", ENUM, 1, false, 4); // 12
        let red = b.name("RED");
        b.w(red);
        b.w(1);
        b.ty("opaque", FWD, 0, false, 0); // 13
        b.ty("user", TYPE_TAG, 0, false, 8); // 14
        b.ty("", PTR, 0, false, 14); // 15
        b.bytes()
    }

    fn chain(text: &str) -> Vec<Step> {
        crate::debuginfo::parse_chain(text).unwrap()
    }

    #[test]
    fn chains_resolve_as_for_dwarf() {
        let blob = sample();
        let g = BtfGraph::from_btf(&blob).unwrap();
        let r = Resolver::new(&g, 8);
        let node = r.find_type("node").unwrap();
        assert_eq!(r.find_type("struct node").unwrap(), node);
        assert_eq!(r.type_name(&r.find_type("node_t").unwrap()), "node_t");
        assert_eq!(
            r.size_of(&r.find_type("unsigned long").unwrap()).unwrap(),
            8
        );
        assert_eq!(r.size_of(&r.find_type("node_t *").unwrap()).unwrap(), 8);
        let get = |c: &str, amp: bool| r.resolve(&node, true, &chain(c), amp).unwrap();
        let id = get("->id", false);
        assert_eq!(
            (id.accesses.clone(), id.fetch),
            (
                vec![],
                Fetch::Load {
                    size: 4,
                    signed: true,
                    bitfield: None
                }
            )
        );
        let a = get("->a", false);
        assert_eq!(
            (a.accesses, a.fetch),
            (
                vec![Access::Add(4)],
                Fetch::Load {
                    size: 4,
                    signed: false,
                    bitfield: Some(Bitfield { shift: 0, width: 3 })
                }
            )
        );
        let b = get("->b", false);
        assert_eq!(
            b.fetch,
            Fetch::Load {
                size: 4,
                signed: true,
                bitfield: Some(Bitfield { shift: 3, width: 5 })
            }
        );
        assert_eq!(get("->i", false).accesses, vec![Access::Add(8)]);
        assert_eq!(
            get("->wide", false).fetch,
            Fetch::Load {
                size: 8,
                signed: false,
                bitfield: None
            }
        );
        let name = get("->name", false);
        assert_eq!(
            (name.fetch, name.value.name.as_str()),
            (Fetch::Address, "char[16]")
        );
        assert_eq!(get("->grid", false).value.name, "int[2][3]");
        assert_eq!(
            get("->grid[1][2]", true).accesses,
            vec![Access::Add(32 + 12 + 8)]
        );
        let next = get("->next->name[3]", false);
        assert_eq!(
            (next.accesses, next.fetch),
            (
                vec![Access::Add(56), Access::Deref { size: 8 }, Access::Add(19)],
                Fetch::Load {
                    size: 1,
                    signed: true,
                    bitfield: None
                }
            )
        );
        // A `__user` type tag does not change the layout.
        assert_eq!(
            get("->tagged->id", false).accesses,
            vec![Access::Add(64), Access::Deref { size: 8 }]
        );
        assert_eq!(get("->color", false).value.kind, ValueKind::Enum);
        // `@cast(p, "node")[2]` indexes from the cast address.
        let second = r
            .resolve(&node, true, &[Step::Index(Index::Const(2))], true)
            .unwrap();
        assert_eq!(second.accesses, vec![Access::Add(160)]);
        assert_eq!(g.member_offset("node", "i"), Some(8));
    }

    #[test]
    fn wrong_names_get_the_nearest() {
        let blob = sample();
        let g = BtfGraph::from_btf(&blob).unwrap();
        let r = Resolver::new(&g, 8);
        let node = r.find_type("node").unwrap();
        let e = r.resolve(&node, true, &chain("->nxt"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "struct node has no member 'nxt'; nearest: next, a, b"
        );
        assert!(e.is_unresolved_name());
        let e = r.find_type("nod").unwrap_err();
        assert_eq!(
            e.to_string(),
            "type 'nod' not found in <BTF blob>; nearest: node, int, node_t"
        );
        let e = r.find_type("struct opaque").unwrap_err();
        assert_eq!(
            e.to_string(),
            "type 'struct opaque' not found in <BTF blob>; nearest: (only a declaration of opaque exists), char, node, color"
        );
        let e = r.resolve(&node, true, &chain("->a->x"), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bitfield 'a' cannot be followed by '->x' (type unsigned int)"
        );
    }
}
