//! `timer.profile` and `perf.*`: a sampling perf event on every CPU whose
//! overflow runs the handler as a `BPF_PROG_TYPE_PERF_EVENT` program.
//!
//! `timer.profile` ticks at CONFIG_HZ on the CPU-clock software event (this
//! kernel has no hardware PMU); `perf.sw.NAME[.sample(N)]`,
//! `perf.hw.NAME[.sample(N)]` and `perf.type(T).config(C)[.sample(N)]`
//! as stapprobes(3stap) lists them, N defaulting to stap's 1000000.

use super::{Cx, Miss, SiteKind};
use ebpf_backend::attach::{PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE_SOFTWARE};
use ebpf_backend::{Attachment, PerfEventSpec, Sample};
use grammar::ast::{Literal, ProbePoint};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfSite {
    pub type_: u32,
    pub config: u64,
    pub sample: Sample,
    /// One CPU only (a wall-clock timer run in the kernel:
    /// `resolve/kernel_timers.rs`); else every CPU.
    pub cpu: Option<u32>,
}

impl PerfSite {
    pub fn describe(&self) -> String {
        let how = match self.sample {
            Sample::Freq(hz) => format!("{hz} Hz"),
            Sample::Period(n) => format!("every {n} events"),
        };
        let on = match self.cpu {
            Some(c) => format!("CPU {c}"),
            None => "every CPU".into(),
        };
        format!(
            "perf event type {} config {} on {on}, {how}",
            self.type_, self.config
        )
    }

    /// The CPU-clock event every `period` on one CPU: a wall-clock timer
    /// whose handler runs in the kernel, in the interrupt of the task
    /// that CPU runs.
    pub fn timer_on(cpu: u32, period: std::time::Duration) -> PerfSite {
        PerfSite {
            type_: PERF_TYPE_SOFTWARE,
            config: PERF_COUNT_SW_CPU_CLOCK,
            sample: Sample::Period((period.as_nanos() as u64).max(1)),
            cpu: Some(cpu),
        }
    }
}

const PERF_TYPE_HARDWARE: u32 = 0;
const DEFAULT_PERIOD: u64 = 1_000_000;

/// stap's names of the software events, in the kernel's numbering.
const SW: &[&str] = &[
    "cpu_clock",
    "task_clock",
    "page_faults",
    "context_switches",
    "cpu_migrations",
    "page_faults_min",
    "page_faults_maj",
    "alignment_faults",
    "emulation_faults",
];

/// stap's names of the generic hardware events.
const HW: &[&str] = &[
    "cpu_cycles",
    "instructions",
    "cache_references",
    "cache_misses",
    "branch_instructions",
    "branch_misses",
    "bus_cycles",
];

pub fn resolve_profile(pt: &ProbePoint, cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    if pt.components.iter().any(|c| c.arg.is_some()) {
        return Err(Miss::Invalid("timer.profile takes no argument".into()));
    }
    match pt.components.get(2).map(|c| c.name.as_str()) {
        None | Some("tick") if pt.components.len() <= 3 => {}
        _ => return Err(Miss::NoMatch("expected timer.profile[.tick]".into())),
    }
    Ok(vec![SiteKind::Perf(PerfSite {
        type_: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_CPU_CLOCK,
        sample: Sample::Freq(cx.hz),
        cpu: None,
    })])
}

fn number(pt: &ProbePoint, i: usize) -> Result<Option<u64>, Miss> {
    match pt.components.get(i).map(|c| &c.arg) {
        None | Some(None) => Ok(None),
        Some(Some(Literal::Number(n))) if *n >= 0 => Ok(Some(*n as u64)),
        Some(Some(_)) => Err(Miss::Invalid(format!(
            "perf.{}(...) takes a non-negative number",
            pt.components[i].name
        ))),
    }
}

pub fn resolve(pt: &ProbePoint, _cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let names: Vec<&str> = pt.components.iter().map(|c| c.name.as_str()).collect();
    let (type_, config, rest) = match names.as_slice() {
        ["perf", "sw", ev, rest @ ..] => match SW.iter().position(|n| n == ev) {
            Some(i) => (PERF_TYPE_SOFTWARE, i as u64, rest),
            None => return Err(unknown("software", ev, SW)),
        },
        ["perf", "hw", ev, rest @ ..] => match HW.iter().position(|n| n == ev) {
            Some(i) => {
                if !std::path::Path::new("/sys/bus/event_source/devices/cpu").exists() {
                    return Err(Miss::Unserved(
                        "this machine has no hardware performance counters (no 'cpu' PMU)".into(),
                    ));
                }
                (PERF_TYPE_HARDWARE, i as u64, rest)
            }
            None => return Err(unknown("hardware", ev, HW)),
        },
        ["perf", "type", "config", rest @ ..] => {
            let t = number(pt, 1)?.ok_or_else(|| Miss::Invalid("perf.type(N)".into()))?;
            let c = number(pt, 2)?.ok_or_else(|| Miss::Invalid("perf.config(N)".into()))?;
            (t as u32, c, rest)
        }
        _ => {
            return Err(Miss::NoMatch(
                "expected perf.sw.EVENT, perf.hw.EVENT or perf.type(T).config(C), then .sample(N)"
                    .into(),
            ))
        }
    };
    let period = match rest {
        [] => DEFAULT_PERIOD,
        ["sample"] => number(pt, names.len() - 1)?.unwrap_or(DEFAULT_PERIOD),
        [other, ..] => {
            return Err(Miss::Unserved(format!(
                "perf ... .{other} is not supported (only .sample(N))"
            )))
        }
    };
    if period == 0 {
        return Err(Miss::Invalid("the sample period must be positive".into()));
    }
    Ok(vec![SiteKind::Perf(PerfSite {
        type_,
        config,
        sample: Sample::Period(period),
        cpu: None,
    })])
}

fn unknown(what: &str, ev: &str, known: &[&str]) -> Miss {
    let near = crate::debuginfo::layout::nearest(ev, known.iter().copied(), 3);
    Miss::NoMatch(format!(
        "unknown {what} perf event '{ev}' (nearest: {})",
        near.join(", ")
    ))
}

pub fn attach(p: &PerfSite, prog: &ebpf_backend::Program) -> Result<Vec<Attachment>, String> {
    let spec = PerfEventSpec {
        type_: p.type_,
        config: p.config,
        sample: p.sample,
        pid: None,
        cpus: p.cpu.map(|c| vec![c]),
    };
    prog.attach_perf(&spec)
        .map(|a| vec![a])
        .map_err(|e| format!("cannot attach: {e}"))
}
