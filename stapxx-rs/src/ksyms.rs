//! Symbol tables packed into one BPF map value for `symname()`/`usymname()`
//! in kernel probes: the kernel's function symbols from `/proc/kallsyms`
//! (also what the host's `symname()` uses), and the target's (built by
//! `kernel::symbol_table`).
//!
//! The packed form is a single blob so that loading it costs one map
//! update, not one per symbol (there are about 10^5): sorted addresses
//! (`cap` u64 slots, padded with `u64::MAX`), then each symbol's name
//! offset (`cap` u32 slots), then the NUL-terminated names (`names_cap`
//! bytes). Both capacities are powers of two, so the generated code can
//! bound an index with a mask. An entry with an empty name marks where a
//! function ends and no other starts: addresses there have no symbol.

use std::sync::{Arc, OnceLock};

/// A symbol table sorted by address, ready to pack.
#[derive(Debug, Default)]
pub struct PackedSymbols {
    pub addrs: Vec<u64>,
    names: Vec<u8>,
    offsets: Vec<u32>,
    /// Each symbol's size (`st_size`), when kept: the target's table has
    /// them, after the names (`cap` u64 slots), for `usymdata()`.
    sizes: Option<Vec<u64>>,
}

/// The kernel's text symbols.
pub type KernelSymbols = PackedSymbols;

/// Where the parts of the packed blob are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedLayout {
    /// Address slots (a power of two, at least 1).
    pub cap: u32,
    /// Bytes of the names area (a power of two).
    pub names_cap: u32,
    /// Symbols present (`<= cap`).
    pub count: u32,
    /// Whether sizes follow the names (`sizes_at`).
    pub sized: bool,
}

impl PackedLayout {
    pub fn offsets_at(&self) -> u32 {
        self.cap * 8
    }
    pub fn names_at(&self) -> u32 {
        self.cap * 8 + self.cap * 4
    }
    /// Where the sizes start, when `sized`.
    pub fn sizes_at(&self) -> u32 {
        self.names_at() + self.names_cap
    }
    pub fn size(&self) -> u32 {
        self.sizes_at() + if self.sized { self.cap * 8 } else { 0 }
    }
}

impl PackedSymbols {
    /// From (address, name) pairs sorted by address.
    pub fn new<'a>(sorted: impl IntoIterator<Item = (u64, &'a str)>) -> PackedSymbols {
        let mut out = PackedSymbols::default();
        for (addr, name) in sorted {
            out.addrs.push(addr);
            out.offsets.push(out.names.len() as u32);
            out.names.extend_from_slice(name.as_bytes());
            out.names.push(0);
        }
        out
    }

    /// From (address, size, name) triples sorted by address: the table
    /// with sizes.
    pub fn with_sizes<'a>(sorted: impl IntoIterator<Item = (u64, u64, &'a str)>) -> PackedSymbols {
        let mut sizes = Vec::new();
        let mut out = PackedSymbols::new(sorted.into_iter().map(|(a, s, n)| {
            sizes.push(s);
            (a, n)
        }));
        out.sizes = Some(sizes);
        out
    }

    /// This machine's kernel table (read once). Empty when the addresses are
    /// hidden (`kptr_restrict`, not root).
    pub fn get() -> Arc<PackedSymbols> {
        static TABLE: OnceLock<Arc<PackedSymbols>> = OnceLock::new();
        TABLE
            .get_or_init(|| {
                let text = read_kallsyms().unwrap_or_default();
                Arc::new(PackedSymbols::parse(&text))
            })
            .clone()
    }

    /// Text symbols (`t`/`T`) of `/proc/kallsyms` text, modules included;
    /// one name per address (the first listed).
    pub fn parse(text: &str) -> PackedSymbols {
        let mut syms: Vec<(u64, &str)> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let addr = u64::from_str_radix(it.next()?, 16).ok()?;
                let kind = it.next()?;
                let name = it.next()?;
                (addr != 0 && (kind == "t" || kind == "T")).then_some((addr, name))
            })
            .collect();
        syms.sort_by_key(|s| s.0);
        syms.dedup_by_key(|s| s.0);
        PackedSymbols::new(syms)
    }

    /// The function containing `addr` (the last symbol at or below it).
    pub fn name_of(&self, addr: u64) -> Option<&str> {
        self.lookup(addr).map(|(name, _, _)| name)
    }

    /// The function containing `addr`: its name, start and extent (to the
    /// next symbol: kallsyms has no sizes; 0 for the last one).
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64, u64)> {
        let i = self.addrs.partition_point(|&a| a <= addr).checked_sub(1)?;
        let at = self.offsets[i] as usize;
        let end = self.names[at..].iter().position(|&b| b == 0)? + at;
        let name = std::str::from_utf8(&self.names[at..end]).ok()?;
        let start = self.addrs[i];
        let size = self.addrs.get(i + 1).map_or(0, |n| n - start);
        Some((name, start, size))
    }

    pub fn layout(&self) -> PackedLayout {
        PackedLayout {
            cap: (self.addrs.len().max(1) as u32).next_power_of_two(),
            names_cap: (self.names.len().max(1) as u32).next_power_of_two(),
            count: self.addrs.len() as u32,
            sized: self.sizes.is_some(),
        }
    }

    /// The packed blob (see the module comment).
    pub fn pack(&self) -> Vec<u8> {
        self.pack_as(self.layout())
    }

    /// Packed into a larger `layout` sized beforehand (a `-c` command's);
    /// None if it does not fit.
    pub fn pack_into(&self, l: PackedLayout) -> Option<Vec<u8>> {
        let mine = self.layout();
        let fits = mine.cap <= l.cap && mine.names_cap <= l.names_cap && mine.sized == l.sized;
        fits.then(|| self.pack_as(l))
    }

    fn pack_as(&self, l: PackedLayout) -> Vec<u8> {
        let mut out = Vec::with_capacity(l.size() as usize);
        push_padded(&mut out, &self.addrs, l.cap, u64::MAX);
        for i in 0..l.cap as usize {
            let o = self.offsets.get(i).copied().unwrap_or(0);
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&self.names);
        out.resize(l.sizes_at() as usize, 0);
        if let Some(sizes) = &self.sizes {
            push_padded(&mut out, sizes, l.cap, 0);
        }
        out.resize(l.size() as usize, 0);
        out
    }
}

