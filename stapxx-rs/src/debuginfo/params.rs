//! Target variables of function probes: `$param`, `$$parms`, `$$locals`
//! and `$return` in `process("P").function("F")[.return]`.
//!
//! [`Module::function_params`](super::Module::function_params) finds the
//! out-of-line definitions of a function (a `DW_TAG_subprogram` with an
//! address; inlined-only and abstract instances are skipped, but names and
//! types are followed through `DW_AT_abstract_origin`/`DW_AT_specification`),
//! and for each parameter and local variable the place its value is in *at
//! the probe address* ([`ParamLocation`]), from a single location expression
//! or a location list
//! (`.debug_loc`, `.debug_loclists` with every `DW_LLE_*` form).
//!
//! # Where the probe goes
//!
//! Like stap, a function probe sits at the function's entry when the code
//! was optimized (its location lists describe every instruction), and after
//! the prologue when it was not (gcc `-O0`, clang without `-O`): there a
//! parameter's only location is its stack slot (`DW_OP_fbreg -20`), which the
//! prologue fills from the argument register; at the entry the slot still
//! holds garbage. [`FunctionInfo::probe_address`] is that address (the
//! line table's `prologue_end`, else the first new line after the entry),
//! and every location is evaluated there.
//!
//! # Registers and the CFA
//!
//! Locations are in DWARF register numbers ([`x86_64_register_name`] gives
//! the SysV names). `DW_OP_fbreg` goes through the function's frame base;
//! when that is `DW_OP_call_frame_cfa` the CFA at the probe address comes
//! from the call frame information (`.eh_frame`, else `.debug_frame`): at
//! the first instruction on x86-64 it is `rsp + 8`, after `push rbp; mov
//! rbp, rsp` it is `rbp + 16`. `DW_OP_entry_value(DW_OP_regN)` at the entry
//! address is register N itself.

use std::path::PathBuf;

use gimli::{constants as dw, AttributeValue, Reader as _, UnwindSection as _};
use object::{Object as _, ObjectSection as _};

use super::dwarf::{cu_matches, DieId, R};
use super::elf::ElfFile;
use super::error::{DebugError, Result};
use super::layout::{Ty, TypeHandle};
use super::locexpr::{eval, read_small, to_location, EvalCtx, LocExpr, Outcome};
use super::symbols::{glob_match, has_wildcards, SymbolTable};

/// DWARF register numbers of x86-64 (System V psABI) 0..=16.
const X86_64_REGS: [&str; 17] = [
    "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip",
];

/// The SysV name of an x86-64 DWARF register number (`5` -> `"rdi"`);
/// `None` for vector and other registers a probe cannot read.
pub fn x86_64_register_name(regno: u16) -> Option<&'static str> {
    X86_64_REGS.get(usize::from(regno)).copied()
}

/// Where a variable's value is at the probe address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamLocation {
    /// In DWARF register `n` (`DW_OP_regN`; also `DW_OP_entry_value(DW_OP_regN)`
    /// at the function entry).
    Register(u16),
    /// In memory at `register + offset` (`DW_OP_bregN`, `DW_OP_fbreg`
    /// through the frame base or the CFA).
    Memory { base_reg: u16, offset: i64 },
    /// The value itself is `register + offset` (`DW_OP_bregN off;
    /// DW_OP_stack_value`).
    Computed { base_reg: u16, offset: i64 },
    /// In memory at a link-time address (`DW_OP_addr`: a static local).
    Address(u64),
    /// A known constant (`DW_AT_const_value`, `DW_OP_litN; DW_OP_stack_value`).
    Constant(i64),
    /// In memory at an address computed otherwise (a register scaled, a
    /// pointer read: `DW_OP_breg0 0; DW_OP_deref; DW_OP_plus_uconst 8`).
    MemoryAt(LocExpr),
    /// The value itself, computed otherwise (`DW_OP_breg5 0; DW_OP_lit7;
    /// DW_OP_mul; DW_OP_stack_value`).
    ValueOf(LocExpr),
    /// No location at the probe address: optimized out.
    OptimizedOut,
    /// A location this translator does not follow, and why.
    Unsupported(String),
}

/// A parameter or local variable of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetVar {
    pub name: String,
    /// Its declared type (void when DWARF gives none).
    pub ty: TypeHandle,
    pub location: ParamLocation,
}

/// One instance of a function: an out-of-line definition, or (from
/// [`Module::function_instances`](super::Module::function_instances)) an
/// inlined copy, with its variables located at
/// [`FunctionInfo::probe_address`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The DWARF name (through the abstract origin for clones).
    pub name: String,
    /// The compile unit's name.
    pub cu_name: Option<String>,
    /// The `DW_TAG_subprogram` DIE, or the `DW_TAG_inlined_subroutine` DIE
    /// of an inlined copy.
    pub die: DieId,
    /// An inlined copy (`DW_TAG_inlined_subroutine`): stap's `.inline`
    /// probes take these only, `.call` never; a `.return` probe cannot
    /// apply to it (no call, no return instruction of its own).
    pub inlined: bool,
    /// For an inlined copy, the source line of the call it replaced
    /// (`DW_AT_call_line`), to tell the copies apart in messages.
    pub call_line: Option<u64>,
    /// Why this instance cannot be probed, when it cannot (an inlined copy
    /// whose code was optimized away entirely has no address); its
    /// addresses are then 0.
    pub no_probe: Option<String>,
    /// Link-time address of the first instruction (`DW_AT_low_pc`); for an
    /// inlined copy its entry pc (`DW_AT_entry_pc`, else where its first listed range begins).
    pub entry_address: u64,
    /// Link-time address where the probe goes and where the locations
    /// hold: the entry for optimized code, after the prologue otherwise.
    pub probe_address: u64,
    /// Formal parameters in declaration order.
    pub params: Vec<TargetVar>,
    /// Variables declared in the function's outermost block.
    pub locals: Vec<TargetVar>,
    /// `None` for a void function.
    pub return_type: Option<TypeHandle>,
    /// Where the function is declared, when DWARF says.
    pub decl: Option<super::decl::Decl>,
    /// The canonical frame address at the probe address as (DWARF
    /// register, offset), from the call frame information: the return
    /// address is the word below it (x86-64). `None` when unknown.
    pub cfa: Option<(u16, i64)>,
}

