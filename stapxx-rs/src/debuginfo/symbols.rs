//! ELF symbols, address arithmetic between link-time addresses, file offsets
//! and runtime addresses.
//!
//! * [`SymbolTable`]: functions from `.symtab` and `.dynsym`, sorted by
//!   address for `usymname`/`probefunc` lookups (the same sorted table is what
//!   gets loaded into a BPF map for in-kernel binary search), plus data objects
//!   by name as a fallback for `@var`.
//! * [`vaddr_to_file_offset`]: where a uprobe goes for a link-time address.
//! * [`load_bias`]: runtime address = link address + bias, from the file's
//!   `/proc/PID/maps` lines.

use std::collections::HashMap;

use super::elf::LoadSegment;

/// What a symbol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymKind {
    /// `STT_FUNC` or `STT_GNU_IFUNC`.
    Function,
    /// `STT_OBJECT` or `STT_COMMON`.
    Object,
}

/// One defined symbol. `address` is the link-time address (`st_value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub address: u64,
    /// `st_size`; 0 for hand-written assembly without `.size`.
    pub size: u64,
    pub name: String,
    pub kind: SymKind,
    pub global: bool,
    pub weak: bool,
}

impl Symbol {
    /// `STB_GLOBAL` beats `STB_WEAK` beats `STB_LOCAL` when several names share an address.
    fn rank(&self) -> u8 {
        match (self.global, self.weak) {
            (true, _) => 0,
            (_, true) => 1,
            _ => 2,
        }
    }
}

/// A function found for a probe point: link address and file offset (what
/// `perf_event_open`'s uprobe wants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionAddress {
    pub name: String,
    pub address: u64,
    pub size: u64,
    pub file_offset: u64,
}

/// Function and object symbols of one ELF file.
#[derive(Debug, Clone, Default)]
pub struct SymbolTable {
    /// Functions sorted by address, one per address (aliases dropped; the
    /// global name wins), sizes of size-0 symbols filled up to the next one.
    functions: Vec<Symbol>,
    /// Every function name (aliases included) -> index into `functions`.
    by_name: HashMap<String, usize>,
    /// Data objects by name (globals preferred over locals).
    objects: HashMap<String, Symbol>,
}

impl SymbolTable {
    /// Builds the table from raw symbols of `.symtab` and `.dynsym` (in any
    /// order, duplicates allowed).
    pub fn new(symbols: impl IntoIterator<Item = Symbol>) -> SymbolTable {
        let mut funcs = Vec::new();
        let mut objects: HashMap<String, Symbol> = HashMap::new();
        for s in symbols {
            match s.kind {
                SymKind::Function => funcs.push(s),
                SymKind::Object => match objects.get(&s.name) {
                    Some(old) if old.rank() <= s.rank() => {}
                    _ => {
                        objects.insert(s.name.clone(), s);
                    }
                },
            }
        }
        funcs.sort_by(|a, b| {
            (a.address, a.rank(), a.name.starts_with('_'), &a.name).cmp(&(
                b.address,
                b.rank(),
                b.name.starts_with('_'),
                &b.name,
            ))
        });
        let mut functions: Vec<Symbol> = Vec::with_capacity(funcs.len());
        let mut by_name = HashMap::with_capacity(funcs.len());
        for s in funcs {
            match functions.last_mut() {
                Some(last) if last.address == s.address => {
                    last.size = last.size.max(s.size);
                    by_name.entry(s.name).or_insert(functions.len() - 1);
                }
                _ => {
                    by_name.entry(s.name.clone()).or_insert(functions.len());
                    functions.push(s);
                }
            }
        }
        for i in 0..functions.len() {
            if functions[i].size == 0 {
                if let Some(next) = functions.get(i + 1).map(|n| n.address) {
                    functions[i].size = next - functions[i].address;
                }
            }
        }
        SymbolTable {
            functions,
            by_name,
            objects,
        }
    }

    /// Functions sorted by address (unique addresses).
    pub fn functions(&self) -> &[Symbol] {
        &self.functions
    }

