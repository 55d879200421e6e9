//! Target debuginfo: ELF symbols and DWARF types of the executables and DSOs
//! a script probes.
//!
//! A [`Module`] is one ELF file of the target (what stap calls a module: the
//! `$^exec_path` or `$^libluajit_path` argument of `@cast`/`@var`). It answers:
//!
//! * `@cast(p, "GCproto", mod)->chunkname`: [`Module::resolve_cast`] turns the
//!   member chain into explicit reads ([`Resolved`]: a list of [`Access`] on
//!   the current address, then a [`Fetch`]); see [`layout`] for the model.
//! * `@var("globalL", mod)`, `@var("name@file.c")`: [`Module::resolve_var`]
//!   gives the variable's link-time address and the chain; the runtime
//!   address is `link_address + bias` with the bias from [`Module::load_bias`]
//!   (or [`symbols::load_bias`]) and the file's `/proc/PID/maps` lines.
//! * `sizeof(T)` (stap's `&@cast(0, "T")[1]`): [`Module::size_of_type`].
//! * `$param`, `$$parms`, `$return` in `process(..).function(..)` probes:
//!   [`Module::function_params`] finds the function's definition and where
//!   each parameter is at the probe address ([`params`]).
//! * every instance of `process(..).function(..)`, inlined copies included
//!   (`.call`/`.inline`): [`Module::function_instances`].
//! * `process(..).statement("f@file.c:N")`: [`Module::statement_sites`].
//! * `process(..).plt("name")`: [`Module::plt_entries`] ([`plt`]).
//! * uprobe placement and `usymname`/`probefunc`: [`Module::symbols`] (sorted
//!   functions from `.symtab` and `.dynsym`) and [`Module::function_probes`]
//!   (pattern with `*` -> link address and file offset).
//!
//! DWARF comes from the file itself or from a separate debug file found by
//! build-id or `.gnu_debuglink` ([`locate`]), under a root prefix for
//! processes in containers; compressed sections and DWARF 4/5 are read, as
//! are dwz supplementary files. DWARF is loaded and indexed on first use, so a
//! module opened for its symbols only costs nothing more.
//!
//! Cost: opening, indexing and resolving the 77 `@cast`s of the GC64 LuaJIT
//! tapset against a `-g` build of LuaJIT 2.1's `libluajit.so` (68 compile
//! units) takes about 5 ms cold in a release build (25 ms unoptimized).

pub mod callsites;
pub mod cfi;
pub mod debuginfod;
pub mod decl;
pub mod dwarf;
pub mod elf;
mod enumerators;
pub mod error;
pub(crate) mod graph;
mod inlined;
pub mod layout;
pub mod layouts;
pub mod locate;
pub mod locexpr;
pub mod params;
pub mod plt;
mod scope;
pub mod sdt;
pub mod shape;
pub mod statements;
pub mod symbols;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use dwarf::Dwarf;
pub use elf::{ElfFile, ElfType, LoadSegment};
pub use error::{DebugError, LookedAt, Result};
pub use layout::{
    parse_chain, Access, Bitfield, Fetch, Index, Resolved, Resolver, Step, TypeHandle, ValueKind,
    ValueType,
};
pub use locate::{DebugSource, LocateOptions};
pub use symbols::{
    file_offset_to_vaddr, glob_match, load_bias, vaddr_to_file_offset, FunctionAddress, MapEntry,
    SymKind, Symbol, SymbolTable,
};

/// The DWARF of a module and where it came from.
struct Loaded {
    dwarf: Dwarf,
    source: DebugSource,
    /// The separate debug file, when one was used.
    debug_elf: Option<ElfFile>,
    /// With a shipped layout: the error saying where DWARF was looked for,
    /// for what only the file's own DWARF has (variables, functions, lines).
    no_dwarf: Option<DebugError>,
}

/// A variable found by `@var`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// Link-time address (add the load bias for the runtime address).
    pub link_address: u64,
    /// The compile unit that defines it, when DWARF says.
    pub cu_name: Option<String>,
    pub ty: TypeHandle,
}

/// `@var(...)->chain`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarResolved {
    pub variable: Variable,
    /// Applied from `variable.link_address + bias`.
    pub resolved: Resolved,
}

