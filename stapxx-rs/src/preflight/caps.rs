//! The capabilities each probe kind needs, and those this process has.
//!
//! Measured on Linux 6.18 (README, "Privileges"), and matching the kernel's
//! checks: `bpf(2)` needs CAP_BPF for anything (BTF, maps, programs);
//! tracing program types (uprobe, tracepoint, perf event) also need
//! CAP_PERFMON, which system-wide perf events need too. Uprobes are
//! created through the `uprobe` perf PMU, which only admits CAP_SYS_ADMIN
//! (the kernel reverted it from CAP_PERFMON: a probe writes into every
//! process mapping the file). CAP_SYS_ADMIN stands for CAP_BPF and
//! CAP_PERFMON wherever the kernel asks for them.

use crate::probes::SiteKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    Bpf,
    Perfmon,
    SysAdmin,
    Syslog,
    SysPtrace,
    DacReadSearch,
}

impl Cap {
    /// The bit in `/proc/PID/status` masks (include/uapi/linux/capability.h).
    fn bit(self) -> u32 {
        match self {
            Cap::DacReadSearch => 2,
            Cap::SysPtrace => 19,
            Cap::SysAdmin => 21,
            Cap::Syslog => 34,
            Cap::Perfmon => 38,
            Cap::Bpf => 39,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cap::DacReadSearch => "CAP_DAC_READ_SEARCH",
            Cap::SysPtrace => "CAP_SYS_PTRACE",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
            Cap::Syslog => "CAP_SYSLOG",
            Cap::Perfmon => "CAP_PERFMON",
            Cap::Bpf => "CAP_BPF",
        }
    }

    /// The name `setcap` takes.
    pub fn setcap_name(self) -> String {
        self.name().to_ascii_lowercase()
    }

    /// The ones that matter here, for listing what a process has.
    const ALL: [Cap; 6] = [
        Cap::Bpf,
        Cap::Perfmon,
        Cap::SysAdmin,
        Cap::Syslog,
        Cap::SysPtrace,
        Cap::DacReadSearch,
    ];
}

/// This process's effective capabilities, as the kernel counts them.
#[derive(Debug, Clone, Copy)]
pub struct Creds {
    pub effective: u64,
    /// Inside a user namespace other than the first, capabilities do not
    /// count for BPF, perf events or kallsyms (the kernel checks them
    /// against the initial namespace).
    pub nested_userns: bool,
}

impl Creds {
    pub fn current() -> Creds {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let effective = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        // The first namespace maps every id onto itself.
        let nested_userns = std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| {
                let f: Vec<&str> = m.split_whitespace().collect();
                f != ["0", "0", "4294967295"]
            })
            .unwrap_or(false);
        Creds {
            effective,
            nested_userns,
        }
    }

    /// Whether the kernel grants what `cap` guards: CAP_SYS_ADMIN also
    /// passes the CAP_BPF and CAP_PERFMON checks (`bpf_capable()`,
    /// `perfmon_capable()`).
    pub fn has(&self, cap: Cap) -> bool {
        if self.nested_userns {
            return false;
        }
        let raw = |c: Cap| self.effective & (1u64 << c.bit()) != 0;
        raw(cap) || (matches!(cap, Cap::Bpf | Cap::Perfmon) && raw(Cap::SysAdmin))
    }

    /// `CAP_BPF, CAP_PERFMON` (the capabilities of [`Cap::ALL`] held), for
    /// messages.
    pub fn describe(&self) -> String {
        let held: Vec<&str> = Cap::ALL
            .iter()
            .filter(|&&c| self.effective & (1u64 << c.bit()) != 0)
            .map(|c| c.name())
            .collect();
        let mut s = if held.is_empty() {
            "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYSLOG, CAP_SYS_PTRACE, \
             CAP_DAC_READ_SEARCH"
                .to_string()
        } else {
            held.join(", ")
        };
        if self.nested_userns {
            s.push_str(" (in a user namespace: they do not count for BPF)");
        }
        s
    }
}

/// How far the session goes: `-p4` loads the programs, a run attaches
/// them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Load,
    Run,
}

/// What a probe kind is called in messages, and the capabilities it needs
/// at `stage` (empty: it runs in stapxx-rs itself).
pub fn site_needs(kind: &SiteKind, stage: Stage) -> (&'static str, &'static [Cap]) {
    const TRACING: &[Cap] = &[Cap::Bpf, Cap::Perfmon];
    match kind {
        SiteKind::Begin(_)
        | SiteKind::End(_)
        | SiteKind::Error(_)
        | SiteKind::Never
        | SiteKind::Timer(_) => ("a host probe", &[]),
        SiteKind::Perf(_) => ("a perf event", TRACING),
        SiteKind::Tracepoint(t) if t.filter.is_some() => {
            ("a process lifecycle probe, served by tracepoints", TRACING)
        }
        SiteKind::Tracepoint(_) => ("a tracepoint", TRACING),
        SiteKind::Uprobe(u) => {
            let what = if u.is_return {
                "a uretprobe"
            } else {
                "a uprobe"
            };
            match stage {
                Stage::Load => (what, TRACING),
                Stage::Run => (what, &[Cap::SysAdmin]),
            }
        }
    }
}

/// `A`, `A and B`, `A, B and C`.
pub fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The smallest set that covers `caps`: CAP_SYS_ADMIN makes CAP_BPF and
/// CAP_PERFMON unneeded.
pub fn minimal(caps: &std::collections::BTreeSet<Cap>) -> Vec<Cap> {
    let admin = caps.contains(&Cap::SysAdmin);
    caps.iter()
        .copied()
        .filter(|c| !(admin && matches!(c, Cap::Bpf | Cap::Perfmon)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(caps: &[Cap]) -> Creds {
        Creds {
            effective: caps.iter().fold(0, |m, c| m | (1u64 << c.bit())),
            nested_userns: false,
        }
    }

    #[test]
    fn sys_admin_covers_bpf_and_perfmon() {
        let c = creds(&[Cap::SysAdmin]);
        assert!(c.has(Cap::Bpf) && c.has(Cap::Perfmon) && c.has(Cap::SysAdmin));
        assert!(!c.has(Cap::Syslog));
        let c = creds(&[Cap::Bpf, Cap::Perfmon]);
        assert!(c.has(Cap::Bpf) && c.has(Cap::Perfmon) && !c.has(Cap::SysAdmin));
        assert_eq!(c.describe(), "CAP_BPF, CAP_PERFMON");
        let nested = Creds {
            nested_userns: true,
            ..creds(&[Cap::SysAdmin])
        };
        assert!(!nested.has(Cap::Bpf));
    }

    #[test]
    fn minimal_sets() {
        let set = |v: &[Cap]| v.iter().copied().collect();
        assert_eq!(
            minimal(&set(&[Cap::Bpf, Cap::Perfmon, Cap::SysAdmin, Cap::Syslog])),
            vec![Cap::SysAdmin, Cap::Syslog]
        );
        assert_eq!(
            minimal(&set(&[Cap::Bpf, Cap::Perfmon])),
            vec![Cap::Bpf, Cap::Perfmon]
        );
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
        assert_eq!(join_and(&["a", "b"]), "a and b");
    }
}
