//! The DWARF type graph, read with `gimli`.
//!
//! [`Dwarf::load`] copies the needed `.debug_*` sections (decompressed) into
//! shared buffers, parses every unit header once, and builds a name index in a
//! single cheap pass over `.debug_info` with gimli's raw entry reader: only
//! named types and variables directly under a compile/partial unit (or a C++
//! namespace) are indexed, every other DIE is skipped attribute by attribute
//! without building anything. Types are then read on demand from their DIEs.
//!
//! DIEs are named by [`DieId`]: an offset into `.debug_info` of the main debug
//! file, or of the dwz supplementary file (`.gnu_debugaltlink`), whose DIEs are
//! reached through `DW_FORM_GNU_ref_alt` / `DW_FORM_ref_sup`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gimli::{constants as dw, AttributeValue, Reader as _};

use super::elf::ElfFile;
use super::error::{DebugError, Result};
use super::graph::TypeGraph;

mod enums;

pub(crate) type R = gimli::EndianArcSlice<gimli::RunTimeEndian>;
type Entry<'a> = gimli::DebuggingInformationEntry<'a, 'a, R>;

/// A DIE: which file (0 = main debug file, 1 = dwz supplementary file) and
/// its offset in that file's `.debug_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DieId {
    pub file: u8,
    pub offset: usize,
}

impl std::fmt::Display for DieId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file == 0 {
            write!(f, "<{:#x}>", self.offset)
        } else {
            write!(f, "<alt {:#x}>", self.offset)
        }
    }
}

/// The kind of a named type in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeTag {
    Struct,
    Union,
    Class,
    Enum,
    Typedef,
    Base,
}

impl TypeTag {
    fn from_dw(tag: gimli::DwTag) -> Option<TypeTag> {
        Some(match tag {
            dw::DW_TAG_structure_type => TypeTag::Struct,
            dw::DW_TAG_union_type => TypeTag::Union,
            dw::DW_TAG_class_type => TypeTag::Class,
            dw::DW_TAG_enumeration_type => TypeTag::Enum,
            dw::DW_TAG_typedef => TypeTag::Typedef,
            dw::DW_TAG_base_type => TypeTag::Base,
            _ => return None,
        })
    }

    /// The C keyword before the name (`struct`), empty for typedefs and base types.
    pub fn keyword(self) -> &'static str {
        match self {
            TypeTag::Struct => "struct",
            TypeTag::Union => "union",
            TypeTag::Class => "class",
            TypeTag::Enum => "enum",
            TypeTag::Typedef | TypeTag::Base => "",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct TypeEntry {
    tag: TypeTag,
    die: DieId,
    decl: bool,
}

#[derive(Debug, Clone, Copy)]
struct VarEntry {
    die: DieId,
    /// (file, unit index) for the compile unit name.
    unit: (u8, u32),
    decl: bool,
}

#[derive(Debug, Default)]
struct NameIndex {
    types: HashMap<String, Vec<TypeEntry>>,
    /// Base types under a canonical spelling ("long unsigned" for both
    /// GCC's "long unsigned int" and clang's "unsigned long").
    base_canon: HashMap<String, DieId>,
    vars: HashMap<String, Vec<VarEntry>>,
    /// Declaration DIE -> defining DIE (`DW_AT_specification`).
    var_defs: HashMap<DieId, DieId>,
}

struct UnitData {
    offset: usize,
    end: usize,
    unit: gimli::Unit<R>,
    name: Option<String>,
}

/// What a type DIE is, with its direct attributes read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeDesc {
    /// `void` (also a missing `DW_AT_type`).
    Void,
    Base {
        name: String,
        size: u64,
        encoding: gimli::DwAte,
    },
    /// Pointers and C++ references; `target` `None` is `void *`.
    Pointer {
        size: u64,
        target: Option<DieId>,
    },
    /// struct / union / class.
    Aggregate {
        tag: TypeTag,
        name: Option<String>,
        size: Option<u64>,
        decl: bool,
    },
    Enum {
        name: Option<String>,
        size: u64,
        signed: bool,
        decl: bool,
    },
    /// `dims` outermost first; `None` for an unknown bound (`char tail[]`).
    Array {
        elem: DieId,
        dims: Vec<Option<u64>>,
    },
    Typedef {
        name: String,
        target: Option<DieId>,
    },
    /// const / volatile / restrict / atomic.
    Qualified {
        qual: &'static str,
        target: Option<DieId>,
    },
    Function,
    Other {
        tag: String,
    },
}

/// A data member (`DW_TAG_member`), offsets from the start of its aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberDesc {
    pub name: Option<String>,
    pub ty: DieId,
    /// Byte offset (`DW_AT_data_member_location`; for bitfields, the byte
    /// containing the field's lowest bit).
    pub offset: u64,
    /// For bitfields: (bit position from the aggregate's start counting from
    /// the least significant bit of byte 0, width in bits).
    pub bits: Option<(u64, u64)>,
}

