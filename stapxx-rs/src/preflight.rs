//! Checks before anything is loaded: privileges and kernel features, each
//! failure one clear message naming what is missing.

mod access;
pub mod caps;

pub use access::tracefs;
pub use caps::Stage;

use crate::ir::{self, Builtin, Exec, ExprKind, Program};
use crate::probes::{Site, SiteKind};
use caps::{join_and, site_needs, Cap, Creds};
use grammar::{Diagnostic, Span};
use std::collections::BTreeSet;

/// The oldest kernel whose BPF has everything the code generator emits:
/// signed division and sign-extending loads (cpu v4, 6.6), `bpf_loop` and
/// `bpf_strncmp` (5.17), `bpf_snprintf` (5.13), the ring buffer (5.8).
pub const MIN_KERNEL: (u32, u32) = (6, 6);

/// Everything `program` needs of this process at `stage`, checked before
/// anything is loaded: the capabilities of each probe kind it uses (the
/// first probe point lacking one is the error, at its place in the
/// script), reading the memory of the target (`target`, for host probes
/// that read it). Returns the warnings to print: kernel addresses that
/// `symname()`/`probefunc()` will not see (they give hex instead).
pub fn check_program(
    program: &Program,
    stage: Stage,
    target: Option<u32>,
) -> Result<Vec<Diagnostic>, Diagnostic> {
    check_with(program, stage, target, &Creds::current())
}

fn check_with(
    program: &Program,
    stage: Stage,
    target: Option<u32>,
    creds: &Creds,
) -> Result<Vec<Diagnostic>, Diagnostic> {
    let mut needed = BTreeSet::new();
    let mut first_lack: Option<(&Site, &str, &[Cap])> = None;
    for site in program.probes.iter().flat_map(|p| &p.sites) {
        let (what, caps) = site_needs(&site.kind, stage);
        needed.extend(caps.iter().copied());
        if first_lack.is_none() && caps.iter().any(|&c| !creds.has(c)) {
            first_lack = Some((site, what, caps));
        }
    }
    if let Some((site, what, caps)) = first_lack {
        return Err(lacking(site, what, caps, &needed, creds));
    }
    let mut warnings = Vec::new();
    if let Some(span) = kernel_symbol_use(program) {
        if let Err(why) = access::kallsyms() {
            warnings.push(Diagnostic::warning(
                span,
                format!("kernel addresses will print as hex numbers here: {why}"),
            ));
        }
    }
    if let (Stage::Run, Some(pid)) = (stage, target) {
        if let Some(span) = host_user_read(program) {
            access::target_memory(pid).map_err(|why| {
                Diagnostic::error(
                    span,
                    format!("this probe reads the memory of process {pid}, and {why}"),
                )
            })?;
        }
    }
    Ok(warnings)
}

/// The error for a probe point whose kind needs `caps` and the process
/// lacks some of them.
fn lacking(
    site: &Site,
    what: &str,
    caps: &[Cap],
    needed: &BTreeSet<Cap>,
    creds: &Creds,
) -> Diagnostic {
    let names = |v: &[Cap]| join_and(&v.iter().map(|c| c.name()).collect::<Vec<_>>());
    let missing: Vec<Cap> = caps.iter().copied().filter(|&c| !creds.has(c)).collect();
    let why = if caps.contains(&Cap::SysAdmin) {
        " (the kernel creates uprobes for CAP_SYS_ADMIN only: CAP_BPF and CAP_PERFMON are not enough)"
    } else {
        ""
    };
    let all = caps::minimal(needed);
    let setcap: Vec<String> = all.iter().map(|c| c.setcap_name()).collect();
    Diagnostic::error(
        site.span,
        format!(
            "probe point '{}' is {what}: it needs {}{why}; this process lacks {}",
            site.point,
            names(caps),
            names(&missing)
        ),
    )
    .with_note(format!("this process has {}", creds.describe()))
    .with_note(format!(
        "the whole script needs {}: run it as root, or with {} (e.g. setcap {}+ep on the stapxx-rs binary)",
        names(&all),
        if all.len() == 1 { "that capability" } else { "those capabilities" },
        setcap.join(",")
    ))
}

/// Where the program first asks for a kernel symbol: `symname()` anywhere
/// (the host's reads `/proc/kallsyms` too), `probefunc()` in kernel probes
/// that can hit kernel code (all but uprobes).
fn kernel_symbol_use(program: &Program) -> Option<Span> {
    program.probes.iter().find_map(|p| {
        let uprobe_only = p
            .sites
            .iter()
            .all(|s| matches!(s.kind, SiteKind::Uprobe(_)));
        first_in(program, &p.body, &mut |b| {
            b == Builtin::Symname
                || (b == Builtin::Probefunc && p.exec == Exec::Kernel && !uprobe_only)
        })
    })
}

/// Where a host probe (begin/end/timer) first reads user memory: those
/// reads go through `/proc/PID/mem`.
fn host_user_read(program: &Program) -> Option<Span> {
    program
        .probes
        .iter()
        .filter(|p| p.exec == Exec::Host)
        .find_map(|p| first_in(program, &p.body, &mut |b| b.reads_user_memory()))
}

