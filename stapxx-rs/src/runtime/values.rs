//! Global storage of a running script: scalars, associative arrays and
//! statistics, with stap's rules.
//!
//! * Strings are byte strings (`Vec<u8>`): user memory is not UTF-8, and
//!   stap compares strings byte-wise (`strncmp`).
//! * Arrays keep insertion order (stap's maps keep their entries on a list
//!   in the order they were created; an update keeps the position, a delete
//!   and re-insert moves the key to the end). They hold at most the declared
//!   size or `MAXMAPENTRIES` entries; one more is an error
//!   ("Array overflow, check ...") unless the array is declared with `%`,
//!   which drops the oldest entry instead.
//! * Reading a missing element gives 0 or "" and does not create it;
//!   assigning any value (0 and "" included) stores it.
//! * Statistics are kept as stap keeps them: a partial per CPU, aggregated
//!   when read ([`Stat::aggregate`]), with the same integer arithmetic for
//!   `@avg` and `@variance` and the same histogram buckets.
//!
//! # Merging kernel-side data
//!
//! Kernel probes (the eBPF back end) keep their globals in BPF maps. Before
//! the `end` probes run, the session's owner copies those contents in with
//! [`Globals::set_scalar`], [`Globals::set_element`] and
//! [`Globals::add_stat_partial`] (one call per CPU's partial of a per-CPU
//! statistic; host-side `<<<` adds go to a separate host partial, so the
//! two never overwrite each other). Histogram buckets use stap's layout:
//! [`LOG_BUCKETS`] buckets for `@hist_log` with the value-0 bucket at
//! [`LOG_BUCKET0`] (see [`log_bucket`]), and for `@hist_linear(lo, hi, step)`
//! an underflow bucket, `(hi - lo) / step + 1` buckets, and an overflow
//! bucket (see [`Linear::bucket`]).

use crate::ir::{Const, GlobalId, Program, Ty};
use grammar::ast::StatOp;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

/// A script value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    Long(i64),
    Str(Vec<u8>),
}

impl Value {
    /// The zero value of a type (stats have none; they read as long 0).
    pub fn zero(ty: Ty) -> Value {
        match ty {
            Ty::Str => Value::Str(Vec::new()),
            _ => Value::Long(0),
        }
    }

    pub fn as_long(&self) -> i64 {
        match self {
            Value::Long(n) => *n,
            Value::Str(_) => 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Str(s) => s,
            Value::Long(_) => b"",
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Value::Str(s) => s,
            Value::Long(n) => n.to_string().into_bytes(),
        }
    }
}

/// Compare two values as stap sorts them: longs numerically, strings
/// byte-wise (`strcmp`); a long sorts before a string (never mixed in
/// practice: an array's key and value types are fixed).
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Long(x), Value::Long(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        (Value::Long(_), Value::Str(_)) => Ordering::Less,
        (Value::Str(_), Value::Long(_)) => Ordering::Greater,
    }
}

/// An array key: one value per index.
pub type Key = Vec<Value>;

/// The array is full (and does not wrap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// An insertion-ordered map with a size limit.
#[derive(Debug, Clone)]
pub struct Array<T> {
    entries: HashMap<Key, (u64, T)>,
    order: BTreeMap<u64, Key>,
    next: u64,
    max: usize,
    wrap: bool,
}

