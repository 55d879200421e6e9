//! Where a `@cast`'s type comes from, and whose memory its reads read.
//!
//! * `"kernel"`, `"kernel<linux/sched.h>"` (any headers: the running
//!   kernel's BTF has every type they would declare): the kernel's BTF,
//!   read with `kernel_*` reads (`bpf_probe_read_kernel`), as stap reads
//!   a kernel `@cast` with its kernel dereference. Like stap's on kernels
//!   without `set_fs` (5.10 and later), that read faults on a user-space
//!   address: `@cast(user_pointer, "T", "kernel")->x` is a probe error in
//!   both.
//! * no module, in a probe on a kernel event (`kernel.trace`, and the
//!   `syscall.*` aliases that reach one): the kernel, as stap resolves a
//!   module-less `@cast` in a kernel probe (`@cast($event,
//!   "epoll_event")->events` in a `syscall.epoll_ctl` probe).
//! * no module elsewhere: in a uprobe handler whose sites are all in one
//!   module, that module (stap takes the probe's module); else the
//!   target's executable (`-x`/`-c`/`--exec`'s);
//! * a path: that user-space module's DWARF (or shipped layout), read with
//!   `user_*` reads.
//! * alternatives, `"kernel:nfs"` (stap's): the first that has the type;
//!   kernel modules (`nfs`) have none here (this kernel loads none, and
//!   their BTF is not read), so only the kernel's own types are found.
//!
//! Both sources are resolved by the one resolver (`debuginfo/layout.rs`),
//! so everything a user-space `@cast` does a kernel one does too.

use super::modules::Modules;
use super::reads::Memory;
use super::{Resolver, R};
use crate::debuginfo::{DebugError, Fetch, Resolved, Step};
use crate::kernel_btf::{Kernel, VMLINUX_BTF};
use crate::probes::{Site, SiteKind};
use grammar::{Diagnostic, Span};

/// Whether a `@cast` module argument names the kernel.
pub(super) fn is_kernel_module(m: &str) -> bool {
    m == "kernel" || m.starts_with("kernel<")
}

/// Whether the handler with these sites runs on kernel events, where a
/// module-less `@cast` means the kernel. `process(...).begin/.end` are
/// served by tracepoints too, but are the process's probes.
pub(super) fn kernel_context(sites: Option<&[Site]>) -> bool {
    sites.is_some_and(|s| {
        !s.is_empty()
            && s.iter()
                .all(|s| matches!(&s.kind, SiteKind::Tracepoint(t) if t.filter.is_none()))
    })
}

/// Whether the handler with these sites runs in stapxx-rs itself
/// (`begin`, `end`, `error`, `timer.s`...), where kernel memory cannot be
/// read. (`never` probes never run, so nothing they read matters.)
pub(super) fn host_context(sites: Option<&[Site]>) -> bool {
    sites.is_some_and(|s| {
        !s.is_empty()
            && s.iter().all(|s| {
                matches!(
                    s.kind,
                    SiteKind::Begin(_) | SiteKind::End(_) | SiteKind::Error(_) | SiteKind::Timer(_)
                )
            })
    })
}

/// A resolved `@cast`: its chain, whose memory it reads and whose types
/// it was resolved in.
pub(super) struct Cast {
    pub chain: Resolved,
    pub memory: Memory,
    pub source: Source,
}

/// Where a cast's types come from: the kernel's BTF, or a user-space
/// module's DWARF (named as the `@cast` names it; `None`: the default
/// executable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    Kernel,
    User(Option<String>),
}

impl Cast {
    /// Whether evaluating the chain reads memory (a `&...` or an array
    /// member of a chain without pointers only adds offsets).
    pub fn reads(&self) -> bool {
        matches!(self.chain.fetch, Fetch::Load { .. })
            || self
                .chain
                .accesses
                .iter()
                .any(|a| matches!(a, crate::debuginfo::Access::Deref { .. }))
    }
}

/// Why a `@cast` did not resolve.
pub(super) enum Failure {
    /// The type or a member does not exist there (`@defined` is 0).
    Unknown(String),
    /// Anything else: always an error.
    Hard(String),
}