    /// The function containing link-time address `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&Symbol> {
        let idx = self.functions.partition_point(|s| s.address <= addr);
        let s = self.functions.get(idx.checked_sub(1)?)?;
        (addr < s.address.saturating_add(s.size.max(1))).then_some(s)
    }

    /// A function by exact name (aliases included).
    pub fn function(&self, name: &str) -> Option<&Symbol> {
        self.by_name.get(name).map(|&i| &self.functions[i])
    }

    /// A data object (`STT_OBJECT`) by exact name.
    pub fn object(&self, name: &str) -> Option<&Symbol> {
        self.objects.get(name)
    }

    /// Functions whose name matches a stap wildcard pattern (`*`, `?`,
    /// `[...]`), sorted by name. One entry per name.
    pub fn functions_matching(&self, pattern: &str) -> Vec<(&str, &Symbol)> {
        let mut out: Vec<(&str, &Symbol)> = if has_wildcards(pattern) {
            self.by_name
                .iter()
                .filter(|(n, _)| glob_match(pattern, n))
                .map(|(n, &i)| (n.as_str(), &self.functions[i]))
                .collect()
        } else {
            self.by_name
                .get_key_value(pattern)
                .map(|(n, &i)| (n.as_str(), &self.functions[i]))
                .into_iter()
                .collect()
        };
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// All names (functions and objects) for "did you mean" messages.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .keys()
            .map(String::as_str)
            .chain(self.objects.keys().map(String::as_str))
    }
}

/// Whether a stap function pattern has glob characters.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// fnmatch-style matching of `name` against `pattern` with `*`, `?` and
/// `[abc]`/`[a-z]`/`[!a]` classes (no escapes, no special treatment of `/`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_class(&p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        // Unterminated class: a literal '['.
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; returns
/// (matched, index after `]`), or `None` if the class is unterminated.
fn match_class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &ch = p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let hi = p[i + 2];
            if ch <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if ch == c {
                matched = true;
            }
            i += 1;
        }
    }
}

/// The file offset of link-time address `vaddr`: through the `PT_LOAD`
/// segment whose file-backed part contains it.
pub fn vaddr_to_file_offset(segments: &[LoadSegment], vaddr: u64) -> Option<u64> {
    segments
        .iter()
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
        .and_then(|s| s.offset.checked_add(vaddr - s.vaddr))
}

/// The link-time address of file offset `offset` (inverse of [`vaddr_to_file_offset`]).
pub fn file_offset_to_vaddr(segments: &[LoadSegment], offset: u64) -> Option<u64> {
    segments
        .iter()
        .find(|s| offset >= s.offset && offset - s.offset < s.filesz)
        .and_then(|s| s.vaddr.checked_add(offset - s.offset))
}

/// One `/proc/PID/maps` line of the file in question: `start-end` and the
/// file offset the mapping starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
}

impl From<(u64, u64, u64)> for MapEntry {
    fn from((start, end, offset): (u64, u64, u64)) -> MapEntry {
        MapEntry { start, end, offset }
    }
}