impl<T> Array<T> {
    /// Every value, mutably (insertion order is kept).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.values_mut().map(|(_, v)| v)
    }

    pub fn new(max: usize, wrap: bool) -> Array<T> {
        Array {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            max,
            wrap,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &[Value]) -> Option<&T> {
        self.entries.get(key).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &[Value]) -> bool {
        self.entries.contains_key(key)
    }

    /// The entry for `key`, created with `init` if missing (which may
    /// overflow, or drop the oldest entry of a wrapping array).
    pub fn entry(&mut self, key: Key, init: impl FnOnce() -> T) -> Result<&mut T, Overflow> {
        if !self.entries.contains_key(&key) {
            if self.entries.len() >= self.max {
                if !self.wrap || self.max == 0 {
                    return Err(Overflow);
                }
                if let Some((_, oldest)) = self.order.pop_first() {
                    self.entries.remove(&oldest);
                }
            }
            let seq = self.next;
            self.next += 1;
            self.order.insert(seq, key.clone());
            self.entries.insert(key.clone(), (seq, init()));
        }
        match self.entries.get_mut(&key) {
            Some((_, v)) => Ok(v),
            None => Err(Overflow),
        }
    }

    /// Store `value` under `key` (keeping the key's position if it exists).
    pub fn set(&mut self, key: Key, value: T) -> Result<(), Overflow> {
        if let Some((_, slot)) = self.entries.get_mut(&key) {
            *slot = value;
            return Ok(());
        }
        self.entry(key, || value).map(|_| ())
    }

    pub fn remove(&mut self, key: &[Value]) {
        if let Some((seq, _)) = self.entries.remove(key) {
            self.order.remove(&seq);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &T)> {
        self.order
            .values()
            .filter_map(|k| self.entries.get(k).map(|(_, v)| (k, v)))
    }
}

// ---------------------------------------------------------------- statistics

pub use crate::ir::stats::*;

/// One CPU's (or the host's) share of a statistic, as stap's `stat_data`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatPartial {
    pub count: i64,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
    /// Running average scaled by the variance bit shift (Welford).
    pub avg_s: i64,
    /// Welford's sum of squared differences.
    pub m2: i64,
    /// Scaled sample variance of this partial.
    pub variance_s: i64,
    /// `@hist_log` buckets (empty when the statistic has none).
    pub log: Vec<i64>,
    /// One bucket vector per `@hist_linear` spec, in [`StatSpec::linear`] order.
    pub linear: Vec<Vec<i64>>,
}

impl StatPartial {
    /// An empty partial with the histograms `spec` asks for.
    pub fn new(spec: &StatSpec) -> StatPartial {
        StatPartial {
            log: if spec.log {
                vec![0; LOG_BUCKETS]
            } else {
                Vec::new()
            },
            linear: spec.linear.iter().map(|l| vec![0; l.buckets()]).collect(),
            ..StatPartial::default()
        }
    }

    /// `<<< val`.
    pub fn add(&mut self, spec: &StatSpec, val: i64) {
        let shift = spec.variance.unwrap_or(0);
        if self.count == 0 {
            self.count = 1;
            self.sum = val;
            self.min = val;
            self.max = val;
            self.avg_s = val.wrapping_shl(shift);
            self.m2 = 0;
        } else {
            self.count = self.count.wrapping_add(1);
            self.sum = self.sum.wrapping_add(val);
            self.max = self.max.max(val);
            self.min = self.min.min(val);
            if spec.variance.is_some() {
                let scaled = val.wrapping_shl(shift);
                let delta = scaled.wrapping_sub(self.avg_s);
                self.avg_s = self.avg_s.wrapping_add(div64(delta, self.count));
                self.m2 = self
                    .m2
                    .wrapping_add(delta.wrapping_mul(scaled.wrapping_sub(self.avg_s)));
                self.variance_s = if self.count < 2 {
                    -1
                } else {
                    div64(self.m2, self.count - 1)
                };
            }
        }
        if self.log.len() == LOG_BUCKETS {
            self.log[log_bucket(val)] += 1;
        }
        for (l, h) in spec.linear.iter().zip(self.linear.iter_mut()) {
            if let Some(b) = h.get_mut(l.bucket(val)) {
                *b += 1;
            }
        }
    }
}

/// stap's `_stp_div64` without the error: x / 0 is 0, x / -1 is -x.
pub fn div64(x: i64, y: i64) -> i64 {
    if y == 0 {
        0
    } else {
        x.wrapping_div(y)
    }
}

/// A statistic: the host's partial plus any partials merged from the kernel.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    pub host: StatPartial,
    pub merged: Vec<StatPartial>,
}

impl Stat {
    pub fn new(spec: &StatSpec) -> Stat {
        Stat {
            host: StatPartial::new(spec),
            merged: Vec::new(),
        }
    }

