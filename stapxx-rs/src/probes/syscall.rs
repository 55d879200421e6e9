//! The system call a tapset alias stands for: `syscall.NAME`,
//! `nd_syscall.NAME`, `tp_syscall.NAME` (and `.return`), however the alias
//! chain ends.
//!
//! SystemTap serves `$fd` in `probe syscall.close` from the DWARF of the
//! kernel function `sys_close`. This kernel has no kprobes, so the tapsets'
//! chains end on the `raw_syscalls:sys_enter`/`sys_exit` tracepoints (or a
//! script's alias on `syscalls:sys_enter_NAME`), which know nothing of
//! `close`. The alias names it, so the alias expansion tags the tracepoint
//! sites it reached with the call (innermost alias first, see
//! `resolve/aliases.rs`), and its parameters come from the kernel's own
//! description of the call: the fields of `syscalls/sys_enter_NAME/format`
//! after `__syscall_nr`, in order, with their C types. Reading them is
//! `resolve/tracepoints.rs`'s job; in `.return` probes they are their
//! values at entry, saved by a probe on `syscalls:sys_enter_NAME`
//! ([`TracepointSite::syscall_entry`]).

use super::trace::{RecordField, TpArgs, TracepointSite};
use super::{Site, SiteKind};

/// A system call and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    pub name: String,
    /// In the call's order, as `sys_enter_NAME`'s record stores them.
    pub params: Vec<RecordField>,
}

impl Syscall {
    /// The call an alias name stands for (`tp_syscall.close`,
    /// `syscall.close.return`), when the kernel describes one of that name.
    pub fn of_alias(alias: &str) -> Option<Syscall> {
        let comps: Vec<&str> = alias.split('.').collect();
        let (head, name) = match comps.as_slice() {
            [head, name] | [head, name, "return"] => (*head, *name),
            _ => return None,
        };
        if !head.ends_with("syscall") {
            return None;
        }
        let fields = super::trace::fields("syscalls", &format!("sys_enter_{name}"));
        // No format file: every record has its common fields.
        if fields.is_empty() {
            return None;
        }
        Some(Syscall {
            name: name.to_string(),
            params: fields
                .into_iter()
                .filter(|f| !f.is_common() && f.name != "__syscall_nr")
                .collect(),
        })
    }

    pub fn param(&self, name: &str) -> Option<(usize, &RecordField)> {
        self.params.iter().enumerate().find(|(_, p)| p.name == name)
    }

    /// `close(fd)`, for listings and messages.
    pub fn signature(&self) -> String {
        let names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        format!("{}({})", self.name, names.join(", "))
    }

    /// Tags the untagged sites of this call's events with it.
    pub fn tag(&self, sites: &mut [Site]) {
        for s in sites {
            if let SiteKind::Tracepoint(t) = &mut s.kind {
                if t.syscall.is_none() && t.filter.is_none() && self.is_event(t) {
                    t.syscall = Some(self.clone());
                }
            }
        }
    }

    /// Whether `t` fires for this call (among others, on raw_syscalls).
    fn is_event(&self, t: &TracepointSite) -> bool {
        match t.category.as_str() {
            "raw_syscalls" => t.name == "sys_enter" || t.name == "sys_exit",
            "syscalls" => {
                t.name.strip_prefix("sys_enter_") == Some(&self.name)
                    || t.name.strip_prefix("sys_exit_") == Some(&self.name)
            }
            _ => false,
        }
    }
}

impl TracepointSite {
    /// The call's exit (`sys_exit`, `sys_exit_NAME`) in a site tagged
    /// with a system call.
    pub fn is_syscall_exit(&self) -> bool {
        self.syscall.is_some() && self.name.starts_with("sys_exit")
    }

    /// Where a tagged exit site's parameters are read at entry: the call's
    /// own `syscalls:sys_enter_NAME` event, which fires for it alone.
    pub fn syscall_entry(&self) -> Option<TracepointSite> {
        let sc = self.syscall.as_ref()?;
        let name = format!("sys_enter_{}", sc.name);
        Some(TracepointSite {
            args: TpArgs::Record(super::trace::fields("syscalls", &name)),
            category: "syscalls".into(),
            name,
            filter: None,
            syscall: Some(sc.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_syscall_alias_names_name_a_call() {
        // No format file is read for these.
        for name in [
            "syscall_any",
            "syscall",
            "scheduler.ctxswitch",
            "syscall.a.b",
        ] {
            assert_eq!(Syscall::of_alias(name), None, "{name}");
        }
    }
}