/// One ELF file of the target, with lazily loaded symbols and DWARF.
pub struct Module {
    target_path: PathBuf,
    opts: LocateOptions,
    elf: ElfFile,
    debug: OnceLock<Result<Loaded>>,
    symbols: OnceLock<Result<SymbolTable>>,
    /// [`params::described_functions`], once per module (every wildcard
    /// point asks [`Module::functions_without_dwarf`]).
    described: OnceLock<Result<params::Described>>,
    /// [`Module::enumeration_with`]'s answers, by enumerator.
    enums: enumerators::Cache,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("target_path", &self.target_path)
            .field("elf", &self.elf)
            .finish()
    }
}

impl Module {
    /// Opens a file of this host's file system (no root prefix).
    pub fn open(path: impl AsRef<Path>) -> Result<Module> {
        Self::open_in(path.as_ref(), LocateOptions::default())
    }

    /// Opens `target_path`, an absolute path in the target's file system,
    /// read through `opts.root` (`/proc/PID/root`); debug files are searched
    /// there too. A relative path is taken as it is (no root applied).
    pub fn open_in(target_path: &Path, opts: LocateOptions) -> Result<Module> {
        let host = if target_path.is_absolute() {
            opts.host_path(target_path)
        } else {
            target_path.to_path_buf()
        };
        Self::open_at(target_path, &host, opts)
    }

    /// Opens `target_path` of the target's file system by the host path
    /// `host` where it is read (which a process's own handle may give:
    /// [`crate::target::TargetInfo::open_module`]); debug files are
    /// searched under `opts`.
    pub fn open_at(target_path: &Path, host: &Path, opts: LocateOptions) -> Result<Module> {
        let elf = ElfFile::open(host)?.named(target_path);
        Ok(Module {
            target_path: target_path.to_path_buf(),
            opts,
            elf,
            debug: OnceLock::new(),
            symbols: OnceLock::new(),
            described: OnceLock::new(),
            enums: Default::default(),
        })
    }

    /// A module over an ELF file in memory (a shipped layout's), its
    /// DWARF its own.
    pub fn from_elf(elf: ElfFile) -> Module {
        Module {
            target_path: elf.name().to_path_buf(),
            opts: LocateOptions::default(),
            elf,
            debug: OnceLock::new(),
            symbols: OnceLock::new(),
            described: OnceLock::new(),
            enums: Default::default(),
        }
    }

    /// The path in the target's file system.
    pub fn target_path(&self) -> &Path {
        &self.target_path
    }

    /// The ELF file itself.
    pub fn elf(&self) -> &ElfFile {
        &self.elf
    }

    /// Read and index the DWARF now when the file carries its own (a
    /// prefetch on another thread; a debug file elsewhere, perhaps on a
    /// debuginfod server, is looked for only when asked).
    pub fn preload_embedded(&self) {
        if self.elf.has_debug_info() {
            let _ = self.loaded();
        }
    }

    fn loaded(&self) -> Result<&Loaded> {
        self.debug
            .get_or_init(|| self.load_debug())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load_debug(&self) -> Result<Loaded> {
        if self.elf.has_debug_info() {
            let alt = self.alt_file(&self.elf)?;
            return Ok(Loaded {
                dwarf: Dwarf::load(&self.elf, alt.as_ref())?,
                source: DebugSource::Embedded,
                debug_elf: None,
                no_dwarf: None,
            });
        }
        match locate::find_debug_file(&self.elf, &self.target_path, &self.opts) {
            Ok((dbg, source)) => {
                let alt = self.alt_file(&dbg)?;
                Ok(Loaded {
                    dwarf: Dwarf::load(&dbg, alt.as_ref())?,
                    source,
                    debug_elf: Some(dbg),
                    no_dwarf: None,
                })
            }
            Err(looked) => {
                let no_dwarf = |layouts| DebugError::NoDebugInfo {
                    file: self.elf.name().to_path_buf(),
                    build_id: self.elf.build_id_hex(),
                    debuglink: self.elf.debuglink().map(|l| l.name.clone()),
                    looked: looked.clone(),
                    layouts,
                };
                // Nothing anywhere: a LuaJIT may still be read through a
                // shipped layout that its machine code confirms.
                match layouts::find(&self.elf, &self.own_symbols()?)? {
                    layouts::Outcome::Fits(shipped, elf, dwarf) => Ok(Loaded {
                        dwarf: *dwarf,
                        source: DebugSource::Shipped(shipped.name),
                        debug_elf: Some(elf),
                        no_dwarf: Some(no_dwarf(Vec::new())),
                    }),
                    layouts::Outcome::NotLuaJit => Err(no_dwarf(Vec::new())),
                    layouts::Outcome::NoneFits(why) => Err(no_dwarf(why)),
                }
            }
        }
    }

    fn alt_file(&self, file: &ElfFile) -> Result<Option<ElfFile>> {
        locate::find_alt_file(file, &self.opts).map_err(|looked| {
            let alt = file.altlink();
            DebugError::NoDebugInfo {
                file: alt.map_or_else(|| file.name().to_path_buf(), |a| a.path.clone()),
                build_id: alt.map(|a| elf::hex(&a.build_id)),
                debuglink: None,
                looked,
                layouts: Vec::new(),
            }
        })
    }

    /// The file's own DWARF (its, a debug file's, a server's), not a
    /// shipped layout's types: what variables, functions and lines need.
    fn own_dwarf(&self) -> Result<&Loaded> {
        let loaded = self.loaded()?;
        match &loaded.no_dwarf {
            Some(e) => Err(e.clone()),
            None => Ok(loaded),
        }
    }

    /// Why the file has no DWARF of its own (where it was looked for),
    /// when it has none: a shipped layout gives types only.
    pub fn own_dwarf_error(&self) -> Option<DebugError> {
        self.own_dwarf().err()
    }

    /// The module's DWARF (loaded and indexed on first call).
    pub fn dwarf(&self) -> Result<&Dwarf> {
        self.loaded().map(|l| &l.dwarf)
    }

    /// Where the DWARF was found.
    pub fn debug_source(&self) -> Result<&DebugSource> {
        self.loaded().map(|l| &l.source)
    }

    /// A resolver for type names and member chains.
    pub fn resolver(&self) -> Result<Resolver<'_>> {
        Ok(Resolver::new(self.dwarf()?, self.elf.pointer_size()))
    }