impl FunctionInfo {
    /// A parameter, else a local, by name.
    pub fn variable(&self, name: &str) -> Option<&TargetVar> {
        self.params
            .iter()
            .chain(&self.locals)
            .find(|v| v.name == name)
    }

    /// Whether the probe goes after the prologue (unoptimized code).
    pub fn prologue_skipped(&self) -> bool {
        self.probe_address != self.entry_address
    }
}

/// The files [`find_functions`] reads.
pub(crate) struct Sources<'a> {
    /// The file with the DWARF (the module itself or its separate debug file).
    pub dwarf_file: &'a ElfFile,
    /// Its dwz supplementary file.
    pub alt: Option<&'a ElfFile>,
    /// The module itself: `.eh_frame` lives there.
    pub code_file: &'a ElfFile,
    /// The module's symbols, to find a function by its address.
    pub symbols: Option<&'a SymbolTable>,
}

/// Every out-of-line definition of the functions matching `spec`: a name or
/// wildcard pattern, optionally `@file` (a compile unit pattern, as in
/// `function("ngx_http_*@ngx_http_core_module.c")`).
///
/// `at`: evaluate the locations at this link-time address instead of the
/// probe address, keeping only the functions whose code holds it.
pub(crate) fn find_functions(
    src: &Sources<'_>,
    spec: &str,
    at: Option<u64>,
) -> Result<Vec<FunctionInfo>> {
    let (pattern, cu_pattern) = split_spec(spec)?;
    let debug = Debug::load(src)?;
    let mut found = out_of_line(&debug, src, pattern, cu_pattern)?;
    if let Some(pc) = at {
        found.retain(|c| c.holds(pc));
        if found.is_empty() {
            return Err(DebugError::NotFound {
                what: format!("function '{spec}' holding address {pc:#x}"),
                file: debug.path.clone(),
            });
        }
    }
    if found.is_empty() {
        return Err(DebugError::NotFound {
            what: format!(
                "a DWARF definition with an address of function '{spec}' (inlined-only functions have none)"
            ),
            file: debug.path.clone(),
        });
    }
    let mut cfi = Cfi::new(src);
    found
        .iter()
        .map(|c| debug.function_info(c, &mut cfi, at, &[]))
        .collect()
}

/// `name[@file]` -> (name pattern, compile unit pattern).
pub(super) fn split_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let (pattern, cu_pattern) = match spec.split_once('@') {
        Some((n, f)) if !f.is_empty() => (n, Some(f)),
        _ => (spec, None),
    };
    if let Some(f) = cu_pattern {
        if f.contains(':') {
            return Err(DebugError::BadAccess {
                ty: spec.to_string(),
                what: format!(
                    "function probes at a source line ('{f}') cannot give target variables yet"
                ),
            });
        }
    }
    Ok((pattern, cu_pattern))
}

/// Whether unit `unit`'s name matches the `@file` pattern (none: all do).
pub(super) fn unit_matches(debug: &Debug, unit: usize, cu_pattern: Option<&str>) -> bool {
    let Some(cu) = cu_pattern else { return true };
    debug.units[0]
        .get(unit)
        .and_then(|u| u.name.as_deref())
        .is_some_and(|n| cu_matches(cu, n))
}

/// The out-of-line definitions matching `pattern` in units matching
/// `cu_pattern`, by entry address (none found is no error here).
pub(super) fn out_of_line(
    debug: &Debug,
    src: &Sources<'_>,
    pattern: &str,
    cu_pattern: Option<&str>,
) -> Result<Vec<Candidate>> {
    // The symbol's address first: it names the code the uprobe patches,
    // whatever DWARF calls it (aliases). Then DWARF names.
    let mut addresses = Vec::new();
    if !has_wildcards(pattern) {
        if let Some(sym) = src.symbols.and_then(|t| t.function(pattern)) {
            addresses.push(sym.address);
        }
    }
    let mut found = Vec::new();
    if !addresses.is_empty() {
        found = debug.scan(&|c: &Candidate| addresses.contains(&c.entry), &addresses)?;
    }
    if found.is_empty() {
        found = debug.scan(
            &|c: &Candidate| c.name.as_deref().is_some_and(|n| glob_match(pattern, n)),
            &[],
        )?;
        found.retain(|c| !is_split_tail(src, c.entry));
    }
    found.retain(|c| unit_matches(debug, c.unit, cu_pattern));
    found.sort_by_key(|c| c.entry);
    found.dedup_by_key(|c| c.entry);
    Ok(found)
}