    pub fn add(&mut self, spec: &StatSpec, val: i64) {
        self.host.add(spec, val);
    }

    /// The aggregate over every partial, computed as stap's `_stp_stat_get`
    /// does (variance by the total-variance formula over the partials).
    pub fn aggregate(&self, spec: &StatSpec) -> StatPartial {
        let mut agg = StatPartial::new(spec);
        let parts = std::iter::once(&self.host).chain(&self.merged);
        for p in parts.clone().filter(|p| p.count > 0) {
            if agg.count == 0 {
                agg.min = p.min;
                agg.max = p.max;
            }
            agg.count = agg.count.wrapping_add(p.count);
            agg.sum = agg.sum.wrapping_add(p.sum);
            agg.max = agg.max.max(p.max);
            agg.min = agg.min.min(p.min);
            for (a, b) in agg.log.iter_mut().zip(&p.log) {
                *a = a.wrapping_add(*b);
            }
            for (ah, bh) in agg.linear.iter_mut().zip(&p.linear) {
                for (a, b) in ah.iter_mut().zip(bh) {
                    *a = a.wrapping_add(*b);
                }
            }
        }
        if let Some(shift) = spec.variance {
            agg.avg_s = div64(agg.sum.wrapping_shl(shift), agg.count);
            let (mut s1, mut s2) = (0i64, 0i64);
            for p in parts.filter(|p| p.count > 0) {
                let d = p.avg_s.wrapping_sub(agg.avg_s);
                s1 = s1.wrapping_add(p.count.wrapping_mul(d).wrapping_mul(d));
                s2 = s2.wrapping_add((p.count - 1).wrapping_mul(p.variance_s));
            }
            agg.variance_s = div64(s1.wrapping_add(s2), agg.count - 1);
        }
        agg
    }

    /// A scalar read (`@count` ...) of the aggregate; `None` for an empty
    /// aggregate where stap reports "empty aggregate".
    pub fn get(&self, spec: &StatSpec, op: StatOp) -> Option<i64> {
        let agg = self.aggregate(spec);
        match op {
            StatOp::Count => Some(agg.count),
            StatOp::Sum => Some(agg.sum),
            _ if agg.count == 0 => None,
            StatOp::Min => Some(agg.min),
            StatOp::Max => Some(agg.max),
            StatOp::Avg => Some(div64(agg.sum, agg.count)),
            StatOp::Variance => Some(agg.variance_s >> (2 * spec.variance.unwrap_or(0)).min(63)),
            StatOp::HistLog | StatOp::HistLinear => Some(0),
        }
    }
}

// ---------------------------------------------------------------- globals

/// The storage of one global.
#[derive(Debug, Clone)]
pub enum Store {
    Scalar(Value),
    Stat(Stat),
    Array(Array<Value>),
    StatArray(Array<Stat>),
}

/// Why data could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such global, or it is not of the kind the call needs.
    Kind(String),
    /// The array is full: the message stap prints.
    Overflow(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Kind(m) | StoreError::Overflow(m) => f.write_str(m),
        }
    }
}

/// Every global of a running script.
#[derive(Debug, Clone)]
pub struct Globals {
    pub stores: Vec<Store>,
    pub specs: Vec<StatSpec>,
    /// Declared size (else MAXMAPENTRIES) per global, for messages.
    sizes: Vec<Option<i64>>,
    names: Vec<String>,
    maxstringlen: usize,
}

impl Globals {
    /// Drop every statistic partial merged from the kernel, before merging
    /// a fresh reading of the kernel's maps.
    pub fn clear_merged(&mut self) {
        for st in &mut self.stores {
            match st {
                Store::Stat(s) => s.merged.clear(),
                Store::StatArray(a) => a.values_mut().for_each(|s| s.merged.clear()),
                _ => {}
            }
        }
    }

