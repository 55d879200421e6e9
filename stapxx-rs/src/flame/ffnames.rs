//! LuaJIT's fast-function names (`string.byte` for `builtin#78`), read
//! from the LuaJIT build itself.
//!
//! A fast function's id is an enumerator of LuaJIT's `FastFunc` enum
//! (`lj_ff.h`: `FF_LUA_`, `FF_C_`, then `FF_<name>` for every library
//! function, then `FF__MAX`). LuaJIT's build tool `buildvm` generates the
//! list from the `lib_*.c` sources, so the numbers differ between versions,
//! forks and build options: they have to come from the binary that ran.
//!
//! The name `jit.vmdef` gives (what `-jp` prints) is not the enumerator's
//! name as it is: buildvm writes it with the underscores *within the
//! length of the library module's name* turned into dots, the module being
//! the `LJLIB_MODULE_<name>` section the function is defined in
//! (`io_method_close` in module `io_method` is `io.method.close`;
//! `ipairs_aux` in module `base` stays; OpenResty's `thread_exdata`,
//! defined in module `coroutine`, becomes `thread.exdata`). So the module
//! of every function is needed, and buildvm leaves it in the binary: each
//! module's init table `lj_lib_init_<module>` (a static array the library
//! registers from) starts with the id of the module's first function
//! (one byte). With the modules' first ids, every id falls in exactly one
//! module's range.
//!
//! [`derive`] is that rule on plain data; [`from_module`] reads the data
//! from a module's DWARF and static data. A LuaJIT with no debug info
//! anywhere, read through a shipped layout (`debuginfo::layouts`), has its
//! init tables unnamed: the layout file carries copies of its build's
//! tables, and each must be found in the file byte for byte (names of the
//! functions included) before that build's numbering is taken as the
//! file's. Where something is missing, the error says what was looked
//! for, and the frames keep their numbers.

use std::collections::BTreeMap;

use crate::debuginfo::{layouts, DebugSource, Module};

/// The enumerator that identifies LuaJIT's `FastFunc` enumeration (the
/// typedef's name is usually not in the DWARF: nothing uses it as a type).
pub const MAX_ENUMERATOR: &str = "FF__MAX";
/// The last enumerator before the library functions (`FF_C_ = FF_C`).
const LAST_NON_LIBRARY: &str = "FF_C_";
/// A function of LuaJIT's own API (`luajit.h`) that every LuaJIT 2 has,
/// exported or in `.symtab`: the sign that a file is LuaJIT.
const API_FUNCTION: &str = "luaJIT_setmode";
/// The prefix of the library modules' init tables.
pub const INIT_TABLE_PREFIX: &str = "lj_lib_init_";

/// The fast-function names of one LuaJIT build, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastNames {
    names: BTreeMap<u32, String>,
}

impl FastNames {
    /// The name of fast function `id` (none for ids that are not library
    /// functions of this build).
    pub fn get(&self, id: u32) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }

    /// Every (id, name), by id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().map(|(i, n)| (*i, n.as_str()))
    }

    /// The smallest and largest id, if any.
    pub fn id_range(&self) -> Option<(u32, u32)> {
        Some((*self.names.keys().next()?, *self.names.keys().next_back()?))
    }
}

/// A library module of buildvm's (`LJLIB_MODULE_<name>`): its name and the
/// first byte of its init table, the low 8 bits of its first function's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibModule {
    pub name: String,
    pub first_id_byte: u8,
}

/// buildvm's name for function `func` (the enumerator without `FF_`) of
/// library module `module`: each `_` at positions 1 to the module name's
/// length becomes `.` (position 0 is never changed).
pub fn vmdef_name(func: &str, module: &str) -> String {
    func.char_indices()
        .map(|(i, c)| {
            if c == '_' && i >= 1 && i <= module.len() {
                '.'
            } else {
                c
            }
        })
        .collect()
}