/// The first call of a builtin matching `want` in `body`, looking into the
/// script functions it calls (each once).
fn first_in(
    program: &Program,
    body: &[ir::Stmt],
    want: &mut dyn FnMut(Builtin) -> bool,
) -> Option<Span> {
    let mut found = None;
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&[ir::Stmt]> = vec![body];
    while let Some(stmts) = todo.pop() {
        let mut calls = Vec::new();
        for s in stmts {
            ir::print::walk_stmt(s, &mut |e| match &e.kind {
                ExprKind::Builtin(b, _) if found.is_none() && want(*b) => found = Some(e.span),
                ExprKind::Call(f, _) => calls.push(*f),
                _ => {}
            });
        }
        if found.is_some() {
            return found;
        }
        for f in calls {
            if seen.insert(f) {
                if let Some(func) = program.functions.get(f.0 as usize) {
                    todo.push(&func.body);
                }
            }
        }
    }
    None
}

/// Fail on a kernel older than [`MIN_KERNEL`].
pub fn check_kernel() -> Result<(), Diagnostic> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    if kernel_at_least(release, MIN_KERNEL) {
        return Ok(());
    }
    Err(Diagnostic::bare(format!(
        "this kernel ({release}) is too old for stapxx-rs's eBPF code: it needs Linux {}.{} or newer \
         (BPF cpu v4 instructions: signed division and sign-extending loads; also bpf_loop, \
         bpf_strncmp, bpf_snprintf and the BPF ring buffer)",
        MIN_KERNEL.0, MIN_KERNEL.1
    )))
}

/// `6.1.0-13-amd64` >= (6, 6)?
pub fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor) >= want
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Session;

    /// `src` through passes 0 to 3, checked with the capabilities `caps`;
    /// the error or the warnings rendered.
    fn check(src: &str, stage: Stage, caps: u64) -> Result<Vec<String>, String> {
        let opts = crate::cli::parse_args(["stapxx-rs", "-p3", "-e", src]);
        let mut session = Session::new(&opts);
        let eo = session.expand_options().unwrap();
        let program = session
            .translate_source("-e", src, &eo)
            .unwrap_or_else(|d| panic!("{}", d.render(&session.sources)))
            .program;
        let creds = Creds {
            effective: caps,
            nested_userns: false,
        };
        check_with(&program, stage, None, &creds)
            .map(|w| w.iter().map(|d| d.render(&session.sources)).collect())
            .map_err(|d| d.render(&session.sources))
    }

    const BPF: u64 = 1 << 39;
    const PERFMON: u64 = 1 << 38;
    const SYS_ADMIN: u64 = 1 << 21;

    #[test]
    fn host_probes_need_nothing() {
        let src = "probe begin { print(1) } probe timer.ms(10) { exit() }";
        assert_eq!(check(src, Stage::Run, 0), Ok(vec![]));
    }

    #[test]
    fn perf_events_need_bpf_and_perfmon() {
        let src = "global n\nprobe begin {}\nprobe timer.profile { n++ }";
        assert_eq!(
            check(src, Stage::Run, BPF),
            Err("-e:3:7: error: probe point 'timer.profile' is a perf event: it needs CAP_BPF and \
                 CAP_PERFMON; this process lacks CAP_PERFMON\n    \
                 probe timer.profile { n++ }\n          ^\n\
                 note: this process has CAP_BPF\n\
                 note: the whole script needs CAP_BPF and CAP_PERFMON: run it as root, or with those \
                 capabilities (e.g. setcap cap_bpf,cap_perfmon+ep on the stapxx-rs binary)\n"
                .into())
        );
        assert_eq!(check(src, Stage::Run, BPF | PERFMON), Ok(vec![]));
        // CAP_SYS_ADMIN passes the kernel's CAP_BPF and CAP_PERFMON checks.
        assert_eq!(check(src, Stage::Run, SYS_ADMIN), Ok(vec![]));
    }

    #[test]
    fn the_first_point_lacking_a_capability_is_named() {
        let src = "probe timer.s(1) {}\nprobe perf.sw.page_faults, timer.profile { }";
        let err = check(src, Stage::Load, 0).unwrap_err();
        assert!(
            err.starts_with(
                "-e:2:7: error: probe point 'perf.sw.page_faults' is a perf event: it needs \
                 CAP_BPF and CAP_PERFMON; this process lacks CAP_BPF and CAP_PERFMON\n"
            ),
            "{err}"
        );
        assert!(
            err.contains("\nnote: this process has none of CAP_BPF, CAP_PERFMON,"),
            "{err}"
        );
    }

    #[test]
    fn versions() {
        assert!(kernel_at_least("6.18.44-fc-v669", (6, 6)));
        assert!(kernel_at_least("6.6.0", (6, 6)));
        assert!(!kernel_at_least("6.1.0-13-amd64", (6, 6)));
        assert!(!kernel_at_least("5.15.0", (6, 6)));
        assert!(!kernel_at_least("", (6, 6)));
    }
}
