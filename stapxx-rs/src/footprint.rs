//! What a compiled script asks of kernel memory, told before anything is
//! loaded, and the words for a map the kernel will not create.
//!
//! The kernel allocates a map whole when it is created: a hash map holds
//! all of its entries from the start (preallocated, so probes never
//! allocate), each entry as large as its key and value; the per-CPU frame
//! exists once per possible CPU. MAXSTRINGLEN sizes every string key,
//! value and slot, MAXMAPENTRIES (or `global a[N]`) every array's entries,
//! so a few `-D`s can ask for gigabytes. The estimate below follows the
//! kernel's layouts closely enough to say which global costs what.
//!
//! The bound: a run whose maps would take more than a quarter of the
//! machine's memory (`MemTotal`) is refused; above 1 GiB it runs with a
//! warning that says how much and where.

use crate::codegen::Compiled;
use crate::ir::{Program, Ty};
use ebpf_backend::{MapDef, MapKind};
use grammar::Diagnostic;

/// Above this the run is told what its maps cost.
const WARN_BYTES: u64 = 1 << 30;

/// The kernel's per-element overhead of a hash map (`struct htab_elem`
/// before the key) and per bucket; close enough for an estimate.
const HTAB_ELEM: u64 = 48;
const HTAB_BUCKET: u64 = 16;

/// One kernel map, what it is for, and what it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct MapCost {
    /// The kernel map's name (`stx_g3`).
    pub name: String,
    /// For the user: `global 'bts'`, `the per-CPU frame`, ...
    pub what: String,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub entries: u32,
    /// Bytes the kernel allocates for it (an estimate).
    pub bytes: u64,
    /// The settings that size it: `string keys: -D MAXSTRINGLEN=4096`,
    /// `entries: its declared size [10]`, ...
    pub sized_by: Vec<String>,
}

/// The cost of every map of `c`, in the module's order.
pub fn costs(c: &Compiled, program: &Program, ncpus: u32) -> Vec<MapCost> {
    let ncpus = u64::from(ncpus.max(1));
    let strlen = format!("-D MAXSTRINGLEN={}", c.maps.strcap);
    c.module
        .maps()
        .iter()
        .enumerate()
        .filter_map(|(i, def)| {
            let is = |m: ebpf_backend::MapId| m.0 as usize == i;
            let array = c.maps.arrays.iter().find_map(|a| {
                let k = a
                    .classes
                    .iter()
                    .find(|k| is(k.map) || k.alt.is_some_and(is))?;
                Some((a, k))
            });
            let (what, sized_by) = match array {
                // Narrower key classes are allocated as used, their entries
                // counted against the array's one capacity: the widest
                // class's map is the bound (codegen/keyclass.rs).
                Some((a, k)) if k.width < a.widest().width => return None,
                Some((a, _)) => {
                    let g = &program.globals[a.global.0 as usize];
                    let mut by = Vec::new();
                    let str_keys = g.keys.contains(&Ty::Str);
                    let str_value = g.ty == Ty::Str;
                    match (str_keys, str_value) {
                        (true, true) => by.push(format!("string keys and values: {strlen}")),
                        (true, false) => by.push(format!("string keys: {strlen}")),
                        (false, true) => by.push(format!("string values: {strlen}")),
                        (false, false) => {}
                    }
                    match g.size.filter(|&n| n > 0) {
                        Some(n) => by.push(format!("entries: its declared size [{n}]")),
                        None => by.push(format!("entries: -D MAXMAPENTRIES={}", def.max_entries)),
                    }
                    (format!("global '{}'", g.name), by)
                }
                None => fixed_map(def, c, &strlen),
            };
            Some(MapCost {
                name: def.name.clone(),
                what,
                kind: def.kind,
                key_size: def.key_size,
                value_size: def.value_size,
                entries: def.max_entries,
                bytes: bytes(def, ncpus),
                sized_by,
            })
        })
        .collect()
}