/// `values` as `cap` little-endian u64 slots, the missing ones `fill`
/// (the packed tables' arrays, here and in `crate::unwind`).
pub fn push_padded(out: &mut Vec<u8>, values: &[u64], cap: u32, fill: u64) {
    for i in 0..cap as usize {
        let v = values.get(i).copied().unwrap_or(fill);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// `/proc/kallsyms` read in 64 KiB chunks: the kernel fills a large read
/// far more slowly (reading it with a growing buffer, as `read_to_string`
/// does, took seconds instead of 40 ms here).
fn read_kallsyms() -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open("/proc/kallsyms")?;
    let mut out = Vec::with_capacity(8 << 20);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `symname(addr)` as stap gives it: the function's name, or the address
/// in hex when no symbol covers it.
pub fn symname(addr: u64) -> String {
    KernelSymbols::get()
        .name_of(addr)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{addr:#x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ffffffff81000000 T _stext\n\
        ffffffff81000100 t helper_a\n\
        ffffffff81000100 T alias_of_a\n\
        ffffffff81000200 D some_data\n\
        ffffffffc0001000 t mod_func\t[mymod]\n\
        0000000000000000 T hidden\n";

    #[test]
    fn text_symbols_sorted_one_per_address() {
        let k = KernelSymbols::parse(TEXT);
        assert_eq!(
            k.addrs,
            vec![0xffffffff81000000, 0xffffffff81000100, 0xffffffffc0001000]
        );
        assert_eq!(k.name_of(0xffffffff81000150), Some("helper_a"));
        assert_eq!(k.name_of(0xffffffff81000000), Some("_stext"));
        assert_eq!(k.name_of(0xffffffffc0001234), Some("mod_func"));
        assert_eq!(k.name_of(0x1000), None);
    }

    #[test]
    fn packed_blob_layout() {
        let k = KernelSymbols::parse(TEXT);
        let l = k.layout();
        assert_eq!(
            l,
            PackedLayout {
                cap: 4,
                names_cap: 32,
                count: 3,
                sized: false,
            }
        );
        let b = k.pack();
        assert_eq!(b.len() as u32, l.size());
        let addr = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(addr(1), 0xffffffff81000100);
        assert_eq!(addr(3), u64::MAX);
        let off = |i: usize| {
            let at = l.offsets_at() as usize + i * 4;
            u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
        };
        let names = &b[l.names_at() as usize..];
        assert_eq!(&names[off(2)..off(2) + 9], b"mod_func\0");
    }

    #[test]
    fn packed_into_a_larger_layout() {
        let k = KernelSymbols::parse(TEXT);
        let l = k.layout();
        let big = PackedLayout {
            cap: 16,
            names_cap: 64,
            count: 16,
            sized: false,
        };
        let b = k.pack_into(big).expect("fits");
        assert_eq!(b.len() as u32, big.size());
        let addr = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(addr(1), 0xffffffff81000100);
        // Padding past the symbols: above every address, as the search needs.
        assert_eq!(addr(3), u64::MAX);
        assert_eq!(addr(15), u64::MAX);
        let names = &b[big.names_at() as usize..big.names_at() as usize + l.names_cap as usize];
        assert_eq!(names, &k.pack()[l.names_at() as usize..l.size() as usize]);
        let small = PackedLayout { cap: 2, ..big };
        assert!(k.pack_into(small).is_none());
    }
}
