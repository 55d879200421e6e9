//! Member chain resolution: `@cast(p, "T")->a->b[3]->c` and
//! `@var("x")->a[i]` become a list of explicit memory operations.
//!
//! # The model the code generator consumes
//!
//! The generated code keeps one *current address*. It starts as the base
//! (the `p` of `@cast(p, "T")`, or the runtime address of the `@var`
//! variable), then [`Resolved::accesses`] are applied in order:
//!
//! * [`Access::Add`]`(n)`: `addr += n` (member offsets, constant indices);
//! * [`Access::AddScaled`]`{ slot, elem_size }`: `addr += index[slot] * elem_size`
//!   for the `slot`-th computed index expression of the chain;
//! * [`Access::Deref`]`{ size }`: `addr = *(u{size*8} *)addr`, a pointer
//!   read (zero-extended). Emitted where stap follows a pointer implicitly:
//!   `->m` or `[i]` applied to a pointer-typed value.
//!
//! Then [`Resolved::fetch`] says what the expression's value is:
//!
//! * [`Fetch::Load`]`{ size, signed, bitfield }`: read `size` bytes at the
//!   address (target byte order); for a bitfield take `width` bits from bit
//!   `shift` (counted from the least significant bit of the loaded unit);
//!   sign-extend from the value's width when `signed`.
//! * [`Fetch::Address`]: the value is the address itself (`&...`, arrays,
//!   structs and unions, which stap treats as their address).
//!
//! [`Resolved::value`] describes the final object: kind, size, signedness,
//! its C spelling, and a [`TypeHandle`] to continue from.
//!
//! `@cast(p, "T")` treats `p` as `(T *)p`: a first `[i]` step indexes that
//! implicit pointer (`&@cast(0, "T")[1]` is `sizeof(T)`). `@var` has no
//! implicit pointer: `[i]` indexes an array variable or follows a pointer one.

use super::dwarf::{DieId, MemberDesc, TypeDesc, TypeTag};
use super::error::{DebugError, Result};
use super::graph::TypeGraph;

/// One step after the base expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `->name` (stap makes no difference between `->` and `.`).
    Member(String),
    /// `[index]`.
    Index(Index),
}

/// An array index in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// A constant index: folded into an [`Access::Add`].
    Const(i64),
    /// A computed index, numbered by the caller: becomes
    /// [`Access::AddScaled`] with the same `slot`.
    Dynamic(usize),
}

/// One explicit operation on the current address. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `addr += n`.
    Add(i64),
    /// `addr += index[slot] * elem_size`.
    AddScaled { slot: usize, elem_size: u64 },
    /// `addr = read_pointer(addr)`, a `size`-byte little/big-endian read.
    Deref { size: u8 },
}

/// A bitfield inside the loaded unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bitfield {
    /// Bits from the least significant bit of the loaded value.
    pub shift: u8,
    /// Width in bits (1..=64).
    pub width: u8,
}

/// What the expression's value is, once the address is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Read `size` (1, 2, 4 or 8) bytes, extract `bitfield`, sign-extend if `signed`.
    Load {
        size: u8,
        signed: bool,
        bitfield: Option<Bitfield>,
    },
    /// The value is the address itself.
    Address,
}

/// The kind of the final object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Integer,
    Bool,
    Char,
    Enum,
    Float,
    Pointer,
    Struct,
    Union,
    Array,
    Function,
    Void,
}

/// A type to continue resolution from (opaque; cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeHandle(pub(crate) Ty);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ty {
    Void,
    Die(DieId),
    /// A pointer made up by a type name such as `"char *"`.
    Ptr(Box<Ty>, u8),
    /// What indexing a multi-dimensional array leaves: `int[4]` of `int[3][4]`.
    Array {
        elem: DieId,
        dims: Vec<Option<u64>>,
    },
}

/// The final object of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueType {
    pub kind: ValueKind,
    /// `sizeof` of the object (for a bitfield: of its declared type; 0 for a
    /// flexible array or void).
    pub size: u64,
    /// Signed integer, enum with a signed underlying type, signed char ...
    pub signed: bool,
    /// C spelling, e.g. `struct GCproto *`, `uint64_t`, `char[3]`.
    pub name: String,
    pub handle: TypeHandle,
}