    /// Empty every statistic, host and kernel partials alike: a new
    /// interval (`--interval`) aggregates afresh.
    pub fn reset_stats(&mut self) {
        for (st, spec) in self.stores.iter_mut().zip(&self.specs) {
            match st {
                Store::Stat(s) => *s = Stat::new(spec),
                Store::StatArray(a) => a.clear(),
                _ => {}
            }
        }
    }

    /// Storage for `p`'s globals, initialised as declared.
    pub fn new(p: &Program, maxmapentries: usize, maxstringlen: usize) -> Result<Globals, String> {
        let specs = StatSpec::for_program(p)?;
        let mut stores = Vec::new();
        for (g, spec) in p.globals.iter().zip(&specs) {
            let max = match g.size {
                Some(n) if n > 0 => n as usize,
                _ => maxmapentries,
            };
            stores.push(match (g.is_array(), g.ty) {
                (false, Ty::Stats) => Store::Stat(Stat::new(spec)),
                (false, ty) => Store::Scalar(match &g.init {
                    Some(Const::Long(n)) => Value::Long(*n),
                    Some(Const::Str(s)) => {
                        Value::Str(truncate(grammar::bytes::literal_bytes(s), maxstringlen))
                    }
                    None => Value::zero(ty),
                }),
                (true, Ty::Stats) => Store::StatArray(Array::new(max, g.wrap)),
                (true, _) => Store::Array(Array::new(max, g.wrap)),
            });
        }
        Ok(Globals {
            stores,
            specs,
            sizes: p
                .globals
                .iter()
                .map(|g| g.size.filter(|n| *n > 0))
                .collect(),
            names: p.globals.iter().map(|g| g.name.clone()).collect(),
            maxstringlen,
        })
    }

    /// stap's message for a full array.
    pub fn overflow_message(&self, g: GlobalId) -> String {
        match self.sizes.get(g.0 as usize).copied().flatten() {
            Some(n) => format!("Array overflow, check size limit ({n})"),
            None => "Array overflow, check MAXMAPENTRIES".into(),
        }
    }