/// `[&]@cast(addr, ty, module)` followed by `steps`, in a handler whose
/// sites are `sites` (`None`: a script function).
pub(super) fn resolve(
    modules: &mut Modules,
    module: Option<&str>,
    sites: Option<&[Site]>,
    ty: &str,
    steps: &[Step],
    amp: bool,
) -> Result<Cast, Failure> {
    if module.is_none() && kernel_context(sites) {
        let kernel_has = |ty| Kernel::get().is_some_and(|k| k.resolver().find_type(ty).is_ok());
        return in_kernel(ty, steps, amp).map_err(|f| match f {
            Failure::Unknown(m) if !kernel_has(ty) => Failure::Unknown(format!(
                "{m} (a @cast with no module in a probe on a kernel event names a kernel type, as in stap: name the executable or library for a user-space type)"
            )),
            hard => hard,
        });
    }
    // stap's alternatives, `"kernel:nfs"`: the first module that has the
    // type. Only where one names the kernel, so a path with a ':' in it
    // stays one path.
    let alternatives: Vec<&str> = match module {
        Some(m) if m.split(':').any(is_kernel_module) => m.split(':').collect(),
        Some(m) => vec![m],
        None => vec![],
    };
    if alternatives.is_empty() {
        return in_user(modules, probed_module(sites), ty, steps, amp);
    }
    // Failing everywhere: what the kernel said, else the first one.
    let mut first = None;
    let mut kernel_failure = None;
    for m in alternatives {
        let r = if is_kernel_module(m) {
            in_kernel(ty, steps, amp)
        } else if !m.contains('/') {
            // Beside the kernel, a name that is no path is a kernel module.
            Err(Failure::Unknown(format!(
                "type '{ty}' not looked for in kernel module '{m}': stapxx-rs reads the types of the kernel itself only"
            )))
        } else {
            in_user(modules, Some(m), ty, steps, amp)
        };
        match r {
            Ok(c) => return Ok(c),
            Err(f) if is_kernel_module(m) => {
                kernel_failure.get_or_insert(f);
            }
            Err(f) => {
                first.get_or_insert(f);
            }
        }
    }
    Err(kernel_failure.or(first).expect("at least one alternative"))
}

/// The module every site of a uprobe handler is in: a module-less
/// `@cast` there names its types, as stap takes the probe's module.
pub(super) fn probed_module(sites: Option<&[Site]>) -> Option<&str> {
    let mut modules = sites?.iter().map(|s| match &s.kind {
        SiteKind::Uprobe(u) => Some(u.module.as_str()),
        _ => None,
    });
    let first = modules.next()??;
    modules.all(|m| m == Some(first)).then_some(first)
}

fn in_kernel(ty: &str, steps: &[Step], amp: bool) -> Result<Cast, Failure> {
    let kernel = Kernel::get().ok_or_else(|| {
        Failure::Hard(format!(
            "the kernel's types are read from its BTF, and {VMLINUX_BTF} cannot be read (a kernel built without CONFIG_DEBUG_INFO_BTF?)"
        ))
    })?;
    match kernel.resolve_cast(ty, steps, amp) {
        Ok(chain) => Ok(Cast {
            chain,
            memory: Memory::Kernel,
            source: Source::Kernel,
        }),
        Err(e) => Err(classify(e)),
    }
}

fn in_user(
    modules: &mut Modules,
    module: Option<&str>,
    ty: &str,
    steps: &[Step],
    amp: bool,
) -> Result<Cast, Failure> {
    let m = modules.get(module).map_err(Failure::Hard)?;
    match m.resolve_cast(ty, steps, amp) {
        Ok(chain) => Ok(Cast {
            chain,
            memory: Memory::User,
            source: Source::User(module.map(str::to_string)),
        }),
        Err(e) => Err(classify(e)),
    }
}

fn classify(e: DebugError) -> Failure {
    if Modules::is_unknown_here(&e) {
        Failure::Unknown(e.to_string())
    } else {
        Failure::Hard(e.to_string())
    }
}

/// Why a host probe cannot read what a kernel `@cast` reads.
fn host_error(ty: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        span,
        format!(
            "@cast to kernel type '{ty}' reads kernel memory, which begin, end, error and timer.s/ms/us/ns/hz/jiffies probes cannot: stapxx-rs runs them in user space (it loads no kernel module)"
        ),
    )
    .with_note("read it in a kernel probe (kernel.trace, syscall.*, timer.profile, perf.*, a process probe) and keep the value in a global")
}

impl Resolver<'_, '_> {
    /// A kernel `@cast` of type `ty` at `span` reads kernel memory: an
    /// error in a host probe's own body. (A script function may test
    /// where it runs, `__stapxx_on_host()`, so one a host probe calls is
    /// refused at run time, only if it gets that far.)
    pub(super) fn kernel_read(&self, ty: &str, span: Span) -> R<()> {
        if host_context(self.sites.as_deref()) {
            return Err(host_error(ty, span));
        }
        Ok(())
    }
}