/// What the code generator's own maps are for, and what sizes them.
fn fixed_map(def: &MapDef, c: &Compiled, strlen: &str) -> (String, Vec<String>) {
    let has_strings = c.maps.scalars.iter().any(|s| s.ty == Ty::Str);
    let (what, by_strlen) = match def.name.as_str() {
        "stx_frame" => (
            "the frame of probe locals and temporaries (an entry per CPU)",
            true,
        ),
        "stx_globals" => ("the scalar globals", has_strings),
        "stx_rodata" => ("the constants", false),
        "stx_errors" => ("the error counters", false),
        "stx_out" => ("the output ring buffer", false),
        "stx_usyms" => ("the target's symbol table", false),
        "stx_ksyms" => ("the kernel's symbol table", false),
        other => return (format!("map {other}"), Vec::new()),
    };
    let mut by = Vec::new();
    if by_strlen {
        by.push(format!("string slots: {strlen}"));
    }
    if def.kind == MapKind::RingBuf {
        by.push(format!("size: -s {}", def.max_entries >> 20));
    }
    (what.to_string(), by)
}

/// The bytes the kernel allocates for a map, as its map types lay them
/// out (rounded to 8 bytes; hash maps preallocate every element and a
/// bucket per power-of-two slot, plus a spare element per CPU).
fn bytes(def: &MapDef, ncpus: u64) -> u64 {
    let r8 = |n: u32| (u64::from(n) + 7) & !7;
    let entries = u64::from(def.max_entries);
    let buckets = entries.next_power_of_two() * HTAB_BUCKET;
    match def.kind {
        MapKind::Hash | MapKind::LruHash => {
            let elem = HTAB_ELEM + r8(def.key_size) + r8(def.value_size);
            let spare = if def.kind == MapKind::Hash { ncpus } else { 0 };
            (entries + spare) * elem + buckets
        }
        MapKind::PercpuHash | MapKind::LruPercpuHash => {
            let elem = HTAB_ELEM + r8(def.key_size) + 8;
            entries * elem + entries * r8(def.value_size) * ncpus + buckets
        }
        MapKind::Array => entries * r8(def.value_size),
        MapKind::PercpuArray => entries * r8(def.value_size) * ncpus,
        MapKind::RingBuf => entries,
        _ => entries * (u64::from(def.key_size) + u64::from(def.value_size)),
    }
}

/// The machine's memory (`MemTotal`), in bytes.
pub fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuse maps that would take more than a quarter of `mem_total`; above
/// [`WARN_BYTES`], the warning to print. Both name the largest maps.
pub fn check(costs: &[MapCost], mem_total: u64) -> Result<Option<Diagnostic>, Diagnostic> {
    let total: u64 = costs.iter().map(|c| c.bytes).sum();
    let bound = mem_total / 4;
    let mut largest: Vec<&MapCost> = costs.iter().collect();
    largest.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
    let with_largest = |mut d: Diagnostic| {
        for c in largest.iter().take(3) {
            d = d.with_note(describe(c));
        }
        d
    };
    if total > bound {
        return Err(with_largest(Diagnostic::bare(format!(
            "the kernel maps of this script would take about {} of memory; refused (the bound is a quarter of this machine's memory: {})",
            human(total),
            human(bound)
        ))));
    }
    if total > WARN_BYTES {
        let msg = format!(
            "the kernel maps of this script take about {} of memory while it runs",
            human(total)
        );
        return Ok(Some(with_largest(Diagnostic {
            severity: grammar::diag::Severity::Warning,
            ..Diagnostic::bare(msg)
        })));
    }
    Ok(None)
}

/// One map for the user: what it is, its shape, its cost, what sizes it.
pub fn describe(c: &MapCost) -> String {
    let shape = match c.kind {
        MapKind::RingBuf => String::new(),
        MapKind::Array | MapKind::PercpuArray => format!(
            "{} of {} bytes{}, ",
            plural(c.entries, "entry", "entries"),
            c.value_size,
            if c.kind == MapKind::PercpuArray {
                " per CPU"
            } else {
                ""
            }
        ),
        _ => format!(
            "{} of {}-byte keys and {}-byte values{}, ",
            plural(c.entries, "entry", "entries"),
            c.key_size,
            c.value_size,
            if matches!(c.kind, MapKind::PercpuHash | MapKind::LruPercpuHash) {
                " per CPU"
            } else {
                ""
            }
        ),
    };
    let by = if c.sized_by.is_empty() {
        String::new()
    } else {
        format!(" ({})", c.sized_by.join("; "))
    };
    format!("{}: {shape}about {}{by}", c.what, human(c.bytes))
}