    /// A type by C name (`struct GCproto`, `GCproto`, `unsigned long`, `char *`).
    pub fn find_type(&self, name: &str) -> Result<TypeHandle> {
        self.resolver()?.find_type(name)
    }

    /// `sizeof(name)`.
    pub fn size_of_type(&self, name: &str) -> Result<u64> {
        let r = self.resolver()?;
        r.size_of(&r.find_type(name)?)
    }

    /// `[&]@cast(p, "type_name")` followed by `steps`.
    pub fn resolve_cast(
        &self,
        type_name: &str,
        steps: &[Step],
        address_of: bool,
    ) -> Result<Resolved> {
        self.resolver()?.resolve_cast(type_name, steps, address_of)
    }

    /// Continues a chain from a type handle (e.g. a previous result's
    /// `value.handle`), with no implicit pointer.
    pub fn resolve_from(
        &self,
        ty: &TypeHandle,
        steps: &[Step],
        address_of: bool,
    ) -> Result<Resolved> {
        self.resolver()?.resolve(ty, false, steps, address_of)
    }

    /// `@var("name")` or `@var("name@cu_pattern")`: the variable's
    /// link-time address (from `DW_AT_location`, else the symbol table) and type.
    pub fn variable(&self, spec: &str) -> Result<Variable> {
        let (name, cu) = match spec.rsplit_once('@') {
            Some((n, cu)) if !cu.is_empty() => (n, Some(cu)),
            _ => (spec, None),
        };
        let loaded = self.loaded()?;
        if let (Some(_), DebugSource::Shipped(layout)) = (&loaded.no_dwarf, &loaded.source) {
            // Unknown, like a name that does not exist (so `@defined` is
            // false and a tapset takes its other way), and said plainly.
            return Err(DebugError::NotFound {
                what: format!(
                    "variable '{name}' (no DWARF: the file's types come from the shipped LuaJIT layout {layout}, which has no variables)"
                ),
                file: self.elf.name().to_path_buf(),
            });
        }
        let dwarf = &loaded.dwarf;
        let not_found = || {
            let nearest = layout::nearest(name, dwarf.variable_names(), 3);
            DebugError::VariableNotFound {
                name: name.to_string(),
                cu: cu.map(str::to_string),
                file: dwarf.path().to_path_buf(),
                nearest,
            }
        };
        let var = dwarf.find_variable(name, cu)?.ok_or_else(not_found)?;
        let ty = var.ty.ok_or_else(|| DebugError::BadAccess {
            ty: "<none>".into(),
            what: format!("variable '{name}' has no type in DWARF"),
        })?;
        let link_address = match var.address {
            Some(a) => a,
            None => match self.symbols()?.object(name) {
                Some(sym) => sym.address,
                None => {
                    return Err(DebugError::NotFound {
                        what: format!(
                            "an address for variable '{name}' ({}; no symbol either)",
                            var.location_problem
                                .as_deref()
                                .unwrap_or("DWARF gives no location")
                        ),
                        file: self.elf.name().to_path_buf(),
                    })
                }
            },
        };
        Ok(Variable {
            name: name.to_string(),
            link_address,
            cu_name: var.cu_name,
            ty: TypeHandle(layout::Ty::Die(ty)),
        })
    }

