//! The kernel half of pass 5: load the compiled programs, fill the symbol
//! maps, attach every probe point, stream output records, and read the
//! global maps back when the session ends.
//!
//! Everything here is an owned kernel object (programs, maps, perf events,
//! uprobes); dropping a [`KernelSession`] releases all of it, on every path.

use crate::codegen::layout::{ErrKind, ERR_KINDS, ERR_KIND_BITS};
use crate::codegen::maps::*;
use crate::codegen::Compiled;
use crate::ir::stats::LOG_BUCKETS;
use crate::ir::{GlobalId, Program, Ty};
use crate::target::TargetInfo;
use ebpf_backend::{Attachment, LoadOptions, Loaded, RingBufReader};
use grammar::Diagnostic;
use std::time::Duration;

/// One record a kernel probe sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Print(Vec<u8>),
    Warn(String),
    Error(String),
    Exit,
    /// `system(cmd)`: a command to run.
    System(String),
    /// A hex user backtrace to print symbolized.
    Ustack(crate::runtime::ustack::Style, String),
    /// A hex kernel backtrace to print symbolized.
    Kstack(crate::runtime::ustack::Style, String),
}

/// A key field or value read back from a map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Long(i64),
    Str(String),
}

/// A statistic merged over CPUs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    pub count: i64,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
    /// Welford's running average and squared differences, and the
    /// variance (scaled), when the script reads `@variance`.
    pub avg_s: i64,
    pub m2: i64,
    pub variance_s: i64,
    /// `@hist_log` buckets in the host's layout (empty when not read).
    pub log: Vec<i64>,
    /// The buckets of each `@hist_linear` spec.
    pub linear: Vec<Vec<i64>>,
}

/// What a global holds at the end.
#[derive(Debug, Clone, PartialEq)]
pub enum GlobalValue {
    Scalar(Value),
    Array(Vec<(Vec<Value>, Value)>),
    /// Per key, each CPU's share.
    Stats(Vec<(Vec<Value>, Vec<Stat>)>),
}

pub struct KernelSession {
    loaded: Loaded,
    ring: RingBufReader,
    /// Kept alive: dropping detaches.
    attachments: Vec<Attachment>,
    pub layout: MapLayout,
    /// The globals map's value, mapped: host writes go to single fields.
    globals: ebpf_backend::MappedValue,
    /// `--interval`: the statistics' current generation, and the means to
    /// wait out handlers still using the other one.
    gen: u32,
    grace: Option<ebpf_backend::Grace>,
}

impl KernelSession {
    /// Load and attach. `hz` is the kernel tick rate for `timer.profile`.
    pub fn start(
        compiled: &Compiled,
        program: &Program,
        target: Option<&TargetInfo>,
    ) -> Result<KernelSession, Diagnostic> {
        let loaded = Loaded::load(&compiled.module, &LoadOptions::default()).map_err(|e| {
            crate::footprint::load_error(&e, compiled, program)
                .unwrap_or_else(|| crate::load_error::diagnose(&e, compiled, program, false))
        })?;
        let layout = compiled.maps.clone();
        let ring = RingBufReader::new(loaded.map(layout.output_map))
            .map_err(|e| Diagnostic::bare(format!("opening the output ring buffer: {e}")))?;
        let globals = ebpf_backend::MappedValue::new(loaded.map(layout.globals_map))
            .map_err(|e| Diagnostic::bare(format!("mapping the globals map: {e}")))?;
        let grace = match layout.gen_offset {
            Some(_) => Some(ebpf_backend::Grace::new().map_err(|e| {
                Diagnostic::bare(format!("--interval needs a BPF map-in-map: {e}"))
            })?),
            None => None,
        };
        let mut s = KernelSession {
            loaded,
            ring,
            attachments: Vec::new(),
            layout,
            globals,
            gen: 0,
            grace,
        };
        s.fill_symbols(target)?;
        if let Some(t) = target {
            s.set_target(t.pid)?;
        }
        // Pass 2 placed every site; a site ending in `?` that cannot be
        // attached is skipped, as stap skips optional points.
        for pp in compiled.probes.iter().filter(|p| !p.dispatched) {
            let probe = &program.probes[pp.probe];
            let prog = s.loaded.program(pp.prog);
            for site in &probe.sites {
                match crate::probes::attach(site, prog) {
                    Ok(atts) => s.attachments.extend(atts),
                    Err(_) if site.optional => {}
                    Err(m) => return Err(Diagnostic::error(site.span, m)),
                }
            }
        }
        // Handlers for one system call each go in their dispatcher's
        // program array, by number; the dispatcher is what is attached.
        for d in &compiled.dispatchers {
            let map = s.loaded.map(d.map);
            for &(slot, prog) in &d.slots {
                let fd = std::os::fd::AsRawFd::as_raw_fd(s.loaded.program(prog).fd());
                map.update(&slot.to_ne_bytes(), &(fd as u32).to_ne_bytes())
                    .map_err(|e| Diagnostic::bare(format!("filling a dispatch table: {e}")))?;
            }
            let atts = crate::probes::attach(&d.site, s.loaded.program(d.prog))
                .map_err(|m| Diagnostic::error(d.site.span, m))?;
            s.attachments.extend(atts);
        }
        Ok(s)
    }

