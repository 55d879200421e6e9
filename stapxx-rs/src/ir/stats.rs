//! Statistics as the language defines them: `@hist_log` buckets,
//! `@hist_linear` parameters, and what each statistic global must keep
//! (its [`StatSpec`]). Shared by the host interpreter and the code
//! generator, so kernel and host statistics have one layout.

use super::Program;
use grammar::ast::StatOp;
use std::cmp::Ordering;

/// Buckets of a `@hist_log` histogram.
pub const LOG_BUCKETS: usize = 128;
/// The bucket of the value 0; negative values have lower buckets.
pub const LOG_BUCKET0: usize = 64;
/// stap's limit on linear histogram buckets (underflow and overflow included).
pub const MAX_LINEAR_BUCKETS: i64 = 128;

/// The `@hist_log` bucket of a value: 0 has its own bucket, each power of
/// two above and below it another.
pub fn log_bucket(val: i64) -> usize {
    if val == 0 {
        return LOG_BUCKET0;
    }
    let mag = val.unsigned_abs();
    let bits = 64 - mag.leading_zeros() as usize;
    if val > 0 {
        (LOG_BUCKET0 + bits).min(LOG_BUCKETS - 1)
    } else {
        LOG_BUCKETS - (LOG_BUCKET0 + bits).min(LOG_BUCKETS)
    }
}

/// The smallest value of a `@hist_log` bucket (what its row shows).
pub fn log_bucket_value(bucket: usize) -> i64 {
    match bucket.cmp(&LOG_BUCKET0) {
        Ordering::Equal => 0,
        Ordering::Less => i64::MIN >> bucket.min(63),
        Ordering::Greater => 1i64 << (bucket - LOG_BUCKET0 - 1).min(62),
    }
}

/// The parameters of `@hist_linear(x, start, stop, interval)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Linear {
    pub start: i64,
    pub stop: i64,
    pub interval: i64,
}

impl Linear {
    /// Checked as stap checks them when the statistic is created.
    pub fn new(start: i64, stop: i64, interval: i64) -> Result<Linear, String> {
        if interval == 0 {
            return Err("histogram: interval cannot be zero".into());
        }
        let buckets = stop
            .checked_sub(start)
            .and_then(|d| d.checked_div(interval))
            .and_then(|n| n.checked_add(3))
            .unwrap_or(i64::MAX);
        if !(3..=MAX_LINEAR_BUCKETS).contains(&buckets) {
            return Err(format!(
                "histogram: number of buckets must be between 1 and {}: (stop - start) / interval = ({stop} - {start}) / {interval}",
                MAX_LINEAR_BUCKETS - 2
            ));
        }
        Ok(Linear {
            start,
            stop,
            interval,
        })
    }

    /// Number of buckets, underflow and overflow included.
    pub fn buckets(&self) -> usize {
        ((self.stop - self.start) / self.interval + 3) as usize
    }

    /// The bucket of a value: 0 for underflow, the last for overflow.
    pub fn bucket(&self, val: i64) -> usize {
        let last = self.buckets() - 1;
        let off = (val as i128) - (self.start as i128);
        if off < 0 {
            return 0;
        }
        // stap divides unsigned; a negative interval makes every value overflow.
        let step = self.interval as u64 as u128;
        let b = (off as u128) / step.max(1) + 1;
        if b >= last as u128 {
            last
        } else {
            b as usize
        }
    }
}

/// What a statistic global keeps besides count/sum/min/max: its histograms
/// and whether `@variance` is used (with its bit shift).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatSpec {
    pub log: bool,
    pub linear: Vec<Linear>,
    /// `Some(shift)` when the script reads `@variance`.
    pub variance: Option<u32>,
}

impl StatSpec {
    /// The spec of every statistic global of a program, from the `@hist_*`
    /// and `@variance` reads of the whole program.
    pub fn for_program(p: &Program) -> Result<Vec<StatSpec>, String> {
        let mut specs = vec![StatSpec::default(); p.globals.len()];
        let mut err = None;
        let mut visit = |e: &crate::ir::Expr| {
            if let crate::ir::ExprKind::StatGet { op, place, args } = &e.kind {
                let g = match place {
                    crate::ir::Place::Global(g) | crate::ir::Place::Elem(g, _) => g.0 as usize,
                    crate::ir::Place::Local(_) => return,
                };
                let Some(spec) = specs.get_mut(g) else {
                    return;
                };
                match op {
                    StatOp::HistLog => spec.log = true,
                    StatOp::HistLinear => match args.as_slice() {
                        [a, b, c] => match Linear::new(*a, *b, *c) {
                            Ok(l) => {
                                if !spec.linear.contains(&l) {
                                    spec.linear.push(l);
                                }
                            }
                            Err(m) => err = Some(m),
                        },
                        _ => err = Some("@hist_linear needs start, stop and interval".into()),
                    },
                    StatOp::Variance => {
                        let shift = args.first().copied().unwrap_or(0);
                        if !(0..=62).contains(&shift) {
                            err = Some(format!("@variance bit shift {shift} out of range 0..62"));
                        }
                        spec.variance = Some(shift.clamp(0, 62) as u32);
                    }
                    _ => {}
                }
            }
        };
        for f in &p.functions {
            f.body
                .iter()
                .for_each(|s| crate::ir::print::walk_stmt(s, &mut visit));
        }
        for pr in &p.probes {
            pr.body
                .iter()
                .for_each(|s| crate::ir::print::walk_stmt(s, &mut visit));
        }
        match err {
            Some(m) => Err(m),
            None => Ok(specs),
        }
    }
}