/// A resolved chain. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub accesses: Vec<Access>,
    pub fetch: Fetch,
    pub value: ValueType,
}

impl Resolved {
    /// The constant offset, if the chain is only additions (no pointer
    /// read, no computed index): `&@cast(0, "T")->a->b` is `offsetof`.
    pub fn constant_offset(&self) -> Option<i64> {
        let mut off = 0i64;
        for a in &self.accesses {
            match a {
                Access::Add(n) => off = off.checked_add(*n)?,
                _ => return None,
            }
        }
        Some(off)
    }
}

/// Parses a textual chain (`->a->b[3].c[i]`) into steps: decimal, hex and
/// negative constants become [`Index::Const`], anything else between
/// brackets an [`Index::Dynamic`] numbered from 0 in order.
pub fn parse_chain(text: &str) -> std::result::Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rest = text.trim_start();
    let mut slot = 0usize;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("->").or_else(|| rest.strip_prefix('.')) {
            let r = r.trim_start();
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if end == 0 {
                return Err(format!("member name expected at '{r}'"));
            }
            steps.push(Step::Member(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else {
                return Err(format!("unclosed '[' at '{rest}'"));
            };
            let inner = r[..close].trim();
            steps.push(Step::Index(match parse_int(inner) {
                Some(n) => Index::Const(n),
                None => {
                    slot += 1;
                    Index::Dynamic(slot - 1)
                }
            }));
            rest = &r[close + 1..];
        } else {
            return Err(format!("'->', '.' or '[' expected at '{rest}'"));
        }
        rest = rest.trim_start();
    }
    Ok(steps)
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r.trim_start()),
        None => (false, s),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else {
        s.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// A type after typedefs and qualifiers, declarations completed.
pub(super) enum Concrete {
    Void,
    Scalar {
        kind: ValueKind,
        size: u64,
        signed: bool,
    },
    Pointer {
        size: u8,
        target: Ty,
    },
    Aggregate {
        id: DieId,
        tag: TypeTag,
    },
    Array {
        elem: DieId,
        dims: Vec<Option<u64>>,
    },
    Function,
    Other(String),
}

/// Resolves C type names and member chains against one type graph: a
/// module's DWARF or the kernel's BTF.
pub struct Resolver<'a> {
    pub(super) dwarf: &'a dyn TypeGraph,
    pointer_size: u8,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(dwarf: &'a dyn TypeGraph, pointer_size: u8) -> Self {
        Resolver {
            dwarf,
            pointer_size,
        }
    }

    /// A type by its C name: `struct X`, `union X`, `enum X`, a typedef or
    /// tag name (`GCproto`), a base type in any spelling (`unsigned long`),
    /// `void`, with optional `const`/`volatile` and trailing `*`s.
    pub fn find_type(&self, name: &str) -> Result<TypeHandle> {
        let mut base = name.trim();
        let mut stars = 0;
        while let Some(b) = base.strip_suffix('*') {
            stars += 1;
            base = b.trim_end();
        }
        let mut words: Vec<&str> = base
            .split_whitespace()
            .filter(|w| !matches!(*w, "const" | "volatile" | "restrict"))
            .collect();
        let tags: &[TypeTag] = match words.first().copied() {
            Some("struct") => &[TypeTag::Struct, TypeTag::Class],
            Some("union") => &[TypeTag::Union],
            Some("enum") => &[TypeTag::Enum],
            Some("class") => &[TypeTag::Class, TypeTag::Struct],
            _ => &[],
        };
        if !tags.is_empty() {
            words.remove(0);
        }
        let bare = words.join(" ");
        let mut ty = if bare == "void" && tags.is_empty() {
            Ty::Void
        } else {
            match self.dwarf.lookup_type(&bare, tags) {
                Some(id) => Ty::Die(id),
                None => return Err(self.type_not_found(name.trim(), &bare)),
            }
        };
        for _ in 0..stars {
            ty = Ty::Ptr(Box::new(ty), self.pointer_size);
        }
        Ok(TypeHandle(ty))
    }

    fn type_not_found(&self, full: &str, bare: &str) -> DebugError {
        let mut nearest = nearest(bare, self.dwarf.type_names(), 3);
        if self.dwarf.has_declaration(bare) {
            nearest.insert(0, format!("(only a declaration of {bare} exists)"));
        }
        DebugError::TypeNotFound {
            name: full.to_string(),
            file: self.dwarf.origin().to_path_buf(),
            nearest,
        }
    }

    /// `sizeof(T)`.
    pub fn size_of(&self, ty: &TypeHandle) -> Result<u64> {
        self.size_of_ty(&ty.0)
    }

    fn size_of_ty(&self, ty: &Ty) -> Result<u64> {
        match ty {
            Ty::Void => Err(DebugError::BadAccess {
                ty: "void".into(),
                what: "void has no size".into(),
            }),
            Ty::Die(id) => self.dwarf.size_of(*id),
            Ty::Ptr(_, size) => Ok(u64::from(*size)),
            Ty::Array { elem, dims } => {
                let mut n = self.dwarf.size_of(*elem)?;
                for d in dims {
                    n = n.saturating_mul(d.unwrap_or(0));
                }
                Ok(n)
            }
        }
    }

    /// The C spelling of a type.
    pub fn type_name(&self, ty: &TypeHandle) -> String {
        self.name_of(&ty.0)
    }

    fn name_of(&self, ty: &Ty) -> String {
        match ty {
            Ty::Void => "void".into(),
            Ty::Die(id) => self.dwarf.type_name(*id),
            Ty::Ptr(t, _) => {
                let t = self.name_of(t);
                if t.ends_with('*') {
                    format!("{t}*")
                } else {
                    format!("{t} *")
                }
            }
            Ty::Array { elem, dims } => {
                let mut s = self.dwarf.type_name(*elem);
                for d in dims {
                    match d {
                        Some(n) => s.push_str(&format!("[{n}]")),
                        None => s.push_str("[]"),
                    }
                }
                s
            }
        }
    }

    pub(super) fn concrete(&self, ty: &Ty) -> Result<Concrete> {
        let mut id = match ty {
            Ty::Void => return Ok(Concrete::Void),
            Ty::Ptr(t, size) => {
                return Ok(Concrete::Pointer {
                    size: *size,
                    target: (**t).clone(),
                })
            }
            Ty::Array { elem, dims } => {
                return Ok(Concrete::Array {
                    elem: *elem,
                    dims: dims.clone(),
                })
            }
            Ty::Die(id) => *id,
        };
        for _ in 0..64 {
            match self.dwarf.type_desc(id)? {
                TypeDesc::Void => return Ok(Concrete::Void),
                TypeDesc::Typedef { target, .. } | TypeDesc::Qualified { target, .. } => {
                    match target {
                        Some(t) => id = t,
                        None => return Ok(Concrete::Void),
                    }
                }
                TypeDesc::Base { size, encoding, .. } => {
                    use gimli::constants as dw;
                    let (kind, signed) = match encoding {
                        dw::DW_ATE_boolean => (ValueKind::Bool, false),
                        dw::DW_ATE_signed_char => (ValueKind::Char, true),
                        dw::DW_ATE_unsigned_char | dw::DW_ATE_UTF => (ValueKind::Char, false),
                        // Raw bits: stap has no floating point.
                        dw::DW_ATE_float | dw::DW_ATE_complex_float | dw::DW_ATE_decimal_float => {
                            (ValueKind::Float, false)
                        }
                        dw::DW_ATE_signed | dw::DW_ATE_signed_fixed => (ValueKind::Integer, true),
                        _ => (ValueKind::Integer, false),
                    };
                    return Ok(Concrete::Scalar { kind, size, signed });
                }
                TypeDesc::Enum {
                    size, signed, decl, ..
                } => {
                    if decl {
                        let c = self.dwarf.complete(id)?;
                        if c != id {
                            id = c;
                            continue;
                        }
                    }
                    return Ok(Concrete::Scalar {
                        kind: ValueKind::Enum,
                        size,
                        signed,
                    });
                }
                TypeDesc::Pointer { size, target } => {
                    return Ok(Concrete::Pointer {
                        size: u8::try_from(size).unwrap_or(self.pointer_size),
                        target: target.map_or(Ty::Void, Ty::Die),
                    })
                }
                TypeDesc::Aggregate { tag, decl, .. } => {
                    let c = if decl { self.dwarf.complete(id)? } else { id };
                    return Ok(Concrete::Aggregate { id: c, tag });
                }
                TypeDesc::Array { elem, dims } => return Ok(Concrete::Array { elem, dims }),
                TypeDesc::Function => return Ok(Concrete::Function),
                TypeDesc::Other { tag } => return Ok(Concrete::Other(tag)),
            }
        }
        Err(DebugError::BadAccess {
            ty: self.name_of(ty),
            what: "typedef chain too long (cycle?)".into(),
        })
    }

    /// Finds `name` in the aggregate `agg`, looking inside anonymous struct
    /// and union members. Returns the byte offset of the member's containing
    /// anonymous chain plus the member.
    fn find_member(&self, agg: DieId, name: &str, depth: u32) -> Result<Option<(u64, MemberDesc)>> {
        if depth > 32 {
            return Ok(None);
        }
        let members = self.dwarf.members(agg)?;
        if let Some(m) = members.iter().find(|m| m.name.as_deref() == Some(name)) {
            return Ok(Some((0, m.clone())));
        }
        for m in members.iter().filter(|m| m.name.is_none()) {
            if let Concrete::Aggregate { id, .. } = self.concrete(&Ty::Die(m.ty))? {
                if let Some((off, found)) = self.find_member(id, name, depth + 1)? {
                    return Ok(Some((off.saturating_add(m.offset), found)));
                }
            }
        }
        Ok(None)
    }

    /// Names of members reachable with one `->` (anonymous members expanded).
    fn member_names(&self, agg: DieId, out: &mut Vec<String>, depth: u32) -> Result<()> {
        if depth > 32 {
            return Ok(());
        }
        for m in self.dwarf.members(agg)? {
            match m.name {
                Some(n) => out.push(n),
                None => {
                    if let Concrete::Aggregate { id, .. } = self.concrete(&Ty::Die(m.ty))? {
                        self.member_names(id, out, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `[&]@cast(p, "type_name")` followed by `steps`, whatever the type
    /// source (a module's DWARF, the kernel's BTF).
    pub fn resolve_cast(
        &self,
        type_name: &str,
        steps: &[Step],
        address_of: bool,
    ) -> Result<Resolved> {
        let ty = self.find_type(type_name)?;
        self.resolve(&ty, true, steps, address_of)
    }

    /// Resolves `steps` from a base of type `base`.
    ///
    /// `implicit_pointer`: the base is `@cast(p, T)`, i.e. `(T *)p`, so a
    /// first `[i]` scales by `sizeof(T)`. `address_of`: the expression is
    /// preceded by `&`.
    pub fn resolve(
        &self,
        base: &TypeHandle,
        implicit_pointer: bool,
        steps: &[Step],
        address_of: bool,
    ) -> Result<Resolved> {
        let mut cur = base.0.clone();
        let mut acc: Vec<Access> = Vec::new();
        // (bits, load size, member name) of a bitfield reached by the last step.
        let mut bitfield: Option<(Bitfield, u8, String)> = None;
        for (i, step) in steps.iter().enumerate() {
            if let Some((_, _, name)) = &bitfield {
                return Err(DebugError::BadAccess {
                    ty: self.name_of(&cur),
                    what: format!("bitfield '{name}' cannot be followed by {}", describe(step)),
                });
            }
            match step {
                Step::Index(index) if i == 0 && implicit_pointer => {
                    let size = self.size_of_ty(&cur)?;
                    self.push_index(&mut acc, *index, size, &cur)?;
                }
                Step::Index(index) => match self.concrete(&cur)? {
                    Concrete::Array { elem, dims } => {
                        let rest: Vec<Option<u64>> = dims[1..].to_vec();
                        let next = if rest.is_empty() {
                            Ty::Die(elem)
                        } else {
                            Ty::Array { elem, dims: rest }
                        };
                        let size = self.size_of_ty(&next)?;
                        self.push_index(&mut acc, *index, size, &cur)?;
                        cur = next;
                    }
                    Concrete::Pointer { size, target } => {
                        if target == Ty::Void {
                            return Err(DebugError::BadAccess {
                                ty: self.name_of(&cur),
                                what: "cannot index a void pointer".into(),
                            });
                        }
                        acc.push(Access::Deref { size });
                        let esize = self.size_of_ty(&target)?;
                        self.push_index(&mut acc, *index, esize, &cur)?;
                        cur = target;
                    }
                    _ => {
                        return Err(DebugError::BadAccess {
                            ty: self.name_of(&cur),
                            what: format!(
                                "cannot index {}: not an array or pointer",
                                self.name_of(&cur)
                            ),
                        })
                    }
                },
                Step::Member(name) => {
                    let mut agg = self.concrete(&cur)?;
                    if let Concrete::Pointer { size, target } = agg {
                        if target == Ty::Void {
                            return Err(DebugError::BadAccess {
                                ty: self.name_of(&cur),
                                what: format!("cannot get member '{name}' through a void pointer"),
                            });
                        }
                        acc.push(Access::Deref { size });
                        agg = self.concrete(&target)?;
                        cur = target;
                    }
                    let Concrete::Aggregate { id, tag } = agg else {
                        return Err(DebugError::BadAccess {
                            ty: self.name_of(&cur),
                            what: format!(
                                "member '{name}' requested from {}, which is not a struct or union",
                                self.name_of(&cur)
                            ),
                        });
                    };
                    let Some((outer, m)) = self.find_member(id, name, 0)? else {
                        let mut names = Vec::new();
                        self.member_names(id, &mut names, 0)?;
                        let agg_name = match self.dwarf.type_desc(id)? {
                            TypeDesc::Aggregate { name: Some(n), .. } => {
                                format!("{} {n}", tag.keyword())
                            }
                            _ => self.name_of(&cur),
                        };
                        return Err(DebugError::NoMember {
                            ty: agg_name,
                            member: name.clone(),
                            nearest: nearest(name, names.iter().map(String::as_str), 3),
                        });
                    };
                    match m.bits {
                        None => push_add(
                            &mut acc,
                            to_i64(outer.saturating_add(m.offset), &cur, self)?,
                        ),
                        Some((pos, width)) => {
                            if !self.dwarf.little_endian() {
                                return Err(DebugError::BadAccess {
                                    ty: self.name_of(&cur),
                                    what: format!(
                                        "bitfield '{name}' on a big-endian target is not supported"
                                    ),
                                });
                            }
                            let storage = self.dwarf.size_of(m.ty)?;
                            let (byte, load, bf) = place_bitfield(pos, width, storage).ok_or_else(|| DebugError::BadAccess {
                                ty: self.name_of(&cur),
                                what: format!("bitfield '{name}' ({width} bits at bit {pos}) does not fit in one 8-byte load"),
                            })?;
                            push_add(&mut acc, to_i64(outer.saturating_add(byte), &cur, self)?);
                            bitfield = Some((bf, load, name.clone()));
                        }
                    }
                    cur = Ty::Die(m.ty);
                }
            }
        }
        let name = self.name_of(&cur);
        let c = self.concrete(&cur)?;
        let (kind, size, signed) = match &c {
            Concrete::Void => (ValueKind::Void, 0, false),
            Concrete::Scalar { kind, size, signed } => (*kind, *size, *signed),
            Concrete::Pointer { size, .. } => (ValueKind::Pointer, u64::from(*size), false),
            Concrete::Aggregate { tag, .. } => (
                if *tag == TypeTag::Union {
                    ValueKind::Union
                } else {
                    ValueKind::Struct
                },
                self.size_of_ty(&cur).unwrap_or(0),
                false,
            ),
            Concrete::Array { .. } => (ValueKind::Array, self.size_of_ty(&cur).unwrap_or(0), false),
            Concrete::Function => (ValueKind::Function, 0, false),
            Concrete::Other(tag) => {
                return Err(DebugError::BadAccess {
                    ty: name,
                    what: format!("values of DWARF {tag} are not supported"),
                })
            }
        };
        let fetch = match (address_of, kind, bitfield) {
            (true, _, Some((_, _, bname))) => {
                return Err(DebugError::BadAccess {
                    ty: name,
                    what: format!("cannot take the address of bitfield '{bname}'"),
                })
            }
            (true, _, None) => Fetch::Address,
            (false, ValueKind::Void, _) => {
                return Err(DebugError::BadAccess {
                    ty: name,
                    what: "a void value cannot be read".into(),
                })
            }
            (
                false,
                ValueKind::Struct | ValueKind::Union | ValueKind::Array | ValueKind::Function,
                _,
            ) => Fetch::Address,
            (false, _, Some((bf, load, _))) => Fetch::Load {
                size: load,
                signed,
                bitfield: Some(bf),
            },
            (false, _, None) => {
                let load = u8::try_from(size)
                    .ok()
                    .filter(|s| matches!(s, 1 | 2 | 4 | 8))
                    .ok_or_else(|| DebugError::BadAccess {
                        ty: name.clone(),
                        what: format!("a {size}-byte value cannot be loaded into a 64-bit integer"),
                    })?;
                Fetch::Load {
                    size: load,
                    signed,
                    bitfield: None,
                }
            }
        };
        Ok(Resolved {
            accesses: acc,
            fetch,
            value: ValueType {
                kind,
                size,
                signed,
                name,
                handle: TypeHandle(cur),
            },
        })
    }

    fn push_index(
        &self,
        acc: &mut Vec<Access>,
        index: Index,
        elem_size: u64,
        cur: &Ty,
    ) -> Result<()> {
        if elem_size == 0 {
            return Err(DebugError::BadAccess {
                ty: self.name_of(cur),
                what: "cannot index: the element size is unknown or 0".into(),
            });
        }
        match index {
            Index::Const(n) => {
                let off = i64::try_from(elem_size)
                    .ok()
                    .and_then(|s| s.checked_mul(n))
                    .ok_or_else(|| DebugError::BadAccess {
                        ty: self.name_of(cur),
                        what: format!("index {n} times element size {elem_size} overflows"),
                    })?;
                push_add(acc, off);
            }
            Index::Dynamic(slot) => acc.push(Access::AddScaled { slot, elem_size }),
        }
        Ok(())
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Member(m) => format!("'->{m}'"),
        Step::Index(_) => "an index".into(),
    }
}

fn to_i64(v: u64, cur: &Ty, r: &Resolver<'_>) -> Result<i64> {
    i64::try_from(v).map_err(|_| DebugError::BadAccess {
        ty: r.name_of(cur),
        what: format!("member offset {v:#x} is out of range"),
    })
}

/// Appends `addr += n`, merging with a preceding addition; drops `+0`.
fn push_add(acc: &mut Vec<Access>, n: i64) {
    if let Some(Access::Add(prev)) = acc.last_mut() {
        if let Some(sum) = prev.checked_add(n) {
            *prev = sum;
            if *prev == 0 {
                acc.pop();
            }
            return;
        }
    }
    if n != 0 {
        acc.push(Access::Add(n));
    }
}

/// Chooses the load for a bitfield at bit `pos` (from the aggregate's start,
/// LSB-first) of `width` bits, declared with a type of `storage` bytes:
/// the naturally aligned storage unit containing it when the field fits
/// there (what compilers and pahole use), else the smallest 1/2/4/8-byte
/// load from the field's first byte. Returns (byte offset, load size, bits).
pub(crate) fn place_bitfield(pos: u64, width: u64, storage: u64) -> Option<(u64, u8, Bitfield)> {
    if width == 0 || width > 64 {
        return None;
    }
    if matches!(storage, 1 | 2 | 4 | 8) {
        let unit_bits = storage * 8;
        let start = pos / unit_bits * unit_bits;
        if pos - start + width <= unit_bits {
            return Some((
                start / 8,
                storage as u8,
                Bitfield {
                    shift: (pos - start) as u8,
                    width: width as u8,
                },
            ));
        }
    }
    let byte = pos / 8;
    let shift = pos % 8;
    let size = (shift + width).div_ceil(8).next_power_of_two();
    (size <= 8).then_some((
        byte,
        size as u8,
        Bitfield {
            shift: shift as u8,
            width: width as u8,
        },
    ))
}

/// Levenshtein distance (by chars).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The `max` candidates nearest to `target` by edit distance (ties: the
/// lexicographically smaller name first, so the answer is deterministic).
pub(crate) fn nearest<'s>(
    target: &str,
    candidates: impl Iterator<Item = &'s str>,
    max: usize,
) -> Vec<String> {
    if max == 0 {
        return Vec::new();
    }
    let tlen = target.chars().count();
    // Best `max` so far, sorted by (distance, name).
    let mut best: Vec<(usize, &str)> = Vec::with_capacity(max + 1);
    for c in candidates {
        if best.iter().any(|b| b.1 == c) {
            continue;
        }
        if best.len() == max {
            // The length difference is a lower bound of the distance.
            let worst = best[max - 1];
            let diff = tlen.abs_diff(c.chars().count());
            if diff > worst.0 || (diff == worst.0 && c > worst.1) {
                continue;
            }
        }
        let d = edit_distance(target, c);
        let pos = best.partition_point(|b| (b.0, b.1) < (d, c));
        if pos < max {
            best.insert(pos, (d, c));
            best.truncate(max);
        }
    }
    best.into_iter().map(|b| b.1.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_parse() {
        assert_eq!(
            parse_chain("->a->b[3].c[i][-1][0x10][j]").unwrap(),
            vec![
                Step::Member("a".into()),
                Step::Member("b".into()),
                Step::Index(Index::Const(3)),
                Step::Member("c".into()),
                Step::Index(Index::Dynamic(0)),
                Step::Index(Index::Const(-1)),
                Step::Index(Index::Const(16)),
                Step::Index(Index::Dynamic(1)),
            ]
        );
        assert_eq!(parse_chain("").unwrap(), vec![]);
        assert!(parse_chain("->").is_err());
        assert!(parse_chain("[3").is_err());
        assert!(parse_chain("x").is_err());
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("chunknme", "chunkname"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let n = nearest(
            "chunknme",
            ["sizebc", "chunkname", "firstline", "chunk"].into_iter(),
            2,
        );
        assert_eq!(n, ["chunkname", "chunk"]);
    }

    #[test]
    fn bitfield_placement() {
        // int x:3 at bit 1 -> 4-byte unit at 0, shift 1.
        assert_eq!(
            place_bitfield(1, 3, 4),
            Some((0, 4, Bitfield { shift: 1, width: 3 }))
        );
        // long long swide:20 at bit 104 -> 8-byte unit at 8, shift 40.
        assert_eq!(
            place_bitfield(104, 20, 8),
            Some((
                8,
                8,
                Bitfield {
                    shift: 40,
                    width: 20
                }
            ))
        );
        // Straddling its natural unit (packed): minimal load from byte 3.
        assert_eq!(
            place_bitfield(30, 4, 4),
            Some((3, 2, Bitfield { shift: 6, width: 4 }))
        );
        assert_eq!(
            place_bitfield(33, 4, 4),
            Some((4, 4, Bitfield { shift: 1, width: 4 }))
        );
        assert_eq!(
            place_bitfield(28, 12, 4),
            Some((
                3,
                2,
                Bitfield {
                    shift: 4,
                    width: 12
                }
            ))
        );
        assert_eq!(place_bitfield(7, 64, 8), None);
        assert_eq!(place_bitfield(0, 0, 4), None);
    }

    #[test]
    fn adds_merge() {
        let mut acc = vec![];
        push_add(&mut acc, 8);
        push_add(&mut acc, 4);
        acc.push(Access::Deref { size: 8 });
        push_add(&mut acc, 0);
        push_add(&mut acc, 16);
        push_add(&mut acc, -16);
        assert_eq!(acc, vec![Access::Add(12), Access::Deref { size: 8 }]);
    }
}