    pub fn name(&self, g: GlobalId) -> &str {
        self.names
            .get(g.0 as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    fn kind_error(&self, g: GlobalId, what: &str) -> StoreError {
        StoreError::Kind(format!("global '{}' is not {what}", self.name(g)))
    }

    /// Set a scalar global (long or string).
    pub fn set_scalar(&mut self, g: GlobalId, v: Value) -> Result<(), StoreError> {
        let v = self.clip(v);
        match self.stores.get_mut(g.0 as usize) {
            Some(Store::Scalar(s)) => {
                *s = v;
                Ok(())
            }
            _ => Err(self.kind_error(g, "a scalar")),
        }
    }

    /// Set one element of an array global.
    pub fn set_element(&mut self, g: GlobalId, key: Key, v: Value) -> Result<(), StoreError> {
        let v = self.clip(v);
        let key: Key = key.into_iter().map(|k| self.clip(k)).collect();
        let msg = self.overflow_message(g);
        match self.stores.get_mut(g.0 as usize) {
            Some(Store::Array(a)) => a.set(key, v).map_err(|_| StoreError::Overflow(msg)),
            _ => Err(self.kind_error(g, "an array of values")),
        }
    }

    /// Add one partial (e.g. one CPU's) of a statistic, or of the element
    /// `key` of a statistics array. Its histogram vectors must have the
    /// layout of [`StatPartial::new`] for this global's spec; vectors of
    /// another length are ignored.
    pub fn add_stat_partial(
        &mut self,
        g: GlobalId,
        key: Option<Key>,
        mut partial: StatPartial,
    ) -> Result<(), StoreError> {
        let spec = self.specs.get(g.0 as usize).cloned().unwrap_or_default();
        let empty = StatPartial::new(&spec);
        if partial.log.len() != empty.log.len() {
            partial.log = empty.log.clone();
        }
        if partial.linear.len() != empty.linear.len()
            || partial
                .linear
                .iter()
                .zip(&empty.linear)
                .any(|(a, b)| a.len() != b.len())
        {
            partial.linear = empty.linear.clone();
        }
        let msg = self.overflow_message(g);
        let key = key.map(|k| k.into_iter().map(|v| self.clip(v)).collect::<Key>());
        match (self.stores.get_mut(g.0 as usize), key) {
            (Some(Store::Stat(s)), None) => {
                s.merged.push(partial);
                Ok(())
            }
            (Some(Store::StatArray(a)), Some(k)) => {
                let s = a
                    .entry(k, || Stat::new(&spec))
                    .map_err(|_| StoreError::Overflow(msg))?;
                s.merged.push(partial);
                Ok(())
            }
            _ => Err(self.kind_error(g, "a statistic of that shape")),
        }
    }

    fn clip(&self, v: Value) -> Value {
        match v {
            Value::Str(s) => Value::Str(truncate(s, self.maxstringlen)),
            v => v,
        }
    }
}

/// A string as stap stores it: at most `MAXSTRINGLEN - 1` bytes (the buffer
/// holds the terminating NUL too), cut at the first NUL.
pub fn truncate(mut s: Vec<u8>, maxstringlen: usize) -> Vec<u8> {
    if let Some(nul) = s.iter().position(|&b| b == 0) {
        s.truncate(nul);
    }
    s.truncate(maxstringlen.saturating_sub(1));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_round_trip() {
        assert_eq!(log_bucket(0), LOG_BUCKET0);
        assert_eq!(log_bucket_value(log_bucket(1)), 1);
        assert_eq!(log_bucket_value(log_bucket(3)), 2);
        assert_eq!(log_bucket_value(log_bucket(4)), 4);
        assert_eq!(log_bucket_value(log_bucket(-1)), -1);
        assert_eq!(log_bucket_value(log_bucket(-3)), -2);
        assert_eq!(log_bucket_value(log_bucket(i64::MAX)), 1 << 62);
        assert_eq!(log_bucket(i64::MIN), 0);
        assert_eq!(log_bucket_value(0), i64::MIN);
    }

    #[test]
    fn linear_buckets() {
        let l = Linear::new(0, 100, 10).unwrap();
        assert_eq!(l.buckets(), 13);
        assert_eq!(l.bucket(-1), 0);
        assert_eq!(l.bucket(0), 1);
        assert_eq!(l.bucket(9), 1);
        assert_eq!(l.bucket(10), 2);
        assert_eq!(l.bucket(100), 11);
        assert_eq!(l.bucket(110), 12);
        assert_eq!(l.bucket(i64::MAX), 12);
        assert!(Linear::new(0, 10, 0).is_err());
        assert!(Linear::new(0, 1000, 1).is_err());
        assert!(Linear::new(10, 0, 1).is_err());
    }

    #[test]
    fn array_order_and_overflow() {
        let mut a: Array<Value> = Array::new(2, false);
        a.set(vec![Value::Long(2)], Value::Long(20)).unwrap();
        a.set(vec![Value::Long(1)], Value::Long(10)).unwrap();
        a.set(vec![Value::Long(2)], Value::Long(21)).unwrap();
        let keys: Vec<i64> = a.iter().map(|(k, _)| k[0].as_long()).collect();
        assert_eq!(keys, [2, 1]);
        assert_eq!(a.set(vec![Value::Long(3)], Value::Long(0)), Err(Overflow));
        let mut w: Array<Value> = Array::new(2, true);
        for i in 0..3 {
            w.set(vec![Value::Long(i)], Value::Long(i)).unwrap();
        }
        let keys: Vec<i64> = w.iter().map(|(k, _)| k[0].as_long()).collect();
        assert_eq!(keys, [1, 2]);
    }

    #[test]
    fn stats_variance_like_stap() {
        let spec = StatSpec {
            variance: Some(0),
            ..StatSpec::default()
        };
        let mut s = Stat::new(&spec);
        for v in [1, 2, 3, 4, 10] {
            s.add(&spec, v);
        }
        assert_eq!(s.get(&spec, StatOp::Count), Some(5));
        assert_eq!(s.get(&spec, StatOp::Avg), Some(4));
        assert_eq!(s.get(&spec, StatOp::Min), Some(1));
        assert_eq!(s.get(&spec, StatOp::Max), Some(10));
        // The exact sample variance is 12.5; stap's integer Welford with no
        // bit shift truncates the running mean (1, 1, 1, 1, 2), which gives
        // M2 = 86, a per-CPU variance of 21 and, through the total-variance
        // formula, (5 * (2 - 4)^2 + 4 * 21) / 4 = 26.
        assert_eq!(s.get(&spec, StatOp::Variance), Some(26));
        let empty = Stat::new(&spec);
        assert_eq!(empty.get(&spec, StatOp::Count), Some(0));
        assert_eq!(empty.get(&spec, StatOp::Sum), Some(0));
        assert_eq!(empty.get(&spec, StatOp::Min), None);
    }

    #[test]
    fn kernel_partials_merge_with_host_adds() {
        let spec = StatSpec {
            log: true,
            ..StatSpec::default()
        };
        let mut s = Stat::new(&spec);
        s.add(&spec, 5);
        let mut cpu1 = StatPartial::new(&spec);
        for v in [1, 100] {
            cpu1.add(&spec, v);
        }
        s.merged.push(cpu1);
        let agg = s.aggregate(&spec);
        assert_eq!((agg.count, agg.sum, agg.min, agg.max), (3, 106, 1, 100));
        assert_eq!(agg.log[log_bucket(100)], 1);
        assert_eq!(agg.log[log_bucket(5)], 1);
    }

    fn global(name: &str, ty: Ty, keys: Vec<Ty>, size: Option<i64>) -> crate::ir::GlobalVar {
        crate::ir::GlobalVar {
            name: name.into(),
            ty,
            keys,
            size,
            wrap: false,
            init: None,
            span: grammar::Span::default(),
        }
    }

    #[test]
    fn globals_take_kernel_data() {
        let p = Program {
            globals: vec![
                global("n", Ty::Long, vec![], None),
                global("bts", Ty::Long, vec![Ty::Str], Some(1)),
                global("s", Ty::Stats, vec![Ty::Long], None),
            ],
            functions: vec![],
            probes: vec![],
        };
        let mut g = Globals::new(&p, 10, 8).unwrap();
        g.set_scalar(GlobalId(0), Value::Long(4)).unwrap();
        g.set_element(
            GlobalId(1),
            vec![Value::Str(b"0123456789".to_vec())],
            Value::Long(1),
        )
        .unwrap();
        assert_eq!(
            g.set_element(GlobalId(1), vec![Value::Str(b"b".to_vec())], Value::Long(2)),
            Err(StoreError::Overflow(
                "Array overflow, check size limit (1)".into()
            ))
        );
        let mut part = StatPartial::new(&StatSpec::default());
        part.add(&StatSpec::default(), 7);
        g.add_stat_partial(GlobalId(2), Some(vec![Value::Long(1)]), part.clone())
            .unwrap();
        g.add_stat_partial(GlobalId(2), Some(vec![Value::Long(1)]), part)
            .unwrap();
        assert!(g.set_scalar(GlobalId(2), Value::Long(0)).is_err());
        match &g.stores[1] {
            Store::Array(a) => {
                let keys: Vec<&Key> = a.iter().map(|(k, _)| k).collect();
                // Keys are cut to MAXSTRINGLEN - 1 bytes.
                assert_eq!(keys, [&vec![Value::Str(b"0123456".to_vec())]]);
            }
            _ => panic!("not an array"),
        }
        match &g.stores[2] {
            Store::StatArray(a) => {
                let s = a.get(&[Value::Long(1)]).unwrap();
                assert_eq!(s.get(&g.specs[2], StatOp::Count), Some(2));
                assert_eq!(s.get(&g.specs[2], StatOp::Sum), Some(14));
            }
            _ => panic!("not a statistics array"),
        }
    }

    #[test]
    fn truncation_keeps_room_for_the_nul() {
        assert_eq!(truncate(b"abcdef".to_vec(), 4), b"abc");
        assert_eq!(truncate(b"ab\0cd".to_vec(), 10), b"ab");
    }
}
