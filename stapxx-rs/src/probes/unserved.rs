//! Kernel probe kinds this kernel cannot serve: `kernel.function(...)`,
//! `kernel.statement(...)`, `module(...).function(...)` and `kprobe.*`
//! need kprobes (none here: no kprobe PMU, no kprobe_events) or BPF
//! trampolines (fentry/fexit load with EPERM); `procfs(...)` files and
//! `netfilter.*` hooks are made by stap's kernel module, which eBPF has
//! no counterpart of. Refused at pass 2 with what is missing, so `?`
//! alternatives can fall through to tracepoints.

use super::{Cx, Miss, SiteKind};
use grammar::ast::ProbePoint;

pub fn resolve(pt: &ProbePoint, _cx: &mut Cx<'_>) -> Result<Vec<SiteKind>, Miss> {
    let what = pt
        .components
        .iter()
        .take(2)
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(".");
    match pt.components.first().map(|c| c.name.as_str()) {
        Some("procfs") => return Err(Miss::Unserved(format!(
            "{what}: procfs probes are files under /proc/systemtap that stap's kernel module makes; stapxx-rs loads no module (print the values from a timer or end probe instead)"
        ))),
        Some("netfilter") => return Err(Miss::Unserved(format!(
            "{what}: netfilter hooks are registered by stap's kernel module; stapxx-rs loads no module, and eBPF cannot register one"
        ))),
        _ => {}
    }
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let why = if kprobes {
        "kernel function probes are not implemented yet (they need kprobes)"
    } else {
        "this kernel has no kprobes (no kprobe PMU) and refuses BPF trampoline programs (fentry/fexit), so kernel functions cannot be probed; use kernel.trace(\"subsystem:event\") tracepoints"
    };
    Err(Miss::Unserved(format!("{what}: {why}")))
}
