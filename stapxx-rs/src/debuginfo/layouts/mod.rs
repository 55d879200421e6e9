//! LuaJIT struct layouts shipped with stapxx-rs, for a libluajit (or an
//! executable with LuaJIT linked in) that has no DWARF anywhere: Debian's
//! `libluajit-5.1-2` and `libluajit2-5.1-2`, and most container images.
//!
//! Each layout is the DWARF type information of one LuaJIT source tree
//! built one way, and nothing else: `data/luajit-layouts/generate.sh`
//! compiles `types.c` (LuaJIT's internal headers) with `-g` and keeps only
//! the debug sections. The tapsets read those types through `@cast` as they
//! read a `-g` build's.
//!
//! A layout is used only after it passes every check of [`checks`] against
//! the library's own machine code (its exported `lua_*` functions read the
//! members where the layout puts them), and only when exactly one layout
//! passes; a library none fits gets an error naming, per layout, the first
//! check that failed. A library that exports no `luaJIT_setmode` is not
//! LuaJIT and is not tried.

mod checks;
mod code;

use std::path::Path;

use super::{Dwarf, ElfFile, Resolver, SymbolTable};

/// One shipped layout.
pub struct Shipped {
    /// Source, version and object layout, e.g.
    /// `luajit2-openresty-2.1-20230119-gc64`.
    pub name: &'static str,
    bytes: &'static [u8],
}

/// The ELF reader needs its data aligned as the ELF headers are (8 bytes);
/// `include_bytes!` alone gives no alignment.
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        &[$(Shipped {
            name: $name,
            bytes: {
                const A: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
                    "../../../data/luajit-layouts/", $name, ".debug"
                )));
                &A.0
            },
        }),*]
    };
}

/// Every shipped layout: upstream LuaJIT 2.1 as Debian 12 packages it
/// (`luajit`, `libluajit-5.1-2`) and OpenResty's luajit2 (`libluajit2-5.1-2`),
/// each in both object layouts (GC64, the x86-64 default, and
/// `LUAJIT_DISABLE_GC64`).
pub const SHIPPED: &[Shipped] = shipped![
    "luajit-2.1.0-beta3-20220320-gc64",
    "luajit-2.1.0-beta3-20220320-nogc64",
    "luajit2-openresty-2.1-20230119-gc64",
    "luajit2-openresty-2.1-20230119-nogc64",
];

/// The prefix of the copies of the library modules' init tables in a
/// layout file (`generate.sh` names `lj_lib_init_<module>` so).
pub const LIB_INIT_PREFIX: &str = "stapxx_lib_init_";

/// The shipped layout called `name`.
pub fn by_name(name: &str) -> Option<&'static Shipped> {
    SHIPPED.iter().find(|s| s.name == name)
}

/// The symbol that marks a LuaJIT build (Lua 5.1 has none of `luaJIT_*`).
const MARKER: &str = "luaJIT_setmode";

/// What the shipped layouts say of a file.
pub enum Outcome {
    /// The file is not LuaJIT.
    NotLuaJit,
    /// This layout, and only it, fits: its ELF file and the DWARF loaded
    /// from it for the checks.
    Fits(&'static Shipped, ElfFile, Box<Dwarf>),
    /// None fits: per layout, why (the first failed check).
    NoneFits(Vec<String>),
}

impl Shipped {
    /// The layout's ELF file (its debug sections only).
    pub fn elf(&self) -> super::Result<ElfFile> {
        ElfFile::from_static(
            Path::new(&format!("<shipped layout {}>", self.name)),
            self.bytes,
        )
    }

    /// The library modules' init tables of the build this layout was made
    /// from: (module, bytes), by module name. Their first byte is the id
    /// of the module's first fast function.
    pub fn lib_init_tables(&self) -> super::Result<Vec<(String, Vec<u8>)>> {
        let m = super::Module::from_elf(self.elf()?);
        let mut out = Vec::new();
        for name in m.variables_with_prefix(LIB_INIT_PREFIX)? {
            let var = m.variable(&name)?;
            let len = m.resolver()?.size_of(&var.ty)?;
            let bytes = m.static_bytes(var.link_address, len)?;
            out.push((name[LIB_INIT_PREFIX.len()..].to_string(), bytes));
        }
        Ok(out)
    }

    /// Why this layout (its DWARF `dwarf`) does not fit `elf`, if it does
    /// not.
    fn misfit(
        &self,
        dwarf: &Dwarf,
        elf: &ElfFile,
        symbols: &SymbolTable,
    ) -> super::Result<Option<String>> {
        let r = Resolver::new(dwarf, 8);
        for check in checks::CHECKS {
            let Some(sym) = symbols.function(check.function) else {
                return Ok(Some(format!("{} is not exported", check.function)));
            };
            let Some(code) = elf.bytes_at(sym.address, sym.size) else {
                return Ok(Some(format!("{} has no code in the file", check.function)));
            };
            let observed = code::observe(code, sym.address);
            for e in check.expect {
                if let Err(why) = checks::meets(&r, e, &observed)? {
                    return Ok(Some(format!("{} {why}", check.function)));
                }
            }
        }
        Ok(None)
    }
}

/// The shipped layout that fits `elf` (whose symbols are `symbols`).
pub fn find(elf: &ElfFile, symbols: &SymbolTable) -> super::Result<Outcome> {
    // Only x86-64 code is decoded; the layouts are x86-64 builds too.
    if symbols.function(MARKER).is_none() || !elf.is_64() || !elf.is_little_endian() {
        return Ok(Outcome::NotLuaJit);
    }
    let mut fits = Vec::new();
    let mut misfits = Vec::new();
    for s in SHIPPED {
        let layout = s.elf()?;
        let dwarf = Dwarf::load(&layout, None)?;
        match s.misfit(&dwarf, elf, symbols)? {
            None => fits.push((s, layout, dwarf)),
            Some(why) => misfits.push(format!("{}: {why}", s.name)),
        }
    }
    if fits.len() == 1 {
        let (s, layout, dwarf) = fits.pop().expect("one");
        return Ok(Outcome::Fits(s, layout, Box::new(dwarf)));
    }
    match fits.as_slice() {
        [] => Ok(Outcome::NoneFits(misfits)),
        several => Ok(Outcome::NoneFits(vec![format!(
            "{} all fit its code, so it is not known which is right",
            several
                .iter()
                .map(|(s, ..)| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        )])),
    }
}