/// A global variable found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarDesc {
    pub die: DieId,
    pub ty: Option<DieId>,
    /// From `DW_AT_location` (`DW_OP_addr`/`DW_OP_addrx`), link-time.
    pub address: Option<u64>,
    /// Why `address` is `None` although there is a location.
    pub location_problem: Option<String>,
    pub cu_name: Option<String>,
}

/// The DWARF of one module, indexed.
pub struct Dwarf {
    path: PathBuf,
    dwarf: gimli::Dwarf<R>,
    /// Units of the main file [0] and of the supplementary file [1], sorted by offset.
    units: [Vec<UnitData>; 2],
    index: NameIndex,
    little_endian: bool,
}

impl std::fmt::Debug for Dwarf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dwarf")
            .field("path", &self.path)
            .field("units", &self.units[0].len())
            .field("alt_units", &self.units[1].len())
            .field("types", &self.index.types.len())
            .field("vars", &self.index.vars.len())
            .finish()
    }
}

/// Sections we need; the others are left empty (no copy).
fn wanted(id: gimli::SectionId) -> bool {
    use gimli::SectionId::*;
    matches!(
        id,
        DebugAbbrev | DebugAddr | DebugInfo | DebugLine | DebugLineStr | DebugStr | DebugStrOffsets
    )
}

fn load_sections(file: &ElfFile) -> Result<gimli::Dwarf<R>> {
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let empty: Arc<[u8]> = Arc::from(&[][..]);
    gimli::Dwarf::load(|id| -> Result<R> {
        let data = if wanted(id) {
            file.section_data(id.name())?
        } else {
            None
        };
        Ok(R::new(data.unwrap_or_else(|| empty.clone()), endian))
    })
}

impl Dwarf {
    /// Loads and indexes the DWARF of `file` (and of its dwz supplementary
    /// file `alt`, if any).
    pub fn load(file: &ElfFile, alt: Option<&ElfFile>) -> Result<Dwarf> {
        let mut dwarf = load_sections(file)?;
        if let Some(alt) = alt {
            let mut sup = load_sections(alt)?;
            sup.file_type = gimli::DwarfFileType::Main;
            dwarf.set_sup(sup);
        }
        let path = file.name().to_path_buf();
        let main_units = read_units(&dwarf, &path)?;
        let sup_units = match dwarf.sup() {
            Some(sup) => read_units(sup, alt.map_or(&path, |a| a.path()))?,
            None => Vec::new(),
        };
        let mut d = Dwarf {
            path,
            dwarf,
            units: [main_units, sup_units],
            index: NameIndex::default(),
            little_endian: file.is_little_endian(),
        };
        let mut index = NameIndex::default();
        for file in 0..2u8 {
            for ui in 0..d.units[file as usize].len() {
                d.index_unit(file, ui, &mut index).map_err(|e| {
                    d.err(
                        format!("indexing unit at {:#x}", d.units[file as usize][ui].offset),
                        e,
                    )
                })?;
            }
        }
        d.index = index;
        Ok(d)
    }

    /// The file the DWARF was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of compile/partial units (main file, supplementary file).
    pub fn unit_count(&self) -> (usize, usize) {
        (self.units[0].len(), self.units[1].len())
    }

    fn err(&self, context: impl Into<String>, e: impl std::fmt::Display) -> DebugError {
        DebugError::Dwarf {
            file: self.path.clone(),
            context: context.into(),
            error: e.to_string(),
        }
    }

    fn gimli_dwarf(&self, file: u8) -> &gimli::Dwarf<R> {
        match (file, self.dwarf.sup()) {
            (1, Some(sup)) => sup,
            _ => &self.dwarf,
        }
    }

