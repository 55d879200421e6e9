//! The maps a compiled script uses, and how userspace decodes them.
//!
//! * `stx_globals`: one array entry holding every scalar global (longs: 8
//!   bytes; strings: a string slot).
//! * one hash map per global array: key = the key fields back to back (a
//!   long is 8 bytes, a string MAXSTR bytes, zero-padded so equal strings
//!   hash equally); value = a long, a string slot, or a per-CPU statistic.
//! * `stx_errors`: counters per error kind; `stx_out`: the ring buffer that
//!   carries printf/warn/error/exit records to userspace.
//! * `stx_usyms` / `stx_ksyms`: the target's and the kernel's function
//!   symbols, packed (`crate::ksyms`), for `usymname` and `symname` (filled
//!   before attaching).

use super::layout::ERR_KINDS;
use super::Options;
use crate::ir::stats::{Linear, StatSpec, LOG_BUCKETS};
use crate::ir::{GlobalId, Program, Ty};
use ebpf_backend::{MapDef, MapId, MapKind, Module};
use grammar::Diagnostic;

/// A statistic's per-CPU value, as stap's `stat_data`: count, sum, min,
/// max, Welford's running average and sum of squared differences (scaled
/// by the `@variance` shift) and the variance, then the histograms the
/// script reads (see [`StatLayout`]).
pub const STAT_COUNT: i16 = 0;
pub const STAT_SUM: i16 = 8;
pub const STAT_MIN: i16 = 16;
pub const STAT_MAX: i16 = 24;
pub const STAT_AVG_S: i16 = 32;
pub const STAT_M2: i16 = 40;
pub const STAT_VARIANCE_S: i16 = 48;
pub const STAT_HEADER: u32 = 64;

/// Where a statistic's histograms are in its value, by its [`StatSpec`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatLayout {
    /// `LOG_BUCKETS` u64 buckets at this offset, when `@hist_log` is read.
    pub log: Option<u32>,
    /// Each `@hist_linear` spec with the offset of its buckets.
    pub linear: Vec<(Linear, u32)>,
    /// The `@variance` bit shift, when `@variance` is read.
    pub variance: Option<u32>,
    pub size: u32,
}

impl StatLayout {
    pub fn of(spec: &StatSpec) -> StatLayout {
        let mut at = STAT_HEADER;
        let log = spec.log.then(|| {
            let o = at;
            at += (LOG_BUCKETS * 8) as u32;
            o
        });
        let linear = spec
            .linear
            .iter()
            .map(|l| {
                let o = at;
                at += (l.buckets() * 8) as u32;
                (*l, o)
            })
            .collect();
        StatLayout {
            log,
            linear,
            variance: spec.variance,
            size: at,
        }
    }
}

/// Where `target()` lives in the globals map value.
pub const TARGET_OFFSET: u32 = 0;
/// Nonzero while the session runs: as in stap, kernel probes do nothing
/// before the `begin` probes have finished or once the session stops.
pub const RUNNING_OFFSET: u32 = 8;
/// Set by `exit()` in a kernel probe: the session ends even when its exit
/// record was lost to a full output buffer.
pub const EXIT_OFFSET: u32 = 16;
/// With `--interval`: which of its two maps each statistic the kernel
/// probes aggregate into (0 or 1). The host flips it at an interval's end,
/// waits until no handler can still use the other one, reads that and
/// empties it (`runtime/interval.rs`): no sample lost or counted twice.
pub const GEN_OFFSET: u32 = 24;
/// In the errors map: after a counter per error kind and the last error,
/// one counter per probe handler of the output records it lost.
pub const LOST_OFFSET: u32 = (ERR_KINDS as u32 + 1) * 8;

/// Output record kinds (high 32 bits of the record's first u64).
pub const REC_PRINT: u64 = 0;
pub const REC_WARN: u64 = 1;
pub const REC_ERROR: u64 = 2;
pub const REC_EXIT: u64 = 3;
/// A hex user backtrace for the host to print symbolized
/// (`runtime/ustack.rs`), in one of its styles.
pub const REC_USTACK_FULL: u64 = 4;
pub const REC_USTACK_USYMS: u64 = 5;
pub const REC_USTACK_BRIEF: u64 = 6;
/// A hex kernel backtrace, for the host to print symbolized.
pub const REC_KSTACK_FULL: u64 = 7;
pub const REC_KSTACK_SYMS: u64 = 8;
/// `system(cmd)`: a command for the host to run.
pub const REC_SYSTEM: u64 = 9;