    /// `[&]@var("spec")` followed by `steps`.
    pub fn resolve_var(&self, spec: &str, steps: &[Step], address_of: bool) -> Result<VarResolved> {
        let variable = self.variable(spec)?;
        let resolved = self
            .resolver()?
            .resolve(&variable.ty, false, steps, address_of)?;
        Ok(VarResolved { variable, resolved })
    }

    /// The out-of-line definitions of the functions matching `spec` (a name
    /// or pattern, optionally `@file.c`) with their parameters, locals and
    /// return type, located at the address a function probe uses (see
    /// [`params`]).
    pub fn function_params(&self, spec: &str) -> Result<Vec<params::FunctionInfo>> {
        self.function_params_impl(spec, None)
    }

    /// Like [`Module::function_params`], with the locations valid at the
    /// link-time address `pc` (a statement probe); only the functions
    /// whose code holds `pc` are returned.
    pub fn function_params_at(&self, spec: &str, pc: u64) -> Result<Vec<params::FunctionInfo>> {
        self.function_params_impl(spec, Some(pc))
    }

    fn function_params_impl(
        &self,
        spec: &str,
        at: Option<u64>,
    ) -> Result<Vec<params::FunctionInfo>> {
        self.with_sources(|src| params::find_functions(src, spec, at))
    }

    /// Every instance of the functions matching `spec` (as for
    /// [`Module::function_params`]): the out-of-line definitions, then each
    /// inlined copy ([`params::FunctionInfo::inlined`], located at its entry
    /// pc), nested ones included. Inlined copies with no code left are
    /// listed with [`params::FunctionInfo::no_probe`] set. No match at all
    /// is an error naming the nearest function names.
    pub fn function_instances(&self, spec: &str) -> Result<Vec<params::FunctionInfo>> {
        self.with_sources(|src| inlined::find_instances(src, spec))
    }

    /// The calls that the functions matching `caller_spec` (as for
    /// [`Module::function_instances`]) make to the functions matching
    /// `callee_pattern` (`*` for `.callees`): `process(..).function(f)
    /// .callee(g)`. One [`callsites::Callee::Call`] per call instruction,
    /// one [`callsites::Callee::Inlined`] per inlined copy; calls through
    /// pointers are skipped (see [`Module::callee_sites`] for their count).
    /// No caller is an error naming the nearest functions; no matching
    /// call, one naming what the caller calls.
    pub fn callees(
        &self,
        caller_spec: &str,
        callee_pattern: &str,
    ) -> Result<Vec<callsites::Callee>> {
        self.callee_sites(caller_spec, callee_pattern)
            .map(|s| s.callees)
    }

    /// [`Module::callees`] with the number of calls through pointers.
    pub fn callee_sites(
        &self,
        caller_spec: &str,
        callee_pattern: &str,
    ) -> Result<callsites::CalleeSites> {
        // Only x86-64 stubs are decoded: elsewhere, imported callees found
        // in machine code go unnamed, and DWARF call sites still work.
        let plt = self.plt_entries().unwrap_or_default();
        self.with_sources(|src| callsites::find_callees(src, &plt, caller_spec, callee_pattern))
    }

    /// The sites of `process(..).statement(spec)`: `func@file.c:N`,
    /// `func@file.c:N-M` (`*` for any function; file and function may be
    /// globs, the file matched against the line table's names or their
    /// trailing path components) or a link-time address (`.absolute`).
    /// One site per line and function instance (inlined copies included),
    /// each with the variables in scope there, by address. A line without
    /// code is an error naming the nearest lines that have some.
    pub fn statement_sites(&self, spec: &str) -> Result<Vec<statements::StatementSite>> {
        self.with_sources(|src| statements::find_statements(src, spec))
    }

