//! The unwind table of a traced process for `ubacktrace()` and friends in
//! kernel probes: every mapped module's CFI rows ([`crate::debuginfo::cfi`])
//! at their runtime addresses, in one sorted table packed into one BPF map
//! value (one update at load, one lookup per frame, a binary search like
//! the symbol tables'; see `codegen/unwind.rs` for the walk).
//!
//! Rows are built once per module file (cached by path and build-id for
//! the life of the process) and placed once per target process; every probe
//! that unwinds reads the same map.
//!
//! Packed form: `cap` u64 addresses (sorted, padded with `u64::MAX`), then
//! `cap` u64 rules. A rule is `kind | rbp_kind << 8 | (rbp_off as u16) << 16
//! | (cfa_off as u32) << 32`; a PLT row keeps its threshold in the
//! `rbp_off` field.

use crate::debuginfo::cfi::{self, Cfa, Row, SavedRbp};
use crate::debuginfo::ElfFile;
use crate::target::TargetInfo;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Rule kinds (the low byte of a packed rule).
pub const K_NONE: u64 = 0;
pub const K_RSP: u64 = 1;
pub const K_RBP: u64 = 2;
pub const K_PLT: u64 = 3;
pub const K_OUTERMOST: u64 = 4;
pub const K_UNSUPPORTED: u64 = 5;
/// `rbp` saved at CFA + off (else left as it is).
pub const RBP_SAVED: u64 = 1;

/// The unwinder's counters in `stx_unwind` (u64 each, by index): stacks
/// unwound, frames recorded, then why each walk ended.
pub const STAT_STACKS: usize = 0;
pub const STAT_FRAMES: usize = 1;
/// Reached the outermost frame (or the frames the caller asked for).
pub const STAT_COMPLETE: usize = 2;
/// Stopped at MAXBACKTRACE frames with more to go.
pub const STAT_MAX: usize = 3;
/// Stopped at a pc no CFI row covers (JIT code, a module without
/// `.eh_frame`, an unsupported rule).
pub const STAT_NO_CFI: usize = 4;
/// Stopped because the stack could not be read there.
pub const STAT_READ_FAIL: usize = 5;
/// (Eight slots: the index is masked with 7.)
pub const STATS: usize = 8;

/// The largest table one map value holds (the kernel allocates a map value
/// with kmalloc: 4 MiB at most; 16 bytes a row).
pub const MAX_ROWS: usize = 1 << 18;

/// Where the parts of the packed blob are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfiLayout {
    /// Rows the blob has room for (a power of two).
    pub cap: u32,
    /// Rows present.
    pub count: u32,
}

impl CfiLayout {
    pub fn rules_at(&self) -> u32 {
        self.cap * 8
    }
    pub fn size(&self) -> u32 {
        self.cap * 16
    }
}

/// One module's share of a process table, for `-v` and BENCHMARKS.md.
#[derive(Debug, Clone)]
pub struct ModuleRows {
    pub path: PathBuf,
    pub rows: usize,
    /// Time to read and reduce its CFI (0 when it came from the cache).
    pub build_ms: f64,
}

/// A process's table, sorted by runtime address.
#[derive(Debug, Default, Clone)]
pub struct ProcessTable {
    pub addrs: Vec<u64>,
    pub rules: Vec<u64>,
    pub modules: Vec<ModuleRows>,
}

impl ProcessTable {
    pub fn layout(&self) -> CfiLayout {
        CfiLayout {
            cap: (self.addrs.len().max(1) as u32).next_power_of_two(),
            count: self.addrs.len() as u32,
        }
    }

    pub fn pack(&self) -> Vec<u8> {
        self.pack_as(self.layout())
    }

    /// Packed into `l`'s room (at least this table's).
    fn pack_as(&self, l: CfiLayout) -> Vec<u8> {
        let mut out = Vec::with_capacity(l.size() as usize);
        crate::ksyms::push_padded(&mut out, &self.addrs, l.cap, u64::MAX);
        crate::ksyms::push_padded(&mut out, &self.rules, l.cap, K_NONE);
        out
    }