/// The names of the library functions among `enumerators` (the whole
/// `FastFunc` enum), each in the module whose range holds its id.
pub fn derive(enumerators: &[(String, i64)], modules: &[LibModule]) -> Result<FastNames, String> {
    let value_of = |name: &str| {
        enumerators
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("the enumeration has no {name}"))
    };
    let first = value_of(LAST_NON_LIBRARY)? + 1;
    let end = value_of(MAX_ENUMERATOR)?;
    // id -> function name without `FF_`.
    let mut funcs: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, v) in enumerators {
        if (first..end).contains(v) {
            let func = name
                .strip_prefix("FF_")
                .ok_or_else(|| format!("enumerator {name} ({v}) is not FF_<name>"))?;
            if funcs.insert(*v, func).is_some() {
                return Err(format!("two enumerators have the value {v}"));
            }
        }
    }
    if funcs.len() as i64 != end - first {
        return Err(format!(
            "the ids {first} to {} are not all enumerators ({} are)",
            end - 1,
            funcs.len()
        ));
    }
    // The first id of each module, from its byte: the one id in range with
    // those low 8 bits (or `end`: a module with no function after all
    // others). Past 256 functions several ids fit; the module's own
    // first function (named after it) then decides.
    let mut starts: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for m in modules {
        let fits: Vec<i64> = (first..=end)
            .filter(|id| id & 0xff == i64::from(m.first_id_byte))
            .collect();
        let start = match fits.as_slice() {
            [one] => *one,
            [] => {
                return Err(format!(
                    "module {}'s first id (byte {}) is outside {first} to {end}",
                    m.name, m.first_id_byte
                ))
            }
            many => {
                let named: Vec<i64> = many
                    .iter()
                    .copied()
                    .filter(|id| {
                        funcs
                            .get(id)
                            .is_some_and(|f| f.starts_with(&format!("{}_", m.name)))
                    })
                    .collect();
                match named.as_slice() {
                    [one] => *one,
                    _ => {
                        return Err(format!(
                            "module {}'s first id (byte {}) could be any of {many:?}",
                            m.name, m.first_id_byte
                        ))
                    }
                }
            }
        };
        starts.entry(start).or_default().push(&m.name);
    }
    let mut names = BTreeMap::new();
    for (&id, func) in &funcs {
        let Some((&start, mods)) = starts.range(..=id).next_back() else {
            return Err(format!("no library module holds {func} ({id})"));
        };
        let module = match mods.as_slice() {
            [one] => *one,
            // Modules starting at the same id: all but one are empty; the
            // one holding functions is named by its first one.
            many => {
                let head = funcs.get(&start).copied().unwrap_or_default();
                let own: Vec<&&str> = many
                    .iter()
                    .filter(|m| head.starts_with(&format!("{m}_")))
                    .collect();
                match own.as_slice() {
                    [one] => **one,
                    _ => {
                        return Err(format!(
                            "modules {} all start at id {start}",
                            many.join(", ")
                        ))
                    }
                }
            }
        };
        names.insert(id as u32, vmdef_name(func, module));
    }
    Ok(FastNames { names })
}

/// The fast-function names of the LuaJIT in `module` (a LuaJIT executable
/// or libluajit), from its DWARF: the `FastFunc` enumerators and the init
/// tables of the library modules (their first byte read from the file).
pub fn from_module(module: &Module) -> Result<FastNames, String> {
    let file = module.elf().path().display().to_string();
    // A cheap look at the symbols first: the DWARF of a program that is
    // not LuaJIT (a C flame graph of anything) is not worth loading.
    let symbols = module.own_symbols().map_err(|e| e.to_string())?;
    if symbols.function(API_FUNCTION).is_none() {
        return Err(format!(
            "{file} is not LuaJIT (it has no {API_FUNCTION} symbol)"
        ));
    }
    let enumerators = module.enumeration_with(MAX_ENUMERATOR).map_err(|e| {
        format!("looking for LuaJIT's FastFunc enumeration ({MAX_ENUMERATOR}, lj_ff.h): {e}")
    })?;
    if let Ok(DebugSource::Shipped(layout)) = module.debug_source() {
        let modules = shipped_modules(module, layout)?;
        return derive(&enumerators, &modules).map_err(|e| format!("{file}: {e}"));
    }
    let tables = module
        .variables_with_prefix(INIT_TABLE_PREFIX)
        .map_err(|e| e.to_string())?;
    if tables.is_empty() {
        return Err(format!(
            "{file} has no {INIT_TABLE_PREFIX}* variables (LuaJIT's library modules) in its DWARF"
        ));
    }
    let mut modules = Vec::new();
    for table in &tables {
        let var = module.variable(table).map_err(|e| e.to_string())?;
        let byte = module
            .static_bytes(var.link_address, 1)
            .map_err(|e| format!("reading {table}: {e}"))?;
        modules.push(LibModule {
            name: table[INIT_TABLE_PREFIX.len()..].to_string(),
            first_id_byte: byte[0],
        });
    }
    derive(&enumerators, &modules).map_err(|e| format!("{file}: {e}"))
}