    /// One linear pass over a unit's DIEs with gimli's raw reader. Subtrees
    /// that cannot hold indexed names (function bodies, struct members) are
    /// jumped over through `DW_AT_sibling` when the compiler emitted it.
    fn index_unit(&self, file: u8, ui: usize, index: &mut NameIndex) -> gimli::Result<()> {
        let ud = &self.units[file as usize][ui];
        let unit = &ud.unit;
        let dwarf = self.gimli_dwarf(file);
        let mut raw = unit.entries_raw(None)?;
        // Depth of the first entry `raw` reads (non-zero after a jump).
        let mut base: isize = 0;
        // scope[d]: whether children of the open DIE at depth d are indexed.
        let mut scope: Vec<bool> = Vec::new();
        while !raw.is_empty() {
            let depth = base + raw.next_depth();
            let offset = raw.next_offset();
            let Some(abbrev) = raw.read_abbreviation()? else {
                continue;
            };
            let Ok(depth) = usize::try_from(depth) else {
                // More null entries than open DIEs: stop at the damage.
                break;
            };
            let tag = abbrev.tag();
            let in_scope = depth > 0 && scope.get(depth - 1).copied().unwrap_or(false);
            let type_tag = TypeTag::from_dw(tag);
            let is_var = tag == dw::DW_TAG_variable;
            let interesting = in_scope && (type_tag.is_some() || is_var);
            let children_indexed = abbrev.has_children()
                && match tag {
                    dw::DW_TAG_compile_unit | dw::DW_TAG_partial_unit => depth == 0,
                    dw::DW_TAG_namespace => in_scope,
                    _ => false,
                };
            let want_sibling = abbrev.has_children() && !children_indexed;
            let mut sibling = None;
            if interesting || want_sibling {
                let mut name = None;
                let mut decl = false;
                let mut spec = None;
                let mut has_location = false;
                for spec_attr in abbrev.attributes() {
                    match spec_attr.name() {
                        dw::DW_AT_name if interesting => {
                            let attr = raw.read_attribute(*spec_attr)?;
                            name = Some(dwarf.attr_string(unit, attr.value())?);
                        }
                        dw::DW_AT_declaration if interesting => {
                            let attr = raw.read_attribute(*spec_attr)?;
                            decl = matches!(attr.value(), AttributeValue::Flag(true));
                        }
                        dw::DW_AT_specification if interesting => {
                            let attr = raw.read_attribute(*spec_attr)?;
                            spec = reference(file, ud.offset, attr.value());
                        }
                        dw::DW_AT_location if interesting => {
                            raw.skip_attributes(std::slice::from_ref(spec_attr))?;
                            has_location = true;
                        }
                        dw::DW_AT_sibling if want_sibling => {
                            let attr = raw.read_attribute(*spec_attr)?;
                            if let AttributeValue::UnitRef(o) = attr.value() {
                                sibling = Some(o);
                            }
                        }
                        _ => raw.skip_attributes(std::slice::from_ref(spec_attr))?,
                    }
                }
                if interesting {
                    let die = DieId {
                        file,
                        offset: ud.offset + offset.0,
                    };
                    if let (true, Some(spec), true) = (is_var, spec, has_location) {
                        index.var_defs.insert(spec, die);
                    }
                    if let Some(name) = name {
                        let name = name.to_string_lossy()?.into_owned();
                        if let Some(tag) = type_tag {
                            if tag == TypeTag::Base {
                                index.base_canon.entry(canonical_base(&name)).or_insert(die);
                            }
                            index
                                .types
                                .entry(name)
                                .or_default()
                                .push(TypeEntry { tag, die, decl });
                        } else {
                            index.vars.entry(name).or_default().push(VarEntry {
                                die,
                                unit: (file, ui as u32),
                                decl: decl || !has_location,
                            });
                        }
                    }
                }
            } else {
                raw.skip_attributes(abbrev.attributes())?;
            }
            if abbrev.has_children() {
                scope.truncate(depth);
                scope.resize(depth, false);
                scope.push(children_indexed);
            }
            // Jump over the children (forward only, so damage cannot loop).
            if let Some(sib) = sibling.filter(|s| *s > offset) {
                if let Ok(r) = unit.entries_raw(Some(sib)) {
                    raw = r;
                    base = depth as isize;
                }
            }
        }
        Ok(())
    }

    fn unit_of(&self, id: DieId) -> Result<&UnitData> {
        let units = &self.units[usize::from(id.file.min(1))];
        let i = units.partition_point(|u| u.offset <= id.offset);
        match i.checked_sub(1).map(|i| &units[i]) {
            Some(u) if id.offset < u.end => Ok(u),
            _ => Err(self.err(
                format!("DIE {id}"),
                "offset is outside every unit (type units and DWARF packages are not supported)",
            )),
        }
    }