    /// Runs `f` on the files the DWARF readers need.
    fn with_sources<T>(&self, f: impl FnOnce(&params::Sources<'_>) -> Result<T>) -> Result<T> {
        let loaded = self.own_dwarf()?;
        let dwarf_file = loaded.debug_elf.as_ref().unwrap_or(&self.elf);
        let alt = self.alt_file(dwarf_file)?;
        let src = params::Sources {
            dwarf_file,
            alt: alt.as_ref(),
            code_file: &self.elf,
            symbols: self.symbols().ok(),
        };
        f(&src)
    }

    /// The symbols of the file itself (`.dynsym` and `.symtab`), without
    /// looking for a separate debug file: cheap, for `usymname` tables of
    /// every mapped library, and what loading the DWARF may read (which
    /// [`Module::symbols`] waits for).
    pub fn own_symbols(&self) -> Result<SymbolTable> {
        let mut all = self.elf.raw_symbols(true)?;
        if self.elf.has_symtab() {
            all.extend(self.elf.raw_symbols(false)?);
        }
        Ok(SymbolTable::new(all))
    }

    /// Functions and objects from `.symtab` (of the file, or of its separate
    /// debug file when the file is fully stripped) and `.dynsym`.
    pub fn symbols(&self) -> Result<&SymbolTable> {
        self.symbols
            .get_or_init(|| {
                let mut all = self.elf.raw_symbols(true)?;
                if self.elf.has_symtab() {
                    all.extend(self.elf.raw_symbols(false)?);
                } else {
                    if let Ok(Loaded {
                        debug_elf: Some(dbg),
                        ..
                    }) = self.own_dwarf()
                    {
                        all.extend(dbg.raw_symbols(false)?);
                    }
                }
                Ok(SymbolTable::new(all))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Functions matching a stap pattern (`lj_*`, exact names too) with the
    /// file offset a uprobe needs. An empty result is an error naming the
    /// pattern and the file.
    pub fn function_probes(&self, pattern: &str) -> Result<Vec<FunctionAddress>> {
        let table = self.symbols()?;
        let out = self.addresses_of(table.functions_matching(pattern));
        if out.is_empty() {
            let nearest = layout::nearest(
                pattern,
                table.functions().iter().map(|s| s.name.as_str()),
                3,
            );
            let mut what = format!("function '{pattern}'");
            if !nearest.is_empty() {
                what.push_str(&format!(" (nearest: {})", nearest.join(", ")));
            }
            return Err(DebugError::NotFound {
                what,
                file: self.elf.name().to_path_buf(),
            });
        }
        Ok(out)
    }

    /// The functions of the symbol table matching the wildcard `pattern`
    /// that DWARF does not describe: no subprogram has their name and none
    /// starts at their address (start-up code such as `_start`, the cold
    /// parts `f.cold` of split functions, assembly). stap probes these too
    /// when a wildcard matches them in a module that has DWARF; they have
    /// no target variables.
    pub fn functions_without_dwarf(&self, pattern: &str) -> Result<Vec<FunctionAddress>> {
        let Ok(table) = self.symbols() else {
            return Ok(Vec::new());
        };
        let (entries, names) = self
            .described
            .get_or_init(|| self.with_sources(params::described_functions))
            .as_ref()
            .map_err(Clone::clone)?;
        let mut matching = table.functions_matching(pattern);
        matching.retain(|(name, sym)| !entries.contains(&sym.address) && !names.contains(*name));
        Ok(self.addresses_of(matching))
    }

    /// Symbols with the file offset a uprobe needs (those outside every
    /// loadable segment dropped).
    fn addresses_of(&self, symbols: Vec<(&str, &symbols::Symbol)>) -> Vec<FunctionAddress> {
        symbols
            .into_iter()
            .filter_map(|(name, sym)| {
                let file_offset =
                    symbols::vaddr_to_file_offset(self.elf.load_segments(), sym.address)?;
                Some(FunctionAddress {
                    name: name.to_string(),
                    address: sym.address,
                    size: sym.size,
                    file_offset,
                })
            })
            .collect()
    }

    /// The load bias from this file's `/proc/PID/maps` entries.
    pub fn load_bias(&self, maps: &[MapEntry]) -> Result<u64> {
        symbols::load_bias(maps, self.elf.load_segments()).ok_or_else(|| DebugError::NotFound {
            what: format!(
                "a mapping covering a PT_LOAD segment among {} map entries",
                maps.len()
            ),
            file: self.elf.name().to_path_buf(),
        })
    }

    /// The SDT markers of `.note.stapsdt` (none when the file has no such
    /// section), for `.mark("name")` probes.
    pub fn sdt_markers(&self) -> Result<Vec<sdt::Marker>> {
        sdt::markers(&self.elf, || self.symbols())
    }

    /// Nearest symbol names, for messages.
    pub fn nearest_symbols(&self, name: &str) -> Vec<String> {
        match self.symbols() {
            Ok(t) => layout::nearest(name, t.names(), 3),
            Err(_) => Vec::new(),
        }
    }
}