/// The library modules of a file read through the shipped layout
/// `layout`: the layout's copies of its build's init tables, each of which
/// must be in the file byte for byte (the module's first fast-function id,
/// then its functions' names and data). Found all, the file's fast
/// functions are numbered as the layout's build numbers them; a table
/// missing means another build, and no name is given.
fn shipped_modules(module: &Module, layout: &str) -> Result<Vec<LibModule>, String> {
    let file = module.elf().path().display().to_string();
    let shipped = layouts::by_name(layout).ok_or_else(|| format!("no shipped layout {layout}"))?;
    let tables = shipped
        .lib_init_tables()
        .map_err(|e| format!("reading the shipped layout {layout}: {e}"))?;
    if tables.is_empty() {
        return Err(format!(
            "the shipped layout {layout} has no library init tables"
        ));
    }
    let mut modules = Vec::new();
    for (name, bytes) in tables {
        if bytes.is_empty() || !module.elf().contains(&bytes) {
            return Err(format!(
                "{file} is read through the shipped layout {layout}, but it does not hold that build's init table of library module '{name}' ({} bytes), so its fast-function ids may differ",
                bytes.len()
            ));
        }
        modules.push(LibModule {
            name,
            first_id_byte: bytes[0],
        });
    }
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    fn module(name: &str, first: u8) -> LibModule {
        LibModule {
            name: name.into(),
            first_id_byte: first,
        }
    }

    #[test]
    fn buildvm_rule() {
        assert_eq!(vmdef_name("string_byte", "string"), "string.byte");
        assert_eq!(
            vmdef_name("io_method_close", "io_method"),
            "io.method.close"
        );
        assert_eq!(
            vmdef_name("ffi_meta___index", "ffi_meta"),
            "ffi.meta.__index"
        );
        assert_eq!(
            vmdef_name("jit_util_funcinfo", "jit_util"),
            "jit.util.funcinfo"
        );
        assert_eq!(
            vmdef_name("string_gmatch_aux", "string"),
            "string.gmatch_aux"
        );
        // Only the module name's length counts, not its text.
        assert_eq!(vmdef_name("ipairs_aux", "base"), "ipairs_aux");
        assert_eq!(vmdef_name("thread_exdata", "coroutine"), "thread.exdata");
        assert_eq!(vmdef_name("_x_y", "ab"), "_x.y");
        assert_eq!(vmdef_name("", "base"), "");
    }

    /// A small FastFunc: base, then coroutine (whose last function is not
    /// named after it), then io_method and io (a module name that is a
    /// prefix of another's).
    fn small() -> Vec<(String, i64)> {
        en(&[
            ("FF_LUA_", 0),
            ("FF_C_", 1),
            ("FF_assert", 2),
            ("FF_ipairs_aux", 3),
            ("FF_coroutine_wrap_aux", 4),
            ("FF_thread_exdata", 5),
            ("FF_io_method_close", 6),
            ("FF_io_open", 7),
            ("FF__MAX", 8),
        ])
    }

    #[test]
    fn names_by_module_ranges() {
        let mods = [
            module("io", 7),
            module("base", 2),
            module("io_method", 6),
            module("coroutine", 4),
        ];
        let n = derive(&small(), &mods).unwrap();
        let all: Vec<(u32, &str)> = n.iter().collect();
        assert_eq!(
            all,
            [
                (2, "assert"),
                (3, "ipairs_aux"),
                (4, "coroutine.wrap_aux"),
                (5, "thread.exdata"),
                (6, "io.method.close"),
                (7, "io.open"),
            ]
        );
        assert_eq!(n.get(0), None);
        assert_eq!(n.get(1), None);
        assert_eq!(n.get(8), None);
        assert_eq!(n.id_range(), Some((2, 7)));
    }

    #[test]
    fn empty_modules_and_shared_starts() {
        // `jit_opt` has no functions and starts where `io` does; a module
        // after all functions starts at FF__MAX.
        let mods = [
            module("base", 2),
            module("coroutine", 4),
            module("io_method", 6),
            module("jit_opt", 7),
            module("io", 7),
            module("late", 8),
        ];
        let n = derive(&small(), &mods).unwrap();
        assert_eq!(n.get(7), Some("io.open"));
        // Two modules starting at one id whose first function names
        // neither: no guess.
        let mods = [module("base", 2), module("x", 2)];
        let e = derive(&small(), &mods).unwrap_err();
        assert_eq!(e, "modules base, x all start at id 2");
    }

    #[test]
    fn more_than_256_functions() {
        // 300 functions: modules `a` (ids 2..=257) and `b` (258..=301);
        // b's byte, 2, also fits a's start, where b's name decides.
        let mut list = vec![("FF_LUA_".to_string(), 0), ("FF_C_".to_string(), 1)];
        for id in 2..258 {
            list.push((format!("FF_a_f{id}"), id));
        }
        for id in 258..302 {
            list.push((format!("FF_b_g{id}"), id));
        }
        list.push(("FF__MAX".to_string(), 302));
        let n = derive(&list, &[module("a", 2), module("b", 2)]).unwrap();
        assert_eq!(n.get(2), Some("a.f2"));
        assert_eq!(n.get(257), Some("a.f257"));
        assert_eq!(n.get(258), Some("b.g258"));
        assert_eq!(n.get(301), Some("b.g301"));
    }

    #[test]
    fn damaged_input_is_an_error() {
        let mods = [module("base", 2)];
        let no_max: Vec<(String, i64)> = small()
            .into_iter()
            .filter(|(n, _)| n != "FF__MAX")
            .collect();
        assert_eq!(
            derive(&no_max, &mods).unwrap_err(),
            "the enumeration has no FF__MAX"
        );
        let mut gap = small();
        gap.retain(|(n, _)| n != "FF_io_open");
        assert_eq!(
            derive(&gap, &mods).unwrap_err(),
            "the ids 2 to 7 are not all enumerators (5 are)"
        );
        assert_eq!(
            derive(&small(), &[module("base", 3), module("io", 200)]).unwrap_err(),
            "module io's first id (byte 200) is outside 2 to 8"
        );
        assert_eq!(
            derive(&small(), &[module("io", 7)]).unwrap_err(),
            "no library module holds assert (2)"
        );
    }
}