    /// Runs `f` on the DIE `id` (with its unit).
    fn with_entry<T>(
        &self,
        id: DieId,
        f: impl FnOnce(&gimli::Dwarf<R>, &UnitData, &Entry<'_>) -> gimli::Result<T>,
    ) -> Result<T> {
        let ud = self.unit_of(id)?;
        let dwarf = self.gimli_dwarf(id.file);
        let uoff = gimli::UnitOffset(id.offset - ud.offset);
        let entry = ud
            .unit
            .entry(uoff)
            .map_err(|e| self.err(format!("reading DIE {id}"), e))?;
        f(dwarf, ud, &entry).map_err(|e| self.err(format!("reading DIE {id}"), e))
    }

    /// Runs `f` on each child DIE of `id`.
    fn for_children(
        &self,
        id: DieId,
        mut f: impl FnMut(&gimli::Dwarf<R>, &UnitData, &Entry<'_>) -> gimli::Result<()>,
    ) -> Result<()> {
        let ud = self.unit_of(id)?;
        let dwarf = self.gimli_dwarf(id.file);
        let uoff = gimli::UnitOffset(id.offset - ud.offset);
        let mut run = || -> gimli::Result<()> {
            let mut tree = ud.unit.entries_tree(Some(uoff))?;
            let root = tree.root()?;
            let mut children = root.children();
            while let Some(child) = children.next()? {
                f(dwarf, ud, child.entry())?;
            }
            Ok(())
        };
        run().map_err(|e| self.err(format!("reading children of DIE {id}"), e))
    }

    /// Reads the type DIE `id`.
    pub(crate) fn type_desc(&self, id: DieId) -> Result<TypeDesc> {
        let file = id.file;
        let desc = self.with_entry(id, |dwarf, ud, e| {
            let name = || -> gimli::Result<Option<String>> {
                match e.attr_value(dw::DW_AT_name)? {
                    Some(v) => Ok(Some(
                        dwarf
                            .attr_string(&ud.unit, v)?
                            .to_string_lossy()?
                            .into_owned(),
                    )),
                    None => Ok(None),
                }
            };
            let size = e
                .attr_value(dw::DW_AT_byte_size)?
                .and_then(|v| v.udata_value());
            let target = match e.attr_value(dw::DW_AT_type)? {
                Some(v) => reference(file, ud.offset, v),
                None => None,
            };
            let decl = matches!(
                e.attr_value(dw::DW_AT_declaration)?,
                Some(AttributeValue::Flag(true))
            );
            let address_size = u64::from(ud.unit.header.address_size());
            Ok(match e.tag() {
                dw::DW_TAG_base_type => {
                    let encoding = match e.attr_value(dw::DW_AT_encoding)? {
                        Some(AttributeValue::Encoding(enc)) => enc,
                        _ => gimli::DwAte(0),
                    };
                    TypeDesc::Base {
                        name: name()?.unwrap_or_default(),
                        size: size.unwrap_or(0),
                        encoding,
                    }
                }
                dw::DW_TAG_unspecified_type => TypeDesc::Void,
                dw::DW_TAG_pointer_type
                | dw::DW_TAG_reference_type
                | dw::DW_TAG_rvalue_reference_type
                | dw::DW_TAG_ptr_to_member_type => TypeDesc::Pointer {
                    size: size.unwrap_or(address_size),
                    target,
                },
                dw::DW_TAG_structure_type | dw::DW_TAG_union_type | dw::DW_TAG_class_type => {
                    TypeDesc::Aggregate {
                        tag: TypeTag::from_dw(e.tag()).unwrap_or(TypeTag::Struct),
                        name: name()?,
                        size,
                        decl,
                    }
                }
                dw::DW_TAG_enumeration_type => TypeDesc::Enum {
                    name: name()?,
                    size: size.unwrap_or(4),
                    // Settled below from the underlying type or the values.
                    signed: false,
                    decl,
                },
                dw::DW_TAG_array_type => TypeDesc::Array {
                    elem: target.unwrap_or(DieId { file, offset: 0 }),
                    dims: Vec::new(),
                },
                dw::DW_TAG_typedef => TypeDesc::Typedef {
                    name: name()?.unwrap_or_default(),
                    target,
                },
                dw::DW_TAG_const_type => TypeDesc::Qualified {
                    qual: "const",
                    target,
                },
                dw::DW_TAG_volatile_type => TypeDesc::Qualified {
                    qual: "volatile",
                    target,
                },
                dw::DW_TAG_restrict_type => TypeDesc::Qualified {
                    qual: "restrict",
                    target,
                },
                dw::DW_TAG_atomic_type => TypeDesc::Qualified {
                    qual: "_Atomic",
                    target,
                },
                dw::DW_TAG_subroutine_type | dw::DW_TAG_subprogram => TypeDesc::Function,
                other => TypeDesc::Other {
                    tag: other.static_string().unwrap_or("unknown tag").to_string(),
                },
            })
        })?;
        match desc {
            TypeDesc::Array { elem, .. } => {
                if elem.offset == 0 {
                    return Err(self.err(format!("array type {id}"), "no element type"));
                }
                let mut dims = Vec::new();
                self.for_children(id, |_, _, c| {
                    if c.tag() == dw::DW_TAG_subrange_type || c.tag() == dw::DW_TAG_enumeration_type
                    {
                        dims.push(subrange_count(c)?);
                    }
                    Ok(())
                })?;
                if dims.is_empty() {
                    dims.push(None);
                }
                Ok(TypeDesc::Array { elem, dims })
            }
            TypeDesc::Enum {
                name,
                size,
                decl,
                signed: _,
            } => {
                let underlying = self.with_entry(id, |_, ud, e| {
                    Ok(match e.attr_value(dw::DW_AT_type)? {
                        Some(v) => reference(file, ud.offset, v),
                        None => None,
                    })
                })?;
                let signed = match underlying {
                    Some(u) => self.is_signed_integer(u)?,
                    None => {
                        let mut neg = false;
                        self.for_children(id, |_, _, c| {
                            if let Some(AttributeValue::Sdata(v)) =
                                c.attr_value(dw::DW_AT_const_value)?
                            {
                                neg |= v < 0;
                            }
                            Ok(())
                        })?;
                        neg
                    }
                };
                Ok(TypeDesc::Enum {
                    name,
                    size,
                    signed,
                    decl,
                })
            }
            d => Ok(d),
        }
    }

    /// Whether the integer type `id` (through typedefs and qualifiers) is
    /// signed. Reads the DIEs directly, so that an enum's underlying type
    /// cannot send [`Dwarf::type_desc`] into a loop.
    fn is_signed_integer(&self, id: DieId) -> Result<bool> {
        let mut id = id;
        for _ in 0..64 {
            let (tag, encoding, next) = self.with_entry(id, |_, ud, e| {
                let encoding = match e.attr_value(dw::DW_AT_encoding)? {
                    Some(AttributeValue::Encoding(enc)) => Some(enc),
                    _ => None,
                };
                let next = match e.attr_value(dw::DW_AT_type)? {
                    Some(v) => reference(id.file, ud.offset, v),
                    None => None,
                };
                Ok((e.tag(), encoding, next))
            })?;
            match (tag, next) {
                (dw::DW_TAG_base_type, _) => {
                    return Ok(matches!(
                        encoding,
                        Some(dw::DW_ATE_signed | dw::DW_ATE_signed_char | dw::DW_ATE_signed_fixed)
                    ))
                }
                (
                    dw::DW_TAG_typedef
                    | dw::DW_TAG_const_type
                    | dw::DW_TAG_volatile_type
                    | dw::DW_TAG_atomic_type
                    | dw::DW_TAG_enumeration_type,
                    Some(t),
                ) => id = t,
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// The data members of the aggregate `id` in declaration order.
    pub(crate) fn members(&self, id: DieId) -> Result<Vec<MemberDesc>> {
        let file = id.file;
        let little = self.little_endian;
        let mut out: Vec<MemberDesc> = Vec::new();
        let mut problem = None;
        let mut needs_storage = Vec::new();
        self.for_children(id, |dwarf, ud, c| {
            if c.tag() != dw::DW_TAG_member {
                return Ok(());
            }
            // C++ static members are variables in disguise; skip them.
            if matches!(
                c.attr_value(dw::DW_AT_external)?,
                Some(AttributeValue::Flag(true))
            ) || matches!(
                c.attr_value(dw::DW_AT_declaration)?,
                Some(AttributeValue::Flag(true))
            ) {
                return Ok(());
            }
            let name = match c.attr_value(dw::DW_AT_name)? {
                Some(v) => Some(
                    dwarf
                        .attr_string(&ud.unit, v)?
                        .to_string_lossy()?
                        .into_owned(),
                ),
                None => None,
            };
            let Some(ty) = c
                .attr_value(dw::DW_AT_type)?
                .and_then(|v| reference(file, ud.offset, v))
            else {
                problem.get_or_insert(format!(
                    "member {} has no type",
                    name.as_deref().unwrap_or("<anonymous>")
                ));
                return Ok(());
            };
            let location = match c.attr_value(dw::DW_AT_data_member_location)? {
                None => Some(0),
                Some(AttributeValue::Exprloc(expr)) => simple_offset(expr, ud.unit.encoding())?,
                Some(v) => v.udata_value(),
            };
            let Some(location) = location else {
                problem.get_or_insert(format!(
                    "member {} has a computed location (virtual base?)",
                    name.as_deref().unwrap_or("<anonymous>")
                ));
                return Ok(());
            };
            let bit_size = c
                .attr_value(dw::DW_AT_bit_size)?
                .and_then(|v| v.udata_value());
            let (offset, bits) = match bit_size {
                None => (location, None),
                Some(width) => {
                    let pos = if let Some(dbo) = c
                        .attr_value(dw::DW_AT_data_bit_offset)?
                        .and_then(|v| v.udata_value())
                    {
                        // DWARF 4+: bits from the start of the aggregate; the
                        // member location is absent (or 0) then.
                        location.wrapping_mul(8).wrapping_add(dbo)
                    } else {
                        // DWARF 2/3: DW_AT_bit_offset counts from the most
                        // significant bit of a storage unit of DW_AT_byte_size.
                        let old = c
                            .attr_value(dw::DW_AT_bit_offset)?
                            .and_then(|v| v.udata_value())
                            .unwrap_or(0);
                        let storage = c
                            .attr_value(dw::DW_AT_byte_size)?
                            .and_then(|v| v.udata_value());
                        match storage {
                            Some(storage) if little => location
                                .wrapping_add(storage)
                                .wrapping_mul(8)
                                .wrapping_sub(old.wrapping_add(width)),
                            Some(_) => location.wrapping_mul(8).wrapping_add(old),
                            None if little => {
                                // Storage unit = the member's type; fixed up below.
                                needs_storage.push((out.len(), location, old, width));
                                location.wrapping_mul(8)
                            }
                            None => location.wrapping_mul(8).wrapping_add(old),
                        }
                    };
                    (pos / 8, Some((pos, width)))
                }
            };
            out.push(MemberDesc {
                name,
                ty,
                offset,
                bits,
            });
            Ok(())
        })?;
        if let Some(p) = problem {
            return Err(self.err(format!("members of {}", self.type_name(id)), p));
        }
        for (i, location, old, width) in needs_storage {
            let storage = self.size_of(out[i].ty)?;
            let pos = location
                .wrapping_add(storage)
                .wrapping_mul(8)
                .wrapping_sub(old.wrapping_add(width));
            out[i].offset = pos / 8;
            out[i].bits = Some((pos, width));
        }
        Ok(out)
    }

    /// All indexed type names (for "nearest" suggestions).
    pub(crate) fn type_names(&self) -> impl Iterator<Item = &str> {
        self.index.types.keys().map(String::as_str)
    }

    /// All indexed variable names.
    pub(crate) fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.index.vars.keys().map(String::as_str)
    }

    /// The complete definition of a named type: `tags` restricts the kinds
    /// (empty: any kind, typedefs first, then struct/union/class, enum, base).
    pub(crate) fn lookup_type(&self, name: &str, tags: &[TypeTag]) -> Option<DieId> {
        const ORDER: [TypeTag; 6] = [
            TypeTag::Typedef,
            TypeTag::Struct,
            TypeTag::Union,
            TypeTag::Class,
            TypeTag::Enum,
            TypeTag::Base,
        ];
        let order: &[TypeTag] = if tags.is_empty() { &ORDER } else { tags };
        if let Some(entries) = self.index.types.get(name) {
            for tag in order {
                if let Some(e) = entries.iter().find(|e| e.tag == *tag && !e.decl) {
                    return Some(e.die);
                }
            }
        }
        if order.contains(&TypeTag::Base) {
            return self.index.base_canon.get(&canonical_base(name)).copied();
        }
        None
    }

    /// Whether a declaration (only) of that name exists.
    pub(crate) fn has_declaration(&self, name: &str) -> bool {
        self.index
            .types
            .get(name)
            .is_some_and(|v| v.iter().any(|e| e.decl))
    }

    /// Finds a global variable by name, optionally only in compile units whose
    /// name matches `cu` (a wildcard pattern matched against the whole CU
    /// name or its trailing path components).
    pub(crate) fn find_variable(&self, name: &str, cu: Option<&str>) -> Result<Option<VarDesc>> {
        let Some(entries) = self.index.vars.get(name) else {
            return Ok(None);
        };
        let cu_ok = |e: &VarEntry| match cu {
            None => true,
            Some(pat) => self.units[usize::from(e.unit.0)]
                .get(e.unit.1 as usize)
                .and_then(|u| u.name.as_deref())
                .is_some_and(|n| cu_matches(pat, n)),
        };
        let candidates: Vec<&VarEntry> = entries.iter().filter(|e| cu_ok(e)).collect();
        // Prefer a definition with a location; else a declaration whose
        // definition (DW_AT_specification) has one; else any declaration.
        let chosen = candidates
            .iter()
            .find(|e| !e.decl)
            .map(|e| (e, e.die))
            .or_else(|| {
                candidates
                    .iter()
                    .find_map(|e| self.index.var_defs.get(&e.die).map(|d| (e, *d)))
            })
            .or_else(|| candidates.first().map(|e| (e, e.die)));
        let Some((entry, def)) = chosen else {
            return Ok(None);
        };
        let cu_name = self.units[usize::from(entry.unit.0)]
            .get(entry.unit.1 as usize)
            .and_then(|u| u.name.clone());
        let decl_die = entry.die;
        let ty_of = |id: DieId| {
            self.with_entry(id, |_, ud, e| {
                Ok(match e.attr_value(dw::DW_AT_type)? {
                    Some(v) => reference(id.file, ud.offset, v),
                    None => None,
                })
            })
        };
        let ty = match ty_of(def)? {
            Some(t) => Some(t),
            None => ty_of(decl_die)?,
        };
        let (address, location_problem) = self.with_entry(def, |dwarf, ud, e| {
            Ok(match e.attr_value(dw::DW_AT_location)? {
                None => (None, None),
                Some(AttributeValue::Exprloc(expr)) => {
                    let mut ops = expr.operations(ud.unit.encoding());
                    let first = ops.next()?;
                    let rest = ops.next()?;
                    match (first, rest) {
                        (Some(gimli::Operation::Address { address }), None) => {
                            (Some(address), None)
                        }
                        (Some(gimli::Operation::AddressIndex { index }), None) => {
                            (Some(dwarf.address(&ud.unit, index)?), None)
                        }
                        _ => (
                            None,
                            Some(
                                "its location is not a static address (thread-local or optimized?)"
                                    .to_string(),
                            ),
                        ),
                    }
                }
                Some(_) => (None, Some("its location is a location list".to_string())),
            })
        })?;
        Ok(Some(VarDesc {
            die: def,
            ty,
            address,
            location_problem,
            cu_name,
        }))
    }
}

impl TypeGraph for Dwarf {
    fn origin(&self) -> &Path {
        &self.path
    }

    fn little_endian(&self) -> bool {
        self.little_endian
    }

    fn type_desc(&self, id: DieId) -> Result<TypeDesc> {
        Dwarf::type_desc(self, id)
    }

    fn members(&self, id: DieId) -> Result<Vec<MemberDesc>> {
        Dwarf::members(self, id)
    }

    fn lookup_type(&self, name: &str, tags: &[TypeTag]) -> Option<DieId> {
        Dwarf::lookup_type(self, name, tags)
    }

    fn has_declaration(&self, name: &str) -> bool {
        Dwarf::has_declaration(self, name)
    }

    fn type_names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(Dwarf::type_names(self))
    }
}

fn read_units(dwarf: &gimli::Dwarf<R>, path: &Path) -> Result<Vec<UnitData>> {
    let err = |context: String, e: gimli::Error| DebugError::Dwarf {
        file: path.to_path_buf(),
        context,
        error: e.to_string(),
    };
    let mut out = Vec::new();
    let mut headers = dwarf.units();
    while let Some(header) = headers
        .next()
        .map_err(|e| err("reading unit headers".into(), e))?
    {
        let Some(offset) = header.offset().as_debug_info_offset() else {
            continue;
        };
        if !matches!(
            header.type_(),
            gimli::UnitType::Compilation | gimli::UnitType::Partial
        ) {
            continue;
        }
        let end = offset.0.saturating_add(header.length_including_self());
        let unit = dwarf
            .unit(header)
            .map_err(|e| err(format!("unit at {:#x}", offset.0), e))?;
        let name = unit
            .name
            .as_ref()
            .and_then(|n| n.to_string_lossy().ok())
            .map(|s| s.into_owned());
        out.push(UnitData {
            offset: offset.0,
            end,
            unit,
            name,
        });
    }
    out.sort_by_key(|u| u.offset);
    Ok(out)
}

/// A DIE reference attribute as a [`DieId`] (type-unit signatures: `None`).
fn reference(file: u8, unit_offset: usize, v: AttributeValue<R>) -> Option<DieId> {
    match v {
        AttributeValue::UnitRef(o) => Some(DieId {
            file,
            offset: unit_offset.saturating_add(o.0),
        }),
        AttributeValue::DebugInfoRef(o) => Some(DieId { file, offset: o.0 }),
        AttributeValue::DebugInfoRefSup(o) => Some(DieId {
            file: 1,
            offset: o.0,
        }),
        _ => None,
    }
}

/// `DW_AT_data_member_location` as an expression: DWARF 2 style
/// `DW_OP_plus_uconst N` (or a constant push).
fn simple_offset(
    expr: gimli::Expression<R>,
    encoding: gimli::Encoding,
) -> gimli::Result<Option<u64>> {
    let mut ops = expr.operations(encoding);
    let first = ops.next()?;
    if ops.next()?.is_some() {
        return Ok(None);
    }
    Ok(match first {
        Some(gimli::Operation::PlusConstant { value }) => Some(value),
        Some(gimli::Operation::UnsignedConstant { value }) => Some(value),
        Some(gimli::Operation::SignedConstant { value }) => u64::try_from(value).ok(),
        _ => None,
    })
}

/// The element count of a `DW_TAG_subrange_type`; `None` if unknown.
fn subrange_count(c: &Entry<'_>) -> gimli::Result<Option<u64>> {
    if let Some(n) = c.attr_value(dw::DW_AT_count)?.and_then(|v| v.udata_value()) {
        return Ok(Some(n));
    }
    let lower = match c.attr_value(dw::DW_AT_lower_bound)? {
        Some(AttributeValue::Sdata(v)) => v,
        Some(v) => v.udata_value().map_or(0, |v| v as i64),
        None => 0,
    };
    let upper = match c.attr_value(dw::DW_AT_upper_bound)? {
        Some(AttributeValue::Sdata(v)) => v,
        // Compilers write C bounds unsigned (`char b[243]`: data1 242);
        // an empty array has DW_AT_count 0 or an all-ones data8 bound.
        Some(AttributeValue::Data1(v)) => i64::from(v),
        Some(AttributeValue::Data2(v)) => i64::from(v),
        Some(AttributeValue::Data4(v)) => i64::from(v),
        Some(AttributeValue::Data8(v)) => v as i64,
        Some(AttributeValue::Udata(v)) => v as i64,
        // A non-constant bound (VLA) or none at all (`char tail[]`).
        _ => return Ok(None),
    };
    let count = upper.checked_sub(lower).and_then(|n| n.checked_add(1));
    Ok(Some(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)))
}

/// Spelling-independent key for C integer type names: "unsigned long",
/// "long unsigned int" and "unsigned long int" all become "long unsigned".
pub(crate) fn canonical_base(name: &str) -> String {
    let mut words: Vec<&str> = name.split_whitespace().collect();
    let is_char = words.contains(&"char");
    if words.len() > 1 {
        words.retain(|w| *w != "int");
    }
    if !is_char && words.len() > 1 {
        words.retain(|w| *w != "signed");
    }
    if words == ["signed"] {
        words = vec!["int"];
    }
    if words == ["unsigned"] {
        words = vec!["unsigned", "int"];
    }
    words.sort_unstable();
    words.join(" ")
}

/// Whether the compile unit `cu_name` matches a `@var("x@pattern")` pattern:
/// the whole name, or its last path components.
pub(crate) fn cu_matches(pattern: &str, cu_name: &str) -> bool {
    use super::symbols::glob_match;
    if glob_match(pattern, cu_name) {
        return true;
    }
    let mut rest = cu_name;
    while let Some(i) = rest.find('/') {
        rest = &rest[i + 1..];
        if glob_match(pattern, rest) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_base_names() {
        assert_eq!(
            canonical_base("long unsigned int"),
            canonical_base("unsigned long")
        );
        assert_eq!(canonical_base("long int"), canonical_base("long"));
        assert_eq!(canonical_base("signed long"), canonical_base("long int"));
        assert_eq!(canonical_base("unsigned"), canonical_base("unsigned int"));
        assert_ne!(canonical_base("signed char"), canonical_base("char"));
        assert_eq!(
            canonical_base("short unsigned int"),
            canonical_base("unsigned short")
        );
        assert_eq!(
            canonical_base("long long unsigned int"),
            canonical_base("unsigned long long")
        );
    }

    #[test]
    fn cu_patterns() {
        assert!(cu_matches("ngx_cycle.c", "src/core/ngx_cycle.c"));
        assert!(cu_matches("core/ngx_cycle.c", "src/core/ngx_cycle.c"));
        assert!(cu_matches("*.c", "x.c"));
        assert!(!cu_matches("cycle.c", "src/core/ngx_cycle.c"));
        assert!(cu_matches("/abs/x.c", "/abs/x.c"));
    }
}