/// The load bias of a mapped ELF file: runtime address = link address + bias
/// (wrapping arithmetic; 0 for a non-PIE executable).
///
/// `maps` are the `/proc/PID/maps` entries of that one file, `segments` its
/// `PT_LOAD` headers. The first mapping whose file range overlaps a segment's
/// file range decides: the byte at file offset `o` sits at runtime address
/// `start + (o - map.offset)` and has link address `p_vaddr + (o - p_offset)`.
/// Returns `None` when no mapping covers any segment.
pub fn load_bias(maps: &[MapEntry], segments: &[LoadSegment]) -> Option<u64> {
    let mut maps: Vec<&MapEntry> = maps.iter().collect();
    maps.sort_by_key(|m| m.offset);
    for m in maps {
        let len = m.end.saturating_sub(m.start);
        for s in segments {
            // The segment's file range, extended down to its page (mappings are
            // page-granular and start at a page-aligned offset).
            let seg_lo = s.offset;
            let seg_hi = s.offset.saturating_add(s.filesz.max(1));
            let map_lo = m.offset;
            let map_hi = m.offset.saturating_add(len);
            if map_lo < seg_hi && seg_lo < map_hi {
                return Some(
                    m.start
                        .wrapping_sub(m.offset)
                        .wrapping_add(s.offset)
                        .wrapping_sub(s.vaddr),
                );
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(address: u64, size: u64, name: &str, global: bool) -> Symbol {
        Symbol {
            address,
            size,
            name: name.into(),
            kind: SymKind::Function,
            global,
            weak: false,
        }
    }

    #[test]
    fn globbing() {
        assert!(glob_match("lj_*", "lj_vm_call"));
        assert!(glob_match("*", ""));
        assert!(glob_match(
            "ngx_http_*_handler",
            "ngx_http_lua_content_handler"
        ));
        assert!(!glob_match(
            "ngx_http_*_handler",
            "ngx_http_lua_content_handlers"
        ));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("f[0-9]x", "f7x"));
        assert!(!glob_match("f[!0-9]x", "f7x"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxxc"));
        assert!(glob_match("[", "["));
    }

    #[test]
    fn table_dedups_aliases_and_fills_sizes() {
        let t = SymbolTable::new(vec![
            sym(0x2000, 0, "asm_func", false),
            sym(0x1000, 0x20, "local_alias", false),
            sym(0x1000, 0x20, "main_name", true),
            sym(0x3000, 0x10, "last", true),
        ]);
        let names: Vec<_> = t.functions().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["main_name", "asm_func", "last"]);
        assert_eq!(t.functions()[1].size, 0x1000);
        assert_eq!(t.lookup(0x1010).unwrap().name, "main_name");
        assert!(t.lookup(0x1020).is_none());
        assert_eq!(t.lookup(0x2fff).unwrap().name, "asm_func");
        assert!(t.lookup(0xfff).is_none());
        assert!(t.lookup(0x3010).is_none());
        assert_eq!(t.function("local_alias").unwrap().address, 0x1000);
        let m: Vec<_> = t.functions_matching("*a*").iter().map(|m| m.0).collect();
        assert_eq!(m, ["asm_func", "last", "local_alias", "main_name"]);
    }

    #[test]
    fn bias_for_pie_and_dso_segments() {
        // A typical PIE: four PT_LOADs, the second (text) at an offset that
        // is not a multiple of the page size in the address space.
        let segs = [
            LoadSegment {
                vaddr: 0,
                memsz: 0x628,
                offset: 0,
                filesz: 0x628,
                flags: 4,
            },
            LoadSegment {
                vaddr: 0x1000,
                memsz: 0x1b5,
                offset: 0x1000,
                filesz: 0x1b5,
                flags: 5,
            },
            LoadSegment {
                vaddr: 0x3db8,
                memsz: 0x270,
                offset: 0x2db8,
                filesz: 0x258,
                flags: 6,
            },
        ];
        let base = 0x5555_5555_4000u64;
        let maps = [
            MapEntry::from((base + 0x3000, base + 0x4000, 0x2000)),
            MapEntry::from((base + 0x1000, base + 0x2000, 0x1000)),
        ];
        assert_eq!(load_bias(&maps, &segs), Some(base));
        // Only the data mapping known: still the same bias.
        assert_eq!(load_bias(&maps[..1], &segs), Some(base));
        // A non-PIE executable mapped at its link address.
        let exec = [LoadSegment {
            vaddr: 0x400000,
            memsz: 0x1000,
            offset: 0,
            filesz: 0x1000,
            flags: 5,
        }];
        assert_eq!(
            load_bias(&[MapEntry::from((0x400000, 0x401000, 0))], &exec),
            Some(0)
        );
        assert_eq!(load_bias(&[], &exec), None);
        assert_eq!(vaddr_to_file_offset(&segs, 0x3dc0), Some(0x2dc0));
        assert_eq!(vaddr_to_file_offset(&segs, 0x4020), None);
        assert_eq!(file_offset_to_vaddr(&segs, 0x1010), Some(0x1010));
    }
}