/// Entry addresses and names of the functions DWARF describes.
pub(super) type Described = (
    std::collections::HashSet<u64>,
    std::collections::HashSet<String>,
);

/// What DWARF describes of the main file's functions: the entry address of
/// every concrete subprogram (split tails included), and the name of every
/// subprogram, those with no code left too (gcc's identical-code folding
/// leaves a function's DIE without code, its symbol on the code it shares).
pub(super) fn described_functions(src: &Sources<'_>) -> Result<Described> {
    let debug = Debug::load(src)?;
    let entries = debug
        .scan(&|_| true, &[])?
        .into_iter()
        .map(|c| c.entry)
        .collect();
    let mut names = Vec::new();
    debug.scan_inlined(&|_| false, &mut names)?;
    Ok((entries, names.into_iter().collect()))
}

/// Whether the code at `entry` is the tail gcc split off a function (partial
/// inlining): its symbol is `f.part.N`, and its DWARF is a concrete `f`
/// like any other. It is no entry of `f`: `f`'s head, inlined into the
/// callers (and probed there as inlined copies), calls it, so a probe on
/// it would see those calls twice. DWARF marks it in no other way; stap
/// goes by the symbol's name too. Named as `f.part.N` it is still found
/// through the symbol table.
fn is_split_tail(src: &Sources<'_>, entry: u64) -> bool {
    src.symbols
        .and_then(|t| t.lookup(entry))
        .is_some_and(|s| s.address == entry && s.name.contains(".part."))
}

/// A concrete subprogram (or inlined copy) found by a scan.
#[derive(Clone)]
pub(super) struct Candidate {
    pub die: DieId,
    /// Index into the main file's units.
    pub unit: usize,
    pub entry: u64,
    /// End of the address range holding `entry`.
    pub end: u64,
    /// Every address range of its code.
    pub ranges: Vec<(u64, u64)>,
    pub name: Option<String>,
    /// For an inlined copy: the out-of-line subprogram whose code holds it
    /// and its entry address. The copy has no frame base of its own, and
    /// `DW_OP_entry_value` and the CFA at entry refer to that function.
    pub frame: Option<(DieId, u64)>,
    pub call_line: Option<u64>,
}

impl Candidate {
    pub fn holds(&self, pc: u64) -> bool {
        self.ranges.iter().any(|&(b, e)| b <= pc && pc < e)
    }
}

pub(super) struct UnitInfo {
    pub start: usize,
    pub end: usize,
    pub unit: gimli::Unit<R>,
    pub name: Option<String>,
    pub producer: Option<String>,
}

/// The DWARF sections this module needs (location lists and ranges
/// included), parsed unit by unit.
pub(super) struct Debug {
    pub path: PathBuf,
    pub dwarf: gimli::Dwarf<R>,
    pub units: [Vec<UnitInfo>; 2],
}

/// Where a DIE's code is (see [`Debug::code_range`]).
pub(super) struct CodeRange {
    pub entry: u64,
    pub end: u64,
    pub ranges: Vec<(u64, u64)>,
}

/// The own attributes of a DIE that matter here.
#[derive(Clone)]
pub(super) struct DieAttrs {
    pub tag: gimli::DwTag,
    pub name: Option<String>,
    pub ty: Option<DieId>,
    /// `DW_AT_abstract_origin`, else `DW_AT_specification`.
    pub origin: Option<DieId>,
    pub location: Option<AttributeValue<R>>,
    pub const_value: Option<AttributeValue<R>>,
}

fn wanted(id: gimli::SectionId) -> bool {
    use gimli::SectionId::*;
    matches!(
        id,
        DebugAbbrev
            | DebugAddr
            | DebugInfo
            | DebugLine
            | DebugLineStr
            | DebugStr
            | DebugStrOffsets
            | DebugLoc
            | DebugLocLists
            | DebugRanges
            | DebugRngLists
    )
}

fn endian(file: &ElfFile) -> gimli::RunTimeEndian {
    if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    }
}

fn load_sections(file: &ElfFile) -> Result<gimli::Dwarf<R>> {
    let endian = endian(file);
    let empty: std::sync::Arc<[u8]> = std::sync::Arc::from(&[][..]);
    gimli::Dwarf::load(|id| -> Result<R> {
        let data = if wanted(id) {
            file.section_data(id.name())?
        } else {
            None
        };
        Ok(R::new(data.unwrap_or_else(|| empty.clone()), endian))
    })
}

fn read_units(dwarf: &gimli::Dwarf<R>) -> gimli::Result<Vec<UnitInfo>> {
    let mut out = Vec::new();
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
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
        let unit = dwarf.unit(header)?;
        let string = |attr| -> gimli::Result<Option<String>> {
            let mut cursor = unit.entries();
            let Some((_, root)) = cursor.next_dfs()? else {
                return Ok(None);
            };
            Ok(match root.attr_value(attr)? {
                Some(v) => Some(dwarf.attr_string(&unit, v)?.to_string_lossy()?.into_owned()),
                None => None,
            })
        };
        let producer = string(dw::DW_AT_producer).unwrap_or(None);
        let name = unit
            .name
            .as_ref()
            .and_then(|n| n.to_string_lossy().ok())
            .map(|s| s.into_owned());
        out.push(UnitInfo {
            start: offset.0,
            end,
            unit,
            name,
            producer,
        });
    }
    out.sort_by_key(|u| u.start);
    Ok(out)
}