    /// The rule at `pc` (as the kernel's search finds it), for tests.
    pub fn rule_at(&self, pc: u64) -> u64 {
        match self.addrs.partition_point(|&a| a <= pc).checked_sub(1) {
            Some(i) => self.rules[i],
            None => K_NONE,
        }
    }
}

/// `-v`'s account of the table: each module's rows and build time, then
/// the whole.
pub fn table_lines(t: &ProcessTable) -> Vec<String> {
    let mut out: Vec<String> = t
        .modules
        .iter()
        .map(|m| {
            format!(
                "unwind rows of {}: {} ({:.1} ms)",
                m.path.display(),
                m.rows,
                m.build_ms
            )
        })
        .collect();
    out.push(format!(
        "unwind table: {} rows, {} KiB in one map value",
        t.addrs.len(),
        t.layout().size() / 1024
    ));
    out
}

/// `-v`'s account of the walks: how many, how deep, how each ended.
pub fn stats_line(s: &[u64; STATS]) -> String {
    format!(
        "user backtraces: {} unwound, {} frames; ended at the outermost frame {}, at MAXBACKTRACE {}, where no CFI covers the pc {}, on an unreadable stack {}",
        s[STAT_STACKS], s[STAT_FRAMES], s[STAT_COMPLETE], s[STAT_MAX], s[STAT_NO_CFI], s[STAT_READ_FAIL]
    )
}

/// A row's packed rule.
pub fn encode(r: &Row) -> u64 {
    let (kind, cfa_off, extra) = match r.cfa {
        Cfa::None => (K_NONE, 0, 0),
        Cfa::Rsp(o) => (K_RSP, o, 0),
        Cfa::Rbp(o) => (K_RBP, o, 0),
        Cfa::Plt { base, threshold } => (K_PLT, base, u64::from(threshold)),
        Cfa::Outermost => (K_OUTERMOST, 0, 0),
        Cfa::Unsupported => (K_UNSUPPORTED, 0, 0),
    };
    let (rbp_kind, rbp_off) = match r.rbp {
        SavedRbp::Same => (0, extra),
        // Saved registers sit within a frame: a 16-bit offset holds them.
        SavedRbp::At(o) => match i16::try_from(o) {
            Ok(o) => (RBP_SAVED, u64::from(o as u16)),
            Err(_) => return K_UNSUPPORTED,
        },
    };
    kind | rbp_kind << 8 | rbp_off << 16 | u64::from(cfa_off as u32) << 32
}

type RowsCache = HashMap<(PathBuf, Option<Vec<u8>>), Arc<Vec<Row>>>;

/// The rows of the module the target maps from `file`, link-time
/// addresses, with the time it took (0 if cached).
fn module_rows(t: &TargetInfo, file: &std::path::Path) -> Option<(Arc<Vec<Row>>, u64, f64)> {
    let (m, bias) = crate::loadinfo::module_load(t, file).ok()?;
    let (rows, ms) = file_rows(file, m.elf());
    Some((rows, bias, ms))
}

/// The rows of one ELF file (named `file`), cached by path and build-id.
fn file_rows(file: &std::path::Path, elf: &ElfFile) -> (Arc<Vec<Row>>, f64) {
    static CACHE: Mutex<Option<RowsCache>> = Mutex::new(None);
    let key = (file.to_path_buf(), elf.build_id().map(<[u8]>::to_vec));
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(rows) = cache.get(&key) {
        return (rows.clone(), 0.0);
    }
    let t0 = Instant::now();
    // No CFI (or broken CFI) leaves the module without rows: its frames
    // stop the walk and are counted, never guessed.
    let rows = Arc::new(cfi::rows(elf).unwrap_or_default());
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    cache.insert(key, rows.clone());
    (rows, ms)
}