    /// The packed kernel and target symbol tables (`symname`, `usymname`),
    /// each the table its layout was computed from at compile time.
    fn fill_symbols(&mut self, target: Option<&TargetInfo>) -> Result<(), Diagnostic> {
        if let Some((map, layout)) = self.layout.ksyms_map {
            self.load_packed(map, layout, &crate::ksyms::KernelSymbols::get())?;
        }
        if let (Some((map, layout)), Some(t)) = (self.layout.usyms_map, target) {
            self.load_packed(map, layout, &user_symbols(t))?;
        }
        if let (Some((map, layout)), Some(t)) = (self.layout.ucfi_map, target) {
            let table = crate::unwind::process_table(t).map_err(Diagnostic::bare)?;
            debug_assert_eq!(table.layout(), layout);
            self.loaded
                .map(map)
                .update(&0u32.to_ne_bytes(), &table.pack())
                .map_err(|e| Diagnostic::bare(format!("loading the unwind table: {e}")))?;
        }
        Ok(())
    }

    /// Whether the probes use tables of the target's modules still to be
    /// placed (the unwind table, the user symbols): a `-c` command's, sized
    /// before it ran ([`Self::place_command_tables`]).
    pub fn tables_unplaced(&self, target: Option<&TargetInfo>) -> bool {
        (self.layout.ucfi_map.is_some() || self.layout.usyms_map.is_some()) && target.is_none()
    }

    /// Fill those tables from process `t`'s mappings now (a `-c` command
    /// stopped at its entry point).
    pub fn place_command_tables(&self, t: &TargetInfo) -> Result<(), String> {
        if let Some((map, layout)) = self.layout.ucfi_map {
            let packed = crate::unwind::place(t, layout)?;
            self.loaded
                .map(map)
                .update(&0u32.to_ne_bytes(), &packed)
                .map_err(|e| format!("loading the unwind table: {e}"))?;
        }
        if let Some((map, layout)) = self.layout.usyms_map {
            let packed = user_symbols(t).pack_into(layout).ok_or_else(|| {
                format!(
                    "process {} has more symbols than its command's files had room for",
                    t.pid
                )
            })?;
            self.loaded
                .map(map)
                .update(&0u32.to_ne_bytes(), &packed)
                .map_err(|e| format!("loading the user symbols: {e}"))?;
        }
        Ok(())
    }

    fn load_packed(
        &self,
        map: ebpf_backend::MapId,
        layout: crate::ksyms::PackedLayout,
        table: &crate::ksyms::PackedSymbols,
    ) -> Result<(), Diagnostic> {
        debug_assert_eq!(table.layout(), layout);
        self.loaded
            .map(map)
            .update(&0u32.to_ne_bytes(), &table.pack())
            .map_err(|e| Diagnostic::bare(format!("loading a symbol table: {e}")))
    }