/// A DIE reference attribute as a [`DieId`].
pub(super) fn reference(file: u8, unit_start: usize, v: AttributeValue<R>) -> Option<DieId> {
    match v {
        AttributeValue::UnitRef(o) => Some(DieId {
            file,
            offset: unit_start.saturating_add(o.0),
        }),
        AttributeValue::DebugInfoRef(o) => Some(DieId { file, offset: o.0 }),
        AttributeValue::DebugInfoRefSup(o) => Some(DieId {
            file: 1,
            offset: o.0,
        }),
        _ => None,
    }
}

pub(super) type Entry<'a> = gimli::DebuggingInformationEntry<'a, 'a, R>;

impl Debug {
    pub(super) fn load(src: &Sources<'_>) -> Result<Debug> {
        let path = src.dwarf_file.name().to_path_buf();
        let mut dwarf = load_sections(src.dwarf_file)?;
        if let Some(alt) = src.alt {
            let mut sup = load_sections(alt)?;
            sup.file_type = gimli::DwarfFileType::Main;
            dwarf.set_sup(sup);
        }
        let err = |e: gimli::Error| DebugError::Dwarf {
            file: path.clone(),
            context: "reading unit headers".into(),
            error: e.to_string(),
        };
        let main = read_units(&dwarf).map_err(err)?;
        let sup = match dwarf.sup() {
            Some(s) => read_units(s).map_err(err)?,
            None => Vec::new(),
        };
        Ok(Debug {
            path,
            dwarf,
            units: [main, sup],
        })
    }

    pub(super) fn err(&self, context: impl Into<String>, e: impl std::fmt::Display) -> DebugError {
        DebugError::Dwarf {
            file: self.path.clone(),
            context: context.into(),
            error: e.to_string(),
        }
    }

    pub(super) fn gdwarf(&self, file: u8) -> &gimli::Dwarf<R> {
        match (file, self.dwarf.sup()) {
            (1, Some(sup)) => sup,
            _ => &self.dwarf,
        }
    }

    pub(super) fn unit_of(&self, id: DieId) -> Option<&UnitInfo> {
        let units = &self.units[usize::from(id.file.min(1))];
        let i = units.partition_point(|u| u.start <= id.offset);
        units.get(i.checked_sub(1)?).filter(|u| id.offset < u.end)
    }

    pub(super) fn attrs_of(
        &self,
        file: u8,
        u: &UnitInfo,
        e: &Entry<'_>,
    ) -> gimli::Result<DieAttrs> {
        let dwarf = self.gdwarf(file);
        let name = match e.attr_value(dw::DW_AT_name)? {
            Some(v) => Some(
                dwarf
                    .attr_string(&u.unit, v)?
                    .to_string_lossy()?
                    .into_owned(),
            ),
            None => None,
        };
        let r = |v: Option<AttributeValue<R>>| v.and_then(|v| reference(file, u.start, v));
        let origin = match r(e.attr_value(dw::DW_AT_abstract_origin)?) {
            Some(o) => Some(o),
            None => r(e.attr_value(dw::DW_AT_specification)?),
        };
        Ok(DieAttrs {
            tag: e.tag(),
            name,
            ty: r(e.attr_value(dw::DW_AT_type)?),
            origin,
            location: e.attr_value(dw::DW_AT_location)?,
            const_value: e.attr_value(dw::DW_AT_const_value)?,
        })
    }

    /// The attributes of DIE `id`.
    pub(super) fn attrs(&self, id: DieId) -> Result<DieAttrs> {
        let u = self
            .unit_of(id)
            .ok_or_else(|| self.err(format!("DIE {id}"), "offset is outside every unit"))?;
        let run = || -> gimli::Result<DieAttrs> {
            let e = u.unit.entry(gimli::UnitOffset(id.offset - u.start))?;
            self.attrs_of(id.file, u, &e)
        };
        run().map_err(|e| self.err(format!("reading DIE {id}"), e))
    }

    /// Name and type of a DIE, through its abstract origin / specification.
    pub(super) fn name_and_type(&self, first: DieAttrs) -> Result<(Option<String>, Option<DieId>)> {
        let (mut name, mut ty) = (first.name, first.ty);
        let mut next = first.origin;
        for _ in 0..8 {
            if name.is_some() && ty.is_some() {
                break;
            }
            let Some(id) = next else { break };
            let a = self.attrs(id)?;
            name = name.or(a.name);
            ty = ty.or(a.ty);
            next = a.origin;
        }
        Ok((name, ty))
    }