#[derive(Debug, Clone)]
pub struct ScalarSlot {
    pub global: GlobalId,
    pub offset: u32,
    pub ty: Ty,
}

/// One key class of an array (see `keyclass.rs`): its kernel map, where
/// each key field is in that map's keys. Long fields come first, then the
/// string fields, each `width` bytes, zero-padded.
#[derive(Debug, Clone)]
pub struct KeyClass {
    pub width: u32,
    pub map: MapId,
    /// With `--interval`, a statistic's second map (see [`GEN_OFFSET`]).
    pub alt: Option<MapId>,
    /// (type, offset in the key) of each key field, in the script's order.
    pub keys: Vec<(Ty, u32)>,
    pub key_size: u32,
}

impl KeyClass {
    /// The map of generation `gen` (0: `map`, 1: `alt` when there is one).
    pub fn map_of(&self, gen: u32) -> MapId {
        match (gen, self.alt) {
            (1, Some(alt)) => alt,
            _ => self.map,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ArrayMap {
    pub global: GlobalId,
    /// Its key classes, narrowest first; one for most arrays. The last is
    /// the widest (strings of MAXSTRINGLEN).
    pub classes: Vec<KeyClass>,
    pub value: Ty,
    pub value_size: u32,
    pub percpu: bool,
    /// For a statistic: where its parts are.
    pub stat: StatLayout,
    /// Entries it may hold (MAXMAPENTRIES or its declared size).
    pub max_entries: u32,
    /// With several classes: where its entry count is in the globals map
    /// (with `--interval`, a statistic's count for generation 1 follows).
    /// The count keeps stap's capacity (MAXMAPENTRIES for the array, not
    /// for each class): an insert that finds it full is undone.
    pub count: Option<u32>,
}

impl ArrayMap {
    /// The widest class: every key fits in it.
    pub fn widest(&self) -> &KeyClass {
        self.classes.last().expect("an array has a key class")
    }

    /// Whether it has one class (the kernel-side `foreach` needs that).
    pub fn single(&self) -> Option<&KeyClass> {
        (self.classes.len() == 1).then(|| self.widest())
    }

    /// The class whose map (of either generation) is `m`.
    pub fn class_of_map(&self, m: MapId) -> Option<&KeyClass> {
        self.classes.iter().find(|c| c.map == m || c.alt == Some(m))
    }

    /// The class a key goes to: the narrowest whose width holds its longest
    /// string and that string's NUL.
    pub fn class_for(&self, longest: usize) -> &KeyClass {
        self.classes
            .iter()
            .find(|c| longest < c.width as usize)
            .unwrap_or_else(|| self.widest())
    }
}

#[derive(Debug, Clone)]
pub struct MapLayout {
    pub maxstr: u32,
    /// MAXSTRINGLEN: host writes keep at most `strcap - 1` bytes too.
    pub strcap: u32,
    pub globals_map: MapId,
    pub globals_size: u32,
    pub scalars: Vec<ScalarSlot>,
    pub arrays: Vec<ArrayMap>,
    pub errors_map: MapId,
    pub output_map: MapId,
    /// The output ring buffer's size in bytes.
    pub output_buffer: u32,
    /// `stx_usyms`: the target's packed symbol table (one entry).
    pub usyms_map: Option<(MapId, crate::ksyms::PackedLayout)>,
    /// `stx_ksyms`: the packed kernel symbol table (one entry).
    pub ksyms_map: Option<(MapId, crate::ksyms::PackedLayout)>,
    /// `stx_ucfi`: the target's packed unwind table (one entry).
    pub ucfi_map: Option<(MapId, crate::unwind::CfiLayout)>,
    /// `stx_unwind`: the unwinder's counters (see `codegen/unwind.rs`),
    /// when a probe unwinds.
    pub unwind_stats: Option<MapId>,
    /// With `--interval`: where the statistics' generation is in the
    /// globals map.
    pub gen_offset: Option<u32>,
}

/// Maps every script has besides its arrays (globals, errors, output,
/// read-only data, frame, symbol and unwind tables): what the key classes
/// leave room for.
const FIXED_MAPS: usize = 10;

/// The entry counts an array with key classes `widths` keeps: none with
/// one class (its map's own capacity is the array's), else one, or one per
/// generation for an `--interval` statistic.
fn count_slots(widths: &[u32], g: &crate::ir::GlobalVar, interval: bool) -> u32 {
    match (widths.len() > 1, interval && g.ty == Ty::Stats) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 2,
    }
}

/// Key fields laid out for string width `width`: longs first, then the
/// strings; (type, offset) in the script's order, and the key's size.
fn key_fields(keys: &[Ty], width: u32) -> (Vec<(Ty, u32)>, u32) {
    let longs = keys.iter().filter(|&&k| k != Ty::Str).count() as u32;
    let (mut l, mut s) = (0, longs * 8);
    let fields = keys
        .iter()
        .map(|&k| {
            if k == Ty::Str {
                s += width;
                (k, s - width)
            } else {
                l += 8;
                (k, l - 8)
            }
        })
        .collect();
    (fields, s.max(8))
}

impl MapLayout {
    pub fn build(
        p: &Program,
        opts: &Options,
        module: &mut Module,
    ) -> Result<MapLayout, Diagnostic> {
        let strslot = 8 + opts.maxstr;
        let mut scalars = Vec::new();
        // The first u64 is target(): set at run time, since a `-c` command
        // only gets its pid once the session starts.
        let mut off = if opts.interval {
            GEN_OFFSET + 8
        } else {
            EXIT_OFFSET + 8
        };
        // The entry counts of arrays with several key classes come first
        // (string appends may write past the last string slot).
        let widths = super::keyclass::widths(p, opts.maxstr, opts.interval, FIXED_MAPS);
        let mut count_at = off;
        off += 8 * widths
            .iter()
            .zip(&p.globals)
            .map(|(w, g)| count_slots(w, g, opts.interval))
            .sum::<u32>();
        for (i, g) in p.globals.iter().enumerate() {
            if g.is_array() || g.ty == Ty::Stats {
                continue;
            }
            scalars.push(ScalarSlot {
                global: GlobalId(i as u32),
                offset: off,
                ty: g.ty,
            });
            off += if g.ty == Ty::Str { strslot } else { 8 };
        }
        // Appends to a string write `MAXSTR - (len & (MAXSTR-1))` bytes at
        // its end, which the verifier bounds by 2 * MAXSTR: slack after the
        // last slot, as the frame has.
        let has_str = scalars.iter().any(|s| s.ty == Ty::Str);
        let globals_size = if has_str {
            off + opts.maxstr
        } else {
            off.max(8)
        };
        // Global data (one zeroed entry), so that its direct value loads
        // can be expressed in an ELF object (`--dump-bpf`) too.
        // Mmapable: the host writes single globals in place (see kernel.rs).
        let mut gdef = MapDef::global_data("stx_globals", vec![0; globals_size as usize], false);
        gdef.flags |= ebpf_backend::maps::flags::MMAPABLE;
        let globals_map = module.add_map(gdef);
        let specs = StatSpec::for_program(p).map_err(Diagnostic::bare)?;
        let mut arrays = Vec::new();
        for (i, g) in p.globals.iter().enumerate() {
            // A scalar statistic is an array with no key fields: key 0.
            if !g.is_array() && g.ty != Ty::Stats {
                continue;
            }
            let stat = StatLayout::of(&specs[i]);
            let (kind, value_size, percpu) = match g.ty {
                Ty::Stats => (MapKind::PercpuHash, stat.size, true),
                Ty::Str => (
                    if g.wrap {
                        MapKind::LruHash
                    } else {
                        MapKind::Hash
                    },
                    strslot,
                    false,
                ),
                Ty::Long => (
                    if g.wrap {
                        MapKind::LruHash
                    } else {
                        MapKind::Hash
                    },
                    8,
                    false,
                ),
            };
            let max = g
                .size
                .filter(|&n| n > 0)
                .map(|n| n as u32)
                .unwrap_or(opts.maxmapentries);
            let ws = &widths[i];
            let mut classes = Vec::new();
            for &width in ws {
                let (keys, key_size) = key_fields(&g.keys, width);
                // The widest class keeps the array's own map name.
                let name = if width == *ws.last().unwrap_or(&width) {
                    format!("stx_g{i}")
                } else {
                    format!("stx_g{i}w{width}")
                };
                let mut def = MapDef::new(name, kind, key_size, value_size, max);
                if ws.len() > 1 {
                    // Each class could hold every entry, but the count
                    // keeps them to `max` in all: allocated as used, so
                    // the classes together take no more than one map did.
                    def.flags |= ebpf_backend::maps::flags::NO_PREALLOC;
                }
                let map = module.add_map(def.clone());
                let alt = (opts.interval && g.ty == Ty::Stats).then(|| {
                    let mut d = def;
                    d.name = format!("{}b", d.name);
                    module.add_map(d)
                });
                classes.push(KeyClass {
                    width,
                    map,
                    alt,
                    keys,
                    key_size,
                });
            }
            let slots = count_slots(ws, g, opts.interval);
            let count = (slots > 0).then(|| {
                let at = count_at;
                count_at += 8 * slots;
                at
            });
            arrays.push(ArrayMap {
                global: GlobalId(i as u32),
                classes,
                value: g.ty,
                value_size,
                percpu,
                stat,
                max_entries: max,
                count,
            });
        }
        // A counter per kind, the last error (kind and place), then the
        // output records each handler lost.
        let errors_map = module.add_map(MapDef::global_data(
            "stx_errors",
            vec![0; LOST_OFFSET as usize + p.probes.len().max(1) * 8],
            false,
        ));
        let output_map = module.add_map(MapDef::ringbuf("stx_out", opts.output_buffer));
        let usyms_map = opts.usyms.map(|l| {
            let m = module.add_map(MapDef::new("stx_usyms", MapKind::Array, 4, l.size(), 1));
            (m, l)
        });
        let ksyms_map = opts.ksyms.map(|l| {
            let m = module.add_map(MapDef::new("stx_ksyms", MapKind::Array, 4, l.size(), 1));
            (m, l)
        });
        let ucfi_map = opts.ucfi.map(|l| {
            let m = module.add_map(MapDef::new("stx_ucfi", MapKind::Array, 4, l.size(), 1));
            (m, l)
        });
        let unwind_stats = opts.unwind.then(|| {
            module.add_map(MapDef::global_data(
                "stx_unwind",
                vec![0; crate::unwind::STATS * 8],
                false,
            ))
        });
        Ok(MapLayout {
            maxstr: opts.maxstr,
            strcap: opts.strcap,
            globals_map,
            globals_size,
            scalars,
            arrays,
            errors_map,
            output_map,
            output_buffer: opts.output_buffer,
            usyms_map,
            ksyms_map,
            ucfi_map,
            unwind_stats,
            gen_offset: opts.interval.then_some(GEN_OFFSET),
        })
    }

    pub fn scalar(&self, g: GlobalId) -> Option<&ScalarSlot> {
        self.scalars.iter().find(|s| s.global == g)
    }

    pub fn array(&self, g: GlobalId) -> Option<&ArrayMap> {
        self.arrays.iter().find(|a| a.global == g)
    }

    /// The second map of the statistic whose first map is `m`, if any.
    pub fn alt_of(&self, m: MapId) -> Option<MapId> {
        self.arrays
            .iter()
            .flat_map(|a| &a.classes)
            .find(|c| c.map == m)
            .and_then(|c| c.alt)
    }

    /// The array one of whose maps is `m`.
    pub fn array_of_map(&self, m: MapId) -> Option<&ArrayMap> {
        self.arrays.iter().find(|a| a.class_of_map(m).is_some())
    }
}
