//! Wall-clock timers (`timer.s(N)`, `.ms`, `.us`, `.ns`, `.hz`,
//! `.jiffies`) whose handlers read the interrupted task: `pid()`,
//! `execname()`, `task_current()`, a backtrace, ... stap runs a timer's
//! handler in the timer interrupt on one CPU, so those are whatever task
//! that CPU was running (the idle task, pid 0, as often as not; OpenResty's
//! ngx-lj-gc-speed prints only when it is the target). Such a handler runs
//! in the kernel on the CPU-clock perf event of that period on one CPU, as
//! bpftrace runs its `interval` probes. A timer handler that reads no task
//! runs in stapxx-rs itself (`probes/timer.rs`), where there is none to
//! read (pid() would be stapxx-rs's own).

use super::Resolver;
use crate::ir::builtins::Builtin;
use crate::probes::perf::PerfSite;
use crate::probes::{Site, SiteKind};
use grammar::ast::*;
use std::collections::HashSet;

impl Resolver<'_, '_> {
    /// `sites` with every wall-clock timer made a one-CPU perf event when
    /// `body` (or a function it calls) reads the interrupted task.
    pub(super) fn timers_in_kernel(&self, body: &Block, sites: Vec<Site>) -> Vec<Site> {
        if !sites.iter().any(|s| matches!(s.kind, SiteKind::Timer(_))) {
            return sites;
        }
        let mut seen = HashSet::new();
        if !self.block_reads_task(body, &mut seen) {
            return sites;
        }
        // The first online CPU (CPU 0 unless it is offline).
        let cpu = ebpf_backend::sys::online_cpus()
            .ok()
            .and_then(|c| c.first().copied())
            .unwrap_or(0);
        sites
            .into_iter()
            .map(|mut s| {
                if let SiteKind::Timer(d) = s.kind {
                    s.kind = SiteKind::Perf(PerfSite::timer_on(cpu, d));
                }
                s
            })
            .collect()
    }

    fn block_reads_task(&self, b: &Block, seen: &mut HashSet<String>) -> bool {
        let mut calls = Vec::new();
        grammar::visit::walk_block(b, &mut |e| {
            if let ExprKind::Call { name, .. } = &e.kind {
                calls.push(name.clone());
            }
        });
        calls.into_iter().any(|name| {
            if let Some(b) = Builtin::from_name(&name) {
                return b.reads_interrupted_task();
            }
            if !seen.insert(name.clone()) {
                return false;
            }
            match self.functions.get(name.as_str()).map(|f| &f.body) {
                Some(FunctionBody::Script(body)) => self.block_reads_task(body, seen),
                _ => false,
            }
        })
    }
}