    /// Set what `target()` returns in the kernel probes.
    pub fn set_target(&self, pid: u32) -> Result<(), Diagnostic> {
        self.set_word(TARGET_OFFSET, pid as u64)
            .map_err(|e| Diagnostic::bare(format!("setting target(): {e}")))
    }

    /// Let the kernel probes run (after the begin probes) or stop them
    /// (before the end probes), as stap's session states do.
    pub fn set_running(&self, on: bool) -> Result<(), Diagnostic> {
        self.set_word(RUNNING_OFFSET, on as u64)
            .map_err(|e| Diagnostic::bare(format!("starting the kernel probes: {e}")))
    }

    /// One word of the globals map. In place through the mapping: rewriting
    /// the whole value would undo what running probes add meanwhile (a
    /// `set_running(false)` lost an increment that way).
    fn set_word(&self, at: u32, v: u64) -> Result<(), String> {
        let w = self
            .globals
            .word(at as usize)
            .ok_or("word outside the globals map")?;
        w.store(v as i64, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Store a scalar global written by a host probe, for the kernel probes.
    /// `read` is what the host read before computing `v`: a kernel update
    /// made since is kept (added to, for `additive` globals).
    pub fn write_scalar(
        &self,
        g: GlobalId,
        v: &Value,
        read: Option<&Value>,
        additive: bool,
    ) -> Result<(), String> {
        let Some(slot) = self.layout.scalar(g) else {
            return Ok(());
        };
        let m = &self.globals;
        let at = slot.offset as usize;
        use std::sync::atomic::Ordering::SeqCst;
        let w = m.word(at).ok_or("global outside the map")?;
        match v {
            Value::Long(n) => match read {
                Some(Value::Long(o)) if additive => {
                    w.fetch_add(n.wrapping_sub(*o), SeqCst);
                }
                Some(Value::Long(o)) => {
                    let _ = w.compare_exchange(*o, *n, SeqCst, SeqCst);
                }
                _ => w.store(*n, SeqCst),
            },
            Value::Str(s) => {
                let max = self.layout.strcap as usize - 1;
                let mut b = s.as_bytes()[..s.len().min(max)].to_vec();
                let len = b.len() as i64;
                b.push(0);
                m.write(at + 8, &b);
                w.store(len, SeqCst);
            }
        }
        Ok(())
    }

    /// Store an array element written by a host probe.
    pub fn write_element(&self, g: GlobalId, key: &[Value], v: &Value) -> Result<(), String> {
        let Some(a) = self.layout.array(g) else {
            return Ok(());
        };
        if a.percpu {
            return Ok(());
        }
        let cap = self.layout.strcap as usize;
        // A key string as the kernel holds it: up to its NUL, at most
        // MAXSTRINGLEN - 1 bytes.
        let text = |s: &str| -> Vec<u8> {
            let b = s.as_bytes();
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            b[..end.min(cap - 1)].to_vec()
        };
        let longest = key
            .iter()
            .map(|kv| match kv {
                Value::Str(s) => text(s).len(),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let c = a.class_for(longest);
        let mut k = vec![0u8; c.key_size as usize];
        for ((ty, off), kv) in c.keys.iter().zip(key) {
            let off = *off as usize;
            match (ty, kv) {
                (Ty::Str, Value::Str(s)) => {
                    let b = text(s);
                    k[off..off + b.len()].copy_from_slice(&b);
                }
                (_, Value::Long(n)) => k[off..off + 8].copy_from_slice(&n.to_ne_bytes()),
                _ => return Ok(()),
            }
        }
        let mut val = vec![0u8; a.value_size as usize];
        match v {
            Value::Long(n) => val[..8].copy_from_slice(&n.to_ne_bytes()),
            Value::Str(s) => {
                let b = &s.as_bytes()[..s.len().min(cap - 1)];
                val[..8].copy_from_slice(&(b.len() as u64).to_ne_bytes());
                val[8..8 + b.len()].copy_from_slice(b);
            }
        }
        let map = self.loaded.map(c.map);
        let Some(at) = a.count else {
            return map.update(&k, &val).map_err(|e| e.to_string());
        };
        // Counted (see `ArrayMap::count`): a new element takes a place.
        use std::sync::atomic::Ordering::SeqCst;
        if map.lookup(&k).map_err(|e| e.to_string())?.is_none() {
            let w = self
                .globals
                .word(at as usize)
                .ok_or("count outside the map")?;
            if w.fetch_add(1, SeqCst) >= i64::from(a.max_entries) {
                w.fetch_sub(1, SeqCst);
                return Err("array overflow, check MAXMAPENTRIES".into());
            }
        }
        map.update(&k, &val).map_err(|e| e.to_string())
    }

    /// Wait up to `timeout` for records.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(Record)) {
        let _ = self.ring.poll(timeout, |bytes| {
            if let Some(r) = decode_record(bytes) {
                f(r);
            }
        });
    }

    /// Drain what is left in the ring buffer (the probes are stopped, so
    /// this ends).
    pub fn drain(&mut self, mut f: impl FnMut(Record)) {
        while self.ring.consume(|bytes| {
            if let Some(r) = decode_record(bytes) {
                f(r);
            }
        }) > 0
        {}
    }

    /// Errors counted in the kernel, by kind.
    pub fn errors(&self) -> [u64; ERR_KINDS] {
        let mut out = [0u64; ERR_KINDS];
        if let Ok(Some(v)) = self
            .loaded
            .map(self.layout.errors_map)
            .lookup(&0u32.to_ne_bytes())
        {
            for (i, c) in v.chunks(8).take(ERR_KINDS).enumerate() {
                out[i] = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
            }
        }
        out
    }

    /// Output records each probe handler could not send (the ring buffer
    /// was full), indexed as `Program::probes`.
    /// The unwinder's counters (`crate::unwind::STAT_*`), if a probe
    /// unwinds.
    pub fn unwind_stats(&self) -> Option<[u64; crate::unwind::STATS]> {
        let map = self.layout.unwind_stats?;
        let v = self.loaded.map(map).lookup(&0u32.to_ne_bytes()).ok()??;
        let mut out = [0u64; crate::unwind::STATS];
        for (i, c) in v.chunks(8).take(out.len()).enumerate() {
            out[i] = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
        }
        Some(out)
    }

    pub fn lost(&self, nprobes: usize) -> Vec<u64> {
        let mut out = vec![0u64; nprobes];
        if let Ok(Some(v)) = self
            .loaded
            .map(self.layout.errors_map)
            .lookup(&0u32.to_ne_bytes())
        {
            let at = LOST_OFFSET as usize;
            for (i, c) in v
                .get(at..)
                .unwrap_or(&[])
                .chunks(8)
                .take(nprobes)
                .enumerate()
            {
                out[i] = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
            }
        }
        out
    }

    /// A kernel probe called `exit()` (its record may have been lost).
    pub fn exit_requested(&self) -> bool {
        self.globals
            .word(EXIT_OFFSET as usize)
            .is_some_and(|w| w.load(std::sync::atomic::Ordering::SeqCst) != 0)
    }

    /// The last probe error: its kind and the instruction tag (index into
    /// `Compiled::spans`) of the place that failed.
    pub fn last_error(&self) -> Option<(usize, usize)> {
        let v = self
            .loaded
            .map(self.layout.errors_map)
            .lookup(&0u32.to_ne_bytes())
            .ok()??;
        let at = ERR_KINDS * 8;
        let e = u64::from_ne_bytes(v.get(at..at + 8)?.try_into().ok()?);
        let kind = (e & (ERR_KINDS as u64 - 1)) as usize;
        (kind != 0).then_some((kind, (e >> ERR_KIND_BITS) as usize))
    }

    /// End an interval (`--interval`): the kernel probes aggregate into
    /// the other generation's statistics from now on. Returns once no
    /// handler can still write to the old one, whose generation it
    /// returns, for [`Self::read_globals_of`] and then
    /// [`Self::clear_generation`].
    pub fn flip_generation(&mut self) -> Result<u32, String> {
        let (Some(at), Some(grace)) = (self.layout.gen_offset, &self.grace) else {
            return Err("no --interval maps".into());
        };
        let old = self.gen;
        self.gen ^= 1;
        self.set_word(at, self.gen as u64)?;
        grace.wait().map_err(|e| e.to_string())?;
        Ok(old)
    }

    /// Empty generation `gen`'s statistics (no handler uses them).
    pub fn clear_generation(&self, gen: u32) {
        for a in &self.layout.arrays {
            for c in a.classes.iter().filter(|c| c.alt.is_some()) {
                let map = self.loaded.map(c.map_of(gen));
                let keys: Vec<Vec<u8>> = map.keys().flatten().collect();
                for k in keys {
                    let _ = map.delete(&k);
                }
            }
            // Its entry count for that generation starts again.
            if let (Some(at), Some(_)) = (a.count, a.widest().alt) {
                if let Some(w) = self.globals.word(at as usize + 8 * gen as usize) {
                    w.store(0, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }

    /// Every global the kernel probes wrote, decoded (statistics of the
    /// current generation).
    pub fn read_globals(&self, program: &Program) -> Vec<(GlobalId, GlobalValue)> {
        self.read_globals_of(program, self.gen)
    }

    /// Every global's kernel value, statistics from generation `gen`.
    pub fn read_globals_of(&self, program: &Program, gen: u32) -> Vec<(GlobalId, GlobalValue)> {
        let mut out = Vec::new();
        let maxstr = self.layout.maxstr as usize;
        if let Ok(Some(v)) = self
            .loaded
            .map(self.layout.globals_map)
            .lookup(&0u32.to_ne_bytes())
        {
            for s in &self.layout.scalars {
                let off = s.offset as usize;
                let val = match s.ty {
                    Ty::Str => Value::Str(slot_string(&v[off..], maxstr)),
                    _ => Value::Long(i64::from_ne_bytes(
                        v[off..off + 8].try_into().unwrap_or([0; 8]),
                    )),
                };
                out.push((s.global, GlobalValue::Scalar(val)));
            }
        }
        for a in &self.layout.arrays {
            let is_stats = program.globals[a.global.0 as usize].ty == Ty::Stats;
            let mut stats = Vec::new();
            let mut rows = Vec::new();
            for c in &a.classes {
                let decode_key = |k: &[u8]| -> Vec<Value> {
                    c.keys
                        .iter()
                        .map(|(ty, off)| {
                            let off = *off as usize;
                            match ty {
                                Ty::Str => {
                                    Value::Str(cstr(&k[off..(off + c.width as usize).min(k.len())]))
                                }
                                _ => Value::Long(i64::from_ne_bytes(
                                    k[off..off + 8].try_into().unwrap_or([0; 8]),
                                )),
                            }
                        })
                        .collect()
                };
                if is_stats {
                    let map = self.loaded.map(c.map_of(gen));
                    for key in map.keys().flatten() {
                        let Ok(Some(per_cpu)) = map.lookup_percpu(&key) else {
                            continue;
                        };
                        stats.push((decode_key(&key), cpu_stats(&per_cpu, &a.stat)));
                    }
                } else {
                    let map = self.loaded.map(c.map);
                    for (k, v) in map.entries().unwrap_or_default() {
                        let val = match a.value {
                            Ty::Str => Value::Str(slot_string(&v, maxstr)),
                            _ => {
                                Value::Long(i64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
                            }
                        };
                        rows.push((decode_key(&k), val));
                    }
                }
            }
            out.push((
                a.global,
                if is_stats {
                    GlobalValue::Stats(stats)
                } else {
                    GlobalValue::Array(rows)
                },
            ));
        }
        out
    }

    /// How many perf events / probes are attached.
    pub fn attachment_count(&self) -> usize {
        self.attachments.iter().map(|a| a.event_count()).sum()
    }

    /// The kernel's ids of our programs and maps (for checks in tests).
    pub fn kernel_ids(&self) -> (Vec<u32>, Vec<u32>) {
        self.loaded.kernel_ids()
    }
}

/// `N probe error(s): KIND` lines (without `WARNING: `), one per kind of
/// probe error.
pub fn error_lines(errors: &[u64; ERR_KINDS]) -> Vec<String> {
    errors
        .iter()
        .enumerate()
        .filter(|(i, n)| **n > 0 && ErrKind::is_error(*i))
        .map(|(i, n)| format!("{n} probe error(s): {}", ErrKind::message(i)))
        .collect()
}

/// (errors, skipped probes) as stap's final `Number of errors` line counts.
pub fn error_totals(errors: &[u64; ERR_KINDS]) -> (u64, u64) {
    let skipped = errors[ErrKind::Skipped as usize];
    let total = errors
        .iter()
        .enumerate()
        .filter(|(i, _)| ErrKind::is_error(*i))
        .map(|(_, n)| n)
        .sum();
    (total, skipped)
}

/// Reads `--skip-badvars` turned into 0 in the kernel probes.
pub fn skipped_reads(errors: &[u64; ERR_KINDS]) -> u64 {
    errors[ErrKind::SkippedRead as usize]
}

/// The report line for reads `--skip-badvars` turned into 0 (host and
/// kernel probes alike; without `WARNING: `).
pub fn skipped_reads_line(n: u64) -> String {
    format!(
        "{n} skipped bad read(s): {}",
        ErrKind::message(ErrKind::SkippedRead as usize)
    )
}

fn decode_record(bytes: &[u8]) -> Option<Record> {
    if bytes.len() < 8 {
        return None;
    }
    let head = u64::from_ne_bytes(bytes[..8].try_into().ok()?);
    let kind = head >> 32;
    let len = (head & 0xffff_ffff) as usize;
    let body = &bytes[8..(8 + len).min(bytes.len())];
    Some(match kind {
        REC_PRINT => Record::Print(body.to_vec()),
        REC_WARN => Record::Warn(String::from_utf8_lossy(body).into_owned()),
        REC_SYSTEM => Record::System(String::from_utf8_lossy(body).into_owned()),
        REC_ERROR => Record::Error(String::from_utf8_lossy(body).into_owned()),
        REC_USTACK_FULL | REC_USTACK_USYMS | REC_USTACK_BRIEF => {
            use crate::runtime::ustack::Style;
            let style = match kind {
                REC_USTACK_FULL => Style::Full,
                REC_USTACK_BRIEF => Style::Brief,
                _ => Style::Usyms,
            };
            Record::Ustack(style, String::from_utf8_lossy(body).into_owned())
        }
        REC_KSTACK_FULL | REC_KSTACK_SYMS => {
            use crate::runtime::ustack::Style;
            let style = if kind == REC_KSTACK_FULL {
                Style::Full
            } else {
                Style::Usyms
            };
            Record::Kstack(style, String::from_utf8_lossy(body).into_owned())
        }
        _ => Record::Exit,
    })
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn slot_string(v: &[u8], maxstr: usize) -> String {
    if v.len() < 8 {
        return String::new();
    }
    let len = (u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])) as usize).min(maxstr);
    let data = &v[8..(8 + len).min(v.len())];
    String::from_utf8_lossy(data).into_owned()
}

/// Each CPU's share of a statistic that has values (stap merges the
/// partials when it reads them; so does the host: the variance needs them
/// apart).
fn cpu_stats(per_cpu: &[Vec<u8>], layout: &StatLayout) -> Vec<Stat> {
    let mut out = Vec::new();
    for v in per_cpu {
        let rd = |o: usize| {
            i64::from_ne_bytes(
                v.get(o..o + 8)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or([0; 8]),
            )
        };
        let count = rd(STAT_COUNT as usize);
        if count == 0 {
            continue;
        }
        let buckets = |at: u32, n: usize| (0..n).map(|b| rd(at as usize + b * 8)).collect();
        out.push(Stat {
            count,
            sum: rd(STAT_SUM as usize),
            min: rd(STAT_MIN as usize),
            max: rd(STAT_MAX as usize),
            avg_s: rd(STAT_AVG_S as usize),
            m2: rd(STAT_M2 as usize),
            variance_s: rd(STAT_VARIANCE_S as usize),
            log: layout
                .log
                .map(|at| buckets(at, LOG_BUCKETS))
                .unwrap_or_default(),
            linear: layout
                .linear
                .iter()
                .map(|(l, at)| buckets(*at, l.buckets()))
                .collect(),
        });
    }
    out
}

/// The target's symbol table packed for `usymname` in kernel probes.
pub fn user_symbols(t: &TargetInfo) -> crate::ksyms::PackedSymbols {
    let table = symbol_table(t);
    crate::ksyms::PackedSymbols::with_sizes(table.iter().map(|(a, s, n)| (*a, *s, n.as_str())))
}

/// The user symbol table's size for a `-c` command that has not run yet:
/// the functions of its `files` (executable and linked libraries), each
/// with a name and at most one nameless entry after it, with a quarter
/// more room (what it may `dlopen`); the search covers the whole capacity.
/// Filled when the command has mapped them
/// ([`KernelSession::place_command_tables`]).
pub fn command_symbols_layout(files: &[std::path::PathBuf]) -> crate::ksyms::PackedLayout {
    let (mut entries, mut names) = (0usize, 0usize);
    for f in files {
        let Ok(table) = crate::debuginfo::Module::open(f).and_then(|m| m.own_symbols()) else {
            continue;
        };
        for s in table.functions() {
            entries += 2;
            names += s.name.len() + 2;
        }
    }
    let room = |n: usize| ((n + n / 4).max(1) as u32).next_power_of_two();
    let cap = room(entries);
    crate::ksyms::PackedLayout {
        cap,
        names_cap: room(names),
        count: cap,
        sized: true,
    }
}

/// (runtime address, size, name), sorted by address.
type SymbolList = Vec<(u64, u64, String)>;

/// Sorted (runtime address, size, name) of the target's functions: the
/// executable and every mapped shared object. A nameless entry (size 0)
/// marks where a function ends and no other starts.
pub fn symbol_table(t: &TargetInfo) -> SymbolList {
    // Computed once per process: the code generator sizes the search by it
    // and the loader fills the maps with it.
    static CACHE: std::sync::Mutex<Option<(u32, SymbolList)>> = std::sync::Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((pid, table)) = cache.as_ref() {
        if *pid == t.pid {
            return table.clone();
        }
    }
    let table = build_symbol_table(t);
    *cache = Some((t.pid, table.clone()));
    table
}

fn build_symbol_table(t: &TargetInfo) -> SymbolList {
    let mut out = Vec::new();
    let mut ranges: Vec<(u64, u64, u64, String)> = Vec::new();
    for file in t.mapped_files() {
        let t0 = std::time::Instant::now();
        let Ok((m, bias)) = crate::loadinfo::module_load(t, file) else {
            continue;
        };
        let Ok(table) = m.own_symbols() else { continue };
        for s in table.functions() {
            let start = s.address.wrapping_add(bias);
            ranges.push((
                start,
                start.saturating_add(s.size.max(1)),
                s.size,
                s.name.clone(),
            ));
        }
        if std::env::var_os("STAPXX_TIME_SYMS").is_some() {
            crate::ewriteln!(
                "symbols of {}: {:.1} ms",
                file.display(),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    // One name per address; where a function's code ends before the next
    // one starts, an entry without a name: an address there (JIT code in
    // an anonymous mapping, a gap) has no symbol, as the host's lookup says.
    ranges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    ranges.dedup_by(|a, b| a.0 == b.0);
    for (i, (start, end, size, name)) in ranges.iter().enumerate() {
        out.push((*start, *size, name.clone()));
        if ranges.get(i + 1).is_none_or(|next| next.0 > *end) {
            out.push((*end, 0, String::new()));
        }
    }
    out
}

/// The kernel's tick rate (CONFIG_HZ), which `timer.profile` samples at.
/// Read once: the host's `jiffies()`, `timer.jiffies` and `timer.profile`
/// all use this value.
pub fn kernel_hz() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        crate::system::pp_config(false)
            .kconfig
            .get("CONFIG_HZ")
            .and_then(|v| v.parse().ok())
            .unwrap_or(250)
    })
}