/// The table size for the `-c` command `exe` that has not run yet: its
/// rows do not depend on where the modules will be mapped, only on which,
/// so those of its `files` (the executable and the libraries it links,
/// `ldd`, the dynamic loader among them) are counted, with room for a
/// quarter more (what it may `dlopen`), and the search covers the whole
/// capacity (the padding's addresses are above every pc). Placed when the
/// command has mapped them ([`place`]).
pub fn command_layout(exe: &std::path::Path, files: &[PathBuf]) -> Result<CfiLayout, String> {
    let mut rows = 0usize;
    for f in files {
        // A file that cannot be read has no rows, as in a placed table.
        if let Ok(elf) = ElfFile::open(f) {
            rows += file_rows(f, &elf).0.len();
        }
    }
    let cap = (rows + rows / 4).max(1).next_power_of_two();
    if cap > MAX_ROWS {
        return Err(format!(
            "the unwind tables of {} and its libraries have {rows} rows; one BPF map value holds {MAX_ROWS}",
            exe.display()
        ));
    }
    Ok(CfiLayout {
        cap: cap as u32,
        count: cap as u32,
    })
}

/// Process `t`'s table packed into `layout`'s room (a [`command_layout`],
/// sized before the process mapped anything).
pub fn place(t: &TargetInfo, layout: CfiLayout) -> Result<Vec<u8>, String> {
    let table = process_table(t)?;
    if table.addrs.len() > layout.cap as usize {
        return Err(format!(
            "process {} maps {} unwind rows, more than the {} its command's files had room for",
            t.pid,
            table.addrs.len(),
            layout.cap
        ));
    }
    Ok(table.pack_as(layout))
}

/// The table of process `t`: computed once per process (the code
/// generator sizes the search by it, the loader fills the map with it).
pub fn process_table(t: &TargetInfo) -> Result<Arc<ProcessTable>, String> {
    static CACHE: Mutex<Option<(u32, Arc<ProcessTable>)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((pid, table)) = cache.as_ref() {
        if *pid == t.pid {
            return Ok(table.clone());
        }
    }
    let table = Arc::new(build(t)?);
    *cache = Some((t.pid, table.clone()));
    Ok(table)
}

fn build(t: &TargetInfo) -> Result<ProcessTable, String> {
    let mut placed: Vec<(u64, u64)> = Vec::new();
    let mut out = ProcessTable::default();
    for file in t.mapped_files() {
        let Some((rows, bias, ms)) = module_rows(t, file) else {
            continue;
        };
        // Every module's rows end with a `None` row, so whatever lies above
        // them (another module, JIT code) is not covered by them.
        for r in rows.iter() {
            placed.push((r.addr.wrapping_add(bias), encode(r)));
        }
        out.modules.push(ModuleRows {
            path: file.to_path_buf(),
            rows: rows.len(),
            build_ms: ms,
        });
    }
    placed.sort_by_key(|p| p.0);
    placed.dedup_by_key(|p| p.0);
    if placed.len() > MAX_ROWS {
        return Err(format!(
            "the unwind tables of process {} have {} rows; one BPF map value holds {MAX_ROWS}",
            t.pid,
            placed.len()
        ));
    }
    (out.addrs, out.rules) = placed.into_iter().unzip();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_pack_their_fields() {
        let r = Row {
            addr: 0,
            cfa: Cfa::Rsp(-16),
            rbp: SavedRbp::At(-24),
        };
        let e = encode(&r);
        assert_eq!(e & 0xff, K_RSP);
        assert_eq!(e >> 8 & 0xff, RBP_SAVED);
        assert_eq!((e >> 16) as u16 as i16, -24);
        assert_eq!((e >> 32) as u32 as i32, -16);
        let plt = encode(&Row {
            addr: 0,
            cfa: Cfa::Plt {
                base: 8,
                threshold: 11,
            },
            rbp: SavedRbp::Same,
        });
        assert_eq!(plt, K_PLT | 11 << 16 | 8 << 32);
    }

    #[test]
    fn packed_table_is_padded_to_a_power_of_two() {
        let t = ProcessTable {
            addrs: vec![0x1000, 0x2000, 0x3000],
            rules: vec![K_RSP | 8 << 32, K_NONE, K_RBP | 16 << 32],
            modules: Vec::new(),
        };
        let l = t.layout();
        assert_eq!((l.cap, l.count), (4, 3));
        let b = t.pack();
        assert_eq!(b.len(), 64);
        assert_eq!(&b[24..32], &u64::MAX.to_le_bytes());
        assert_eq!(t.rule_at(0x1fff), K_RSP | 8 << 32);
        assert_eq!(t.rule_at(0x2000), K_NONE);
        assert_eq!(t.rule_at(0xfff), K_NONE);
    }
}