    /// Concrete subprograms of the main file's units accepted by `keep`;
    /// with `addresses`, only units whose ranges hold one of them.
    fn scan(&self, keep: &dyn Fn(&Candidate) -> bool, addresses: &[u64]) -> Result<Vec<Candidate>> {
        let mut out = Vec::new();
        for (ui, u) in self.units[0].iter().enumerate() {
            let err = |e: gimli::Error| {
                self.err(
                    format!("scanning the unit at {:#x} for subprograms", u.start),
                    e,
                )
            };
            if !addresses.is_empty() {
                let holds = || -> gimli::Result<bool> {
                    let mut ranges = self.dwarf.unit_ranges(&u.unit)?;
                    while let Some(r) = ranges.next()? {
                        if addresses.iter().any(|a| r.begin <= *a && *a < r.end) {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                };
                if !holds().map_err(err)? {
                    continue;
                }
            }
            let mut tree = u.unit.entries_tree(None).map_err(err)?;
            let root = tree.root().map_err(err)?;
            self.scan_node(ui, u, root, keep, &mut out, 0)?;
        }
        Ok(out)
    }

    fn scan_node(
        &self,
        ui: usize,
        u: &UnitInfo,
        node: gimli::EntriesTreeNode<'_, '_, '_, R>,
        keep: &dyn Fn(&Candidate) -> bool,
        out: &mut Vec<Candidate>,
        depth: u32,
    ) -> Result<()> {
        let err = |e: gimli::Error| {
            self.err(
                format!("scanning the unit at {:#x} for subprograms", u.start),
                e,
            )
        };
        let mut children = node.children();
        while let Some(child) = children.next().map_err(err)? {
            let e = child.entry();
            match e.tag() {
                dw::DW_TAG_subprogram => {
                    if let Some(code) = self.code_range(u, e, false).map_err(err)? {
                        let id = DieId {
                            file: 0,
                            offset: u.start + e.offset().0,
                        };
                        let own = self.attrs_of(0, u, e).map_err(err)?;
                        let name = match own.name {
                            Some(n) => Some(n),
                            // Clones and C++ definitions name themselves
                            // through their origin.
                            None => self.name_and_type(own)?.0,
                        };
                        let c = Candidate {
                            die: id,
                            unit: ui,
                            entry: code.entry,
                            end: code.end,
                            ranges: code.ranges,
                            name,
                            frame: None,
                            call_line: None,
                        };
                        if keep(&c) {
                            out.push(c);
                        }
                    }
                }
                dw::DW_TAG_namespace | dw::DW_TAG_class_type | dw::DW_TAG_structure_type
                    if depth < 16 =>
                {
                    self.scan_node(ui, u, child, keep, out, depth + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The code of a subprogram or inlined copy: its entry address, the
    /// end of the range holding it and every range; `None` for
    /// declarations, abstract instances and copies with no code.
    /// `entry_pc`: honour `DW_AT_entry_pc` (inlined copies, where the
    /// entry need not be the lowest address).
    pub(super) fn code_range(
        &self,
        u: &UnitInfo,
        e: &Entry<'_>,
        entry_pc: bool,
    ) -> gimli::Result<Option<CodeRange>> {
        if matches!(
            e.attr_value(dw::DW_AT_declaration)?,
            Some(AttributeValue::Flag(true))
        ) {
            return Ok(None);
        }
        let low = match e.attr_value(dw::DW_AT_low_pc)? {
            Some(v) => self.dwarf.attr_address(&u.unit, v)?,
            None => None,
        };
        let mut ranges = Vec::new();
        let mut it = self.dwarf.die_ranges(&u.unit, e)?;
        while let Some(r) = it.next()? {
            if r.begin < r.end {
                ranges.push((r.begin, r.end));
            }
        }
        // With no low_pc the entry is where the first listed range begins,
        // not the lowest address: gcc lists a function split into hot and
        // cold parts (`f` and `f.cold`) hot part first, and the cold part
        // usually lies lower (`.text.unlikely` comes first). stap takes
        // the first listed range too (elfutils lists empty ranges, which
        // gimli skips: where an inlined copy's list starts with an empty
        // range, stap's probe is a few bytes before ours, at the start of
        // that empty range).
        let first_listed = ranges.first().map(|r| r.0);
        ranges.sort_unstable();
        let lowest = low.or_else(|| ranges.first().map(|r| r.0));
        let entry_attr = match entry_pc {
            true => e.attr_value(dw::DW_AT_entry_pc)?,
            false => None,
        };
        let pc = match entry_attr {
            // DWARF 5 lets the entry pc be a constant: an offset from the
            // base address (low_pc, else the lowest address).
            Some(v) => match v.udata_value() {
                Some(off) => lowest.map(|l| l.wrapping_add(off)),
                None => self.dwarf.attr_address(&u.unit, v)?,
            },
            None => None,
        };
        let Some(lowest) = lowest else {
            // An inlined copy whose ranges are all empty (gcc folded its
            // code into its caller's) but which has an entry pc: the call
            // happens there, and stap probes it there. With no address at
            // all there is nothing.
            return Ok(pc.filter(|&a| a != 0).map(|entry| CodeRange {
                entry,
                end: entry,
                ranges,
            }));
        };
        // gcc's entry pc often starts an empty range (a location view): it
        // need not lie inside a range, and is where the copy begins all
        // the same.
        if let Some(entry) = pc {
            let end = ranges
                .iter()
                .find(|r| r.0 <= entry && entry < r.1)
                .map_or(entry, |r| r.1);
            return Ok(Some(CodeRange { entry, end, ranges }));
        }
        let entry = low.or(first_listed).unwrap_or(lowest);
        let end = ranges
            .iter()
            .find(|r| r.0 <= entry && entry < r.1)
            .map(|r| r.1);
        // A zero low_pc outside every range is a discarded (GC'd) copy.
        Ok(end.map(|end| CodeRange { entry, end, ranges }))
    }

    /// The instance `c` with its variables located at its probe address,
    /// or at `at`. `blocks`: lexical blocks inside it (outermost first)
    /// whose variables are in scope too; an inner one hides an outer
    /// variable of the same name.
    pub(super) fn function_info(
        &self,
        c: &Candidate,
        cfi: &mut Cfi<'_>,
        at: Option<u64>,
        blocks: &[DieId],
    ) -> Result<FunctionInfo> {
        let u = &self.units[0][c.unit];
        let own = self.attrs(c.die)?;
        let sub_origin = own.origin;
        // An inlined copy runs in the frame of the function that holds it.
        let (frame_die, frame_entry) = c.frame.unwrap_or((c.die, c.entry));
        let frame_base = {
            let run = || -> gimli::Result<Option<AttributeValue<R>>> {
                let e = u
                    .unit
                    .entry(gimli::UnitOffset(frame_die.offset - u.start))?;
                e.attr_value(dw::DW_AT_frame_base)
            };
            run().map_err(|e| self.err(format!("reading DIE {frame_die}"), e))?
        };
        let (name, ret) = self.name_and_type(own)?;
        // The variables: own children, named through their origins.
        let mut params: Vec<(DieAttrs, Option<String>, Option<DieId>)> = Vec::new();
        let mut locals = Vec::new();
        for child in self.children(c.die)? {
            let is_param = child.tag == dw::DW_TAG_formal_parameter;
            if !is_param && child.tag != dw::DW_TAG_variable {
                continue;
            }
            let (n, t) = self.name_and_type(child.clone())?;
            if is_param {
                params.push((child, n, t));
            } else {
                locals.push((child, n, t));
            }
        }
        for &block in blocks {
            for child in self.children(block)? {
                if child.tag != dw::DW_TAG_variable {
                    continue;
                }
                let (n, t) = self.name_and_type(child.clone())?;
                if n.is_some() {
                    locals.retain(|(_, old, _)| *old != n);
                }
                locals.push((child, n, t));
            }
        }
        // A clone may reorder or drop parameters: list them in the abstract
        // instance's (declaration) order; dropped ones are optimized out.
        let mut dropped = Vec::new();
        if let Some(abs) = sub_origin {
            let mut ordered = Vec::new();
            for (id, attrs) in self
                .children_ids(abs)?
                .into_iter()
                .filter(|(_, a)| a.tag == dw::DW_TAG_formal_parameter)
            {
                match params.iter().position(|(p, _, _)| p.origin == Some(id)) {
                    Some(pos) => ordered.push(params.remove(pos)),
                    None => {
                        let (n, t) = self.name_and_type(attrs)?;
                        dropped.push((ordered.len() + dropped.len(), n, t));
                    }
                }
            }
            ordered.append(&mut params);
            params = ordered;
        }
        // Where the probe goes.
        let optimized = match u.producer.as_deref().and_then(producer_optimized) {
            Some(o) => o,
            None => {
                let any_list = params.iter().chain(&locals).any(|(a, _, _)| {
                    matches!(
                        a.location,
                        Some(
                            AttributeValue::LocationListsRef(_)
                                | AttributeValue::DebugLocListsIndex(_)
                        )
                    )
                });
                let any_slot = params.iter().any(|(a, _, _)| match &a.location {
                    Some(AttributeValue::Exprloc(e)) => uses_frame_base(e, u.unit.encoding()),
                    _ => false,
                });
                any_list || !any_slot
            }
        };
        let probe_address = if let Some(pc) = at {
            pc
        } else if optimized || c.frame.is_some() {
            // An inlined copy has no prologue of its own.
            c.entry
        } else {
            self.after_prologue(u, c.entry, c.end)
                .map_err(|e| self.err("reading the line table", e))?
                .unwrap_or(c.entry)
        };
        let address = |i| self.dwarf.address(&u.unit, i);
        let cfa_here = cfi.cfa_at(probe_address, frame_entry);
        let cfa_reg = match &cfa_here {
            Ok(LocExpr::Reg(r, off)) => Some((*r, *off)),
            _ => None,
        };
        let ctx = EvalCtx {
            pc: probe_address,
            entry: frame_entry,
            cfa: cfa_here,
            encoding: u.unit.encoding(),
            address: &address,
        };
        let frame_base = match frame_base {
            None => Err("the function has no DW_AT_frame_base".to_string()),
            Some(v) => match self.expression_at(u, v, probe_address) {
                Ok(Some(expr)) => match eval(expr, &ctx, None) {
                    Outcome::Reg(r) => Ok(LocExpr::Reg(r, 0)),
                    Outcome::Mem(s) => Ok(s),
                    _ => Err("the frame base is not an address".to_string()),
                },
                Ok(None) => Err("the frame base has no location here".to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        let locate = |a: &DieAttrs| -> Result<ParamLocation> {
            if let Some(v) = &a.const_value {
                return Ok(constant(v));
            }
            let Some(v) = a.location.clone() else {
                return Ok(ParamLocation::OptimizedOut);
            };
            let expr = self
                .expression_at(u, v, probe_address)
                .map_err(|e| self.err(format!("location list of {}", c.die), e))?;
            Ok(match expr {
                None => ParamLocation::OptimizedOut,
                Some(expr) => to_location(eval(expr, &ctx, Some(&frame_base))),
            })
        };
        let handle = |t: Option<DieId>| TypeHandle(t.map_or(Ty::Void, Ty::Die));
        let mut out_params = Vec::new();
        for (a, n, t) in &params {
            out_params.push(TargetVar {
                name: n.clone().unwrap_or_default(),
                ty: handle(*t),
                location: locate(a)?,
            });
        }
        for (i, n, t) in dropped {
            let v = TargetVar {
                name: n.unwrap_or_default(),
                ty: handle(t),
                location: ParamLocation::OptimizedOut,
            };
            out_params.insert(i.min(out_params.len()), v);
        }
        out_params.retain(|p| !p.name.is_empty());
        let mut out_locals = Vec::new();
        for (a, n, t) in &locals {
            let Some(n) = n else { continue };
            out_locals.push(TargetVar {
                name: n.clone(),
                ty: handle(*t),
                location: locate(a)?,
            });
        }
        Ok(FunctionInfo {
            name: name.or_else(|| c.name.clone()).unwrap_or_default(),
            cu_name: u.name.clone(),
            die: c.die,
            inlined: c.frame.is_some(),
            call_line: c.call_line,
            no_probe: None,
            entry_address: c.entry,
            probe_address,
            params: out_params,
            locals: out_locals,
            return_type: ret.map(|t| TypeHandle(Ty::Die(t))),
            decl: self.declared_at(c.die),
            cfa: cfa_reg,
        })
    }

    pub(super) fn children_ids(&self, id: DieId) -> Result<Vec<(DieId, DieAttrs)>> {
        let u = self
            .unit_of(id)
            .ok_or_else(|| self.err(format!("DIE {id}"), "offset is outside every unit"))?;
        let run = || -> gimli::Result<Vec<(DieId, DieAttrs)>> {
            let mut tree = u
                .unit
                .entries_tree(Some(gimli::UnitOffset(id.offset - u.start)))?;
            let root = tree.root()?;
            let mut children = root.children();
            let mut out = Vec::new();
            while let Some(child) = children.next()? {
                let e = child.entry();
                let cid = DieId {
                    file: id.file,
                    offset: u.start + e.offset().0,
                };
                out.push((cid, self.attrs_of(id.file, u, e)?));
            }
            Ok(out)
        };
        run().map_err(|e| self.err(format!("reading children of DIE {id}"), e))
    }

    fn children(&self, id: DieId) -> Result<Vec<DieAttrs>> {
        Ok(self.children_ids(id)?.into_iter().map(|(_, a)| a).collect())
    }

    /// The expression of a location attribute valid at `pc`: the
    /// expression itself, or the location list entry covering `pc`
    /// (`DW_LLE_default_location` when none does). `None`: no location.
    fn expression_at(
        &self,
        u: &UnitInfo,
        v: AttributeValue<R>,
        pc: u64,
    ) -> gimli::Result<Option<gimli::Expression<R>>> {
        match v {
            AttributeValue::Exprloc(e) => Ok(Some(e)),
            AttributeValue::Block(b) => Ok(Some(gimli::Expression(b))),
            v => {
                let Some(mut list) = self.dwarf.attr_locations(&u.unit, v)? else {
                    return Ok(None);
                };
                let mut default = None;
                while let Some(le) = list.next()? {
                    if le.range.begin == 0 && le.range.end == u64::MAX {
                        default = Some(le.data);
                    } else if le.range.begin <= pc && pc < le.range.end {
                        return Ok(Some(le.data));
                    }
                }
                Ok(default)
            }
        }
    }

    /// The first address after the prologue of the function at
    /// `[entry, end)`: a line table row flagged `prologue_end`, else the
    /// first statement row on a new line or column.
    fn after_prologue(&self, u: &UnitInfo, entry: u64, end: u64) -> gimli::Result<Option<u64>> {
        let Some(program) = u.unit.line_program.clone() else {
            return Ok(None);
        };
        let mut rows = program.rows();
        let mut first: Option<(u64, u64)> = None;
        let mut new_line: Option<u64> = None;
        let mut marked: Option<u64> = None;
        while let Some((_, row)) = rows.next_row()? {
            let a = row.address();
            if row.end_sequence() || a < entry || a >= end {
                continue;
            }
            let line = row.line().map_or(0, |l| l.get());
            let col = match row.column() {
                gimli::ColumnType::LeftEdge => 0,
                gimli::ColumnType::Column(c) => c.get(),
            };
            if row.prologue_end() {
                marked = Some(marked.map_or(a, |m| m.min(a)));
            }
            if a == entry {
                first.get_or_insert((line, col));
            } else if let Some(f) = first {
                if row.is_stmt() && (line, col) != f {
                    new_line = Some(new_line.map_or(a, |n| n.min(a)));
                }
            }
        }
        Ok(marked.or(new_line))
    }
}

/// Whether the producer string says the unit was optimized: gcc records
/// its `-O` flag (no flag: `-O0`); `None` when it records no flags (clang).
fn producer_optimized(producer: &str) -> Option<bool> {
    let mut level = None;
    let mut flags = false;
    for w in producer.split_whitespace() {
        if w.starts_with('-') {
            flags = true;
        }
        if let Some(l) = w.strip_prefix("-O") {
            level = Some(l != "0");
        }
    }
    match level {
        Some(o) => Some(o),
        None if flags && producer.starts_with("GNU ") => Some(false),
        None => None,
    }
}

/// Whether a location expression goes through the frame base.
fn uses_frame_base(e: &gimli::Expression<R>, encoding: gimli::Encoding) -> bool {
    let mut ops = e.clone().operations(encoding);
    while let Ok(Some(op)) = ops.next() {
        if matches!(op, gimli::Operation::FrameOffset { .. }) {
            return true;
        }
    }
    false
}

fn constant(v: &AttributeValue<R>) -> ParamLocation {
    match v {
        AttributeValue::Sdata(n) => ParamLocation::Constant(*n),
        AttributeValue::Udata(n) => ParamLocation::Constant(*n as i64),
        AttributeValue::Data1(n) => ParamLocation::Constant(i64::from(*n)),
        AttributeValue::Data2(n) => ParamLocation::Constant(i64::from(*n)),
        AttributeValue::Data4(n) => ParamLocation::Constant(i64::from(*n)),
        AttributeValue::Data8(n) => ParamLocation::Constant(*n as i64),
        AttributeValue::Block(b) => match read_small(b) {
            Some(n) => ParamLocation::Constant(n),
            None => ParamLocation::Unsupported("a constant larger than 8 bytes".into()),
        },
        _ => ParamLocation::Unsupported("a DW_AT_const_value of an unexpected form".into()),
    }
}

/// Call frame information: the CFA rule at an address.
pub(super) struct Cfi<'a> {
    src: &'a Sources<'a>,
    eh_frame: Option<Option<(Vec<u8>, u64, gimli::BaseAddresses)>>,
    debug_frame: Option<Option<Vec<u8>>>,
}

impl<'a> Cfi<'a> {
    pub(super) fn new(src: &'a Sources<'a>) -> Cfi<'a> {
        Cfi {
            src,
            eh_frame: None,
            debug_frame: None,
        }
    }

    fn section(file: &ElfFile, name: &str) -> Option<(Vec<u8>, u64)> {
        let obj = file.object().ok()?;
        let s = obj.section_by_name(name)?;
        let data = s.uncompressed_data().ok()?;
        Some((data.into_owned(), s.address()))
    }

    /// The CFA at `pc` as `register + offset`. Without CFI for `pc`, the
    /// x86-64 rule at a function's first instruction (`rsp + 8`).
    fn cfa_at(&mut self, pc: u64, entry: u64) -> std::result::Result<LocExpr, String> {
        let code = self.src.code_file;
        let code_endian = endian(code);
        let eh = self.eh_frame.get_or_insert_with(|| {
            let (data, addr) = Self::section(code, ".eh_frame")?;
            let mut bases = gimli::BaseAddresses::default().set_eh_frame(addr);
            if let Some(text) = Self::section_addr(code, ".text") {
                bases = bases.set_text(text);
            }
            if let Some(got) = Self::section_addr(code, ".got") {
                bases = bases.set_got(got);
            }
            Some((data, addr, bases))
        });
        let mut ctx = Box::new(gimli::UnwindContext::<usize>::new());
        if let Some((data, _, bases)) = eh.as_ref() {
            let section = gimli::EhFrame::new(data, code_endian);
            match section.unwind_info_for_address(
                bases,
                &mut ctx,
                pc,
                gimli::EhFrame::cie_from_offset,
            ) {
                Ok(row) => return cfa_rule(row.cfa()),
                Err(gimli::Error::NoUnwindInfoForAddress) => {}
                Err(e) => return Err(format!("bad .eh_frame: {e}")),
            }
        }
        let dbg = self.src.dwarf_file;
        let df = self
            .debug_frame
            .get_or_insert_with(|| Self::section(dbg, ".debug_frame").map(|(d, _)| d));
        if let Some(data) = df.as_ref() {
            let mut section = gimli::DebugFrame::new(data, endian(dbg));
            section.set_address_size(dbg.pointer_size());
            let bases = gimli::BaseAddresses::default();
            match section.unwind_info_for_address(
                &bases,
                &mut ctx,
                pc,
                gimli::DebugFrame::cie_from_offset,
            ) {
                Ok(row) => return cfa_rule(row.cfa()),
                Err(gimli::Error::NoUnwindInfoForAddress) => {}
                Err(e) => return Err(format!("bad .debug_frame: {e}")),
            }
        }
        if pc == entry && code.pointer_size() == 8 {
            // x86-64: the call just pushed the return address.
            return Ok(LocExpr::Reg(7, 8));
        }
        Err(format!("no call frame information for address {pc:#x}"))
    }

    fn section_addr(file: &ElfFile, name: &str) -> Option<u64> {
        let obj = file.object().ok()?;
        Some(obj.section_by_name(name)?.address())
    }
}

fn cfa_rule(rule: &gimli::CfaRule<usize>) -> std::result::Result<LocExpr, String> {
    match rule {
        gimli::CfaRule::RegisterAndOffset { register, offset } => {
            Ok(LocExpr::Reg(register.0, *offset))
        }
        gimli::CfaRule::Expression(_) => Err("the CFA is a DWARF expression here".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_names() {
        assert_eq!(x86_64_register_name(0), Some("rax"));
        assert_eq!(x86_64_register_name(5), Some("rdi"));
        assert_eq!(x86_64_register_name(7), Some("rsp"));
        assert_eq!(x86_64_register_name(15), Some("r15"));
        assert_eq!(x86_64_register_name(16), Some("rip"));
        assert_eq!(x86_64_register_name(17), None);
    }

    #[test]
    fn producers() {
        assert_eq!(
            producer_optimized("GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O2"),
            Some(true)
        );
        assert_eq!(
            producer_optimized("GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O0"),
            Some(false)
        );
        assert_eq!(
            producer_optimized("GNU C17 12.2.0 -mtune=generic -march=x86-64 -g"),
            Some(false)
        );
        assert_eq!(producer_optimized("GNU C17 12.2.0 -g -Os"), Some(true));
        assert_eq!(producer_optimized("clang version 16.0.6"), None);
    }
}