/// A load failure that is the kernel refusing one of our maps, in the
/// script's words: the global it holds, its shape, the settings that size
/// it. `None` for any other failure.
pub fn load_error(e: &ebpf_backend::Error, c: &Compiled, program: &Program) -> Option<Diagnostic> {
    let ebpf_backend::Error::MapCreate { map, source, .. } = e else {
        return None;
    };
    let ncpus = ebpf_backend::sys::possible_cpus().unwrap_or(1) as u32;
    // A narrower key class's map is told as its array's (widest) map.
    let map = c.maps.array_of_map(*map).map_or(*map, |a| a.widest().map);
    let name = &c.module.maps().get(map.0 as usize)?.name;
    let cost = costs(c, program, ncpus)
        .into_iter()
        .find(|k| &k.name == name)?;
    let mut d = Diagnostic::bare(format!(
        "the kernel cannot create the map for {}: {source}",
        cost.what
    ))
    .with_note(describe(&cost));
    if source.raw_os_error() == Some(libc::E2BIG) {
        d = d.with_note(
            "the kernel takes map entries (key and value) of less than 4 MiB; lower the settings that size this one",
        );
    }
    Some(d)
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Bytes with a binary unit, one decimal (`5.2 GiB`).
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(name: &str, kind: MapKind, key: u32, value: u32, entries: u32) -> MapCost {
        let def = MapDef::new(name, kind, key, value, entries);
        MapCost {
            name: name.into(),
            what: format!("global '{name}'"),
            kind,
            key_size: key,
            value_size: value,
            entries,
            bytes: bytes(&def, 2),
            sized_by: vec!["entries: -D MAXMAPENTRIES=5000".into()],
        }
    }

    #[test]
    fn hash_maps_cost_all_their_entries() {
        // 5000 entries of a 4096-byte key and an 8-byte value, 2 spares,
        // 8192 buckets.
        let c = cost("a", MapKind::Hash, 4096, 8, 5000);
        assert_eq!(c.bytes, 5002 * (48 + 4096 + 8) + 8192 * 16);
        assert_eq!(
            describe(&c),
            "global 'a': 5000 entries of 4096-byte keys and 8-byte values, about 19.9 MiB (entries: -D MAXMAPENTRIES=5000)"
        );
        let p = cost("s", MapKind::PercpuHash, 8, 64, 10);
        assert_eq!(p.bytes, 10 * (48 + 8 + 8) + 10 * 64 * 2 + 16 * 16);
    }

    #[test]
    fn large_maps_warn_and_huge_ones_are_refused() {
        let small = cost("a", MapKind::Hash, 8, 8, 5000);
        assert_eq!(check(std::slice::from_ref(&small), 1 << 34), Ok(None));
        let big = cost("b", MapKind::Hash, 1 << 20, 8, 5000);
        let w = check(&[small.clone(), big.clone()], 1 << 40)
            .unwrap()
            .unwrap();
        assert_eq!(
            w.message,
            "the kernel maps of this script take about 4.9 GiB of memory while it runs"
        );
        assert!(
            w.notes[0].starts_with("global 'b': 5000 entries of 1048576-byte keys"),
            "{:?}",
            w.notes
        );
        let e = check(&[small, big], 1 << 34).unwrap_err();
        assert_eq!(
            e.message,
            "the kernel maps of this script would take about 4.9 GiB of memory; refused (the bound is a quarter of this machine's memory: 4.0 GiB)"
        );
        assert_eq!(e.notes.len(), 2);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(1000), "1000 bytes");
        assert_eq!(human(4 << 20), "4.0 MiB");
        assert_eq!(human(5_242_880_000), "4.9 GiB");
    }
}
